//! URCs, alone and in the middle of answers; two-line constructs.

use conductor_at::cmd::{MessageStatus, cmgl, cmgr};
use conductor_at::urc::Startup;
use conductor_at::{Event, FinalResult, InfoLine, Urc};

use crate::util::{input, run, submit};

const PDU1: &str = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
const PDU2: &str = "07911326040000F0040B911346610089F60000208062918314080CC8F71D14969741F977FD07";

#[test]
fn a_cmti_inside_a_cmgl_listing_leaves_as_a_urc_and_not_in_the_listing() {
    let transcript = format!(
        "\r\n+CMGL: 1,0,,39\r\n{PDU1}\r\n+CMTI: \"SM\",3\r\n+CMGL: 2,1,,39\r\n{PDU2}\r\n\r\nOK\r\n"
    );
    let outcome = run(&[submit("AT+CMGL=4"), input(transcript)]);
    assert_eq!(
        outcome.events[0],
        Event::Urc(Urc::MessageStored {
            storage: "SM".into(),
            index: 3
        })
    );
    let entries = cmgl::parse(&outcome.response(0).lines).expect("well-formed listing");
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.index, e.stat, e.pdu.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (1, MessageStatus::ReceivedUnread, PDU1),
            (2, MessageStatus::ReceivedRead, PDU2)
        ]
    );
    assert_eq!(outcome.events.len(), 2);
}

#[test]
fn a_cmgr_header_is_paired_with_its_pdu_line() {
    let outcome = run(&[
        submit("AT+CMGR=3"),
        input(format!(
            "AT+CMGR=3\r\r\n+CMGR: 0,,39\r\n{PDU1}\r\n\r\nOK\r\n"
        )),
    ]);
    assert_eq!(
        outcome.response(0).lines,
        vec![InfoLine::with_pdu("+CMGR: 0,,39", PDU1)]
    );
    assert_eq!(
        cmgr::parse(&outcome.response(0).lines).map(|m| m.map(|m| m.length)),
        Ok(Some(39))
    );
}

#[test]
fn a_header_followed_by_a_non_hex_line_keeps_no_pdu_and_the_line_is_processed() {
    let transcript = format!(
        "\r\n+CMGL: 1,0,,39\r\n+CMTI: \"SM\",4\r\n+CMGL: 2,0,,39\r\n{PDU2}\r\n+CMGL: 3,0,,39\r\nOK\r\n"
    );
    let outcome = run(&[submit("AT+CMGL=4"), input(transcript)]);
    assert!(matches!(
        outcome.events[0],
        Event::Urc(Urc::MessageStored { index: 4, .. })
    ));
    assert_eq!(
        outcome.response(0).lines,
        vec![
            InfoLine::new("+CMGL: 1,0,,39"),
            InfoLine::with_pdu("+CMGL: 2,0,,39", PDU2),
            InfoLine::new("+CMGL: 3,0,,39"),
        ]
    );
    assert_eq!(outcome.response(0).result, FinalResult::Ok);
}

#[test]
fn a_cmt_and_a_cds_arrive_with_their_pdu_lines() {
    let outcome = run(&[input(format!(
        "\r\n+CMT: ,39\r\n{PDU1}\r\n\r\n+CDS: 25\r\n0006D60B911326880736F4111011719551401110117195714000\r\n"
    ))]);
    assert_eq!(
        outcome.events,
        vec![
            Event::Urc(Urc::Message {
                alpha: None,
                length: 39,
                pdu: Some(PDU1.into())
            }),
            Event::Urc(Urc::StatusReport {
                length: 25,
                pdu: Some("0006D60B911326880736F4111011719551401110117195714000".into())
            }),
        ]
    );
}

#[test]
fn a_cmt_during_a_command_leaves_with_its_pdu_and_the_answer_is_untouched() {
    let outcome = run(&[
        submit("AT+CSQ"),
        input(format!(
            "\r\n+CMT: \"\",39\r\n{PDU1}\r\n+CSQ: 9,99\r\n\r\nOK\r\n"
        )),
    ]);
    assert_eq!(
        outcome.events[0],
        Event::Urc(Urc::Message {
            alpha: None,
            length: 39,
            pdu: Some(PDU1.into())
        })
    );
    assert_eq!(outcome.response(0).lines, vec![InfoLine::new("+CSQ: 9,99")]);
}

#[test]
fn vendor_noise_and_startup_notices_are_urcs() {
    let outcome = run(&[input(
        "\r\n^BOOT:12345,0,0,0,75\r\n\r\n^RSSI: 14\r\n\r\nCall Ready\r\n\r\nSMS Ready\r\n\r\n+CFUN: 1\r\n\r\nPB DONE\r\n+QIND: SMS DONE\r\n+PACSP1\r\nRING\r\n",
    )]);
    let startups: Vec<_> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Urc(Urc::Startup(s)) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(
        startups,
        vec![
            Startup::CallReady,
            Startup::SmsReady,
            Startup::FullFunctionality,
            Startup::PhonebookDone
        ]
    );
    let vendor = outcome
        .events
        .iter()
        .filter(|e| matches!(e, Event::Urc(Urc::Vendor { .. })))
        .count();
    assert_eq!(vendor, 4);
    assert_eq!(outcome.events.last(), Some(&Event::Urc(Urc::Ring)));
}

#[test]
fn vendor_noise_inside_an_answer_stays_out_of_it() {
    let outcome = run(&[
        submit("AT+CPMS?"),
        input(
            "\r\n^RSSI: 14\r\n+CPMS: \"SM\",3,30,\"SM\",3,30,\"SM\",3,30\r\n^HCSQ: \"LTE\",50,40,120,20\r\n\r\nOK\r\n",
        ),
    ]);
    assert_eq!(outcome.response(0).lines.len(), 1);
    assert_eq!(outcome.events.len(), 3);
}

#[test]
fn unknown_lines_while_idle_are_unknown_urcs() {
    let outcome = run(&[input("\r\n+XYZ: 1,2\r\n\r\nhello modem\r\n")]);
    assert_eq!(
        outcome.events,
        vec![
            Event::Urc(Urc::Unknown("+XYZ: 1,2".into())),
            Event::Urc(Urc::Unknown("hello modem".into())),
        ]
    );
}

#[test]
fn a_malformed_cmti_is_reported_with_its_line() {
    let outcome = run(&[input("\r\n+CMTI: \"SM\",\r\n")]);
    assert!(matches!(
        &outcome.events[..],
        [Event::Urc(Urc::Malformed { line, .. })] if line == "+CMTI: \"SM\","
    ));
}
