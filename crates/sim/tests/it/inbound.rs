//! Inbound: CNMI routing, +CMT/+CNMA, status reports as +CDS and +CDSI, SIM full.

use std::time::Duration;

use conductor_sim::personality::Personality;
use conductor_sim::{ModemId, StatusReportSettings};

use crate::storage::quiet;
use crate::support::{Bench, OTHER, generic, lines, options, submit_to};

#[test]
fn with_mt_1_a_message_is_stored_and_announced_with_cmti() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,1,0,0,0\r");
    b.inject(0, "+33612345678", "hi");
    assert_eq!(b.output(), "\r\n+CMTI: \"SM\",1\r\n");
    assert_eq!(b.net.unread(ModemId(0)), 1);
}

#[test]
fn cmti_names_the_receive_memory_as_configured() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CPMS=\"SM\",\"SM\",\"ME\";+CNMI=2,1,0,0,0\r");
    b.inject(0, "+33612345678", "hi");
    assert_eq!(b.output(), "\r\n+CMTI: \"ME\",1\r\n");
}

#[test]
fn with_mt_0_a_message_is_stored_silently() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,0,0,0,0\r");
    b.inject(0, "+33612345678", "hi");
    assert_eq!(b.output(), "");
    assert_eq!(b.net.unread(ModemId(0)), 1);
}

#[test]
fn mode_0_buffers_indications_until_cnmi_flushes_them() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CNMI=0,1,0,0,0\r");
    b.inject(0, "+33612345678", "a");
    b.inject(0, "+33612345678", "b");
    assert_eq!(b.output(), "");
    assert_eq!(
        b.at("AT+CNMI=2,1,0,0,0\r"),
        "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n\r\n+CMTI: \"SM\",2\r\n"
    );
    b.at("AT+CNMI=0,1,0,0,0\r");
    b.inject(0, "+33612345678", "c");
    assert_eq!(
        b.at("AT+CNMI=2,1,0,0,1\r"),
        "\r\nOK\r\n",
        "bfr=1 clears the buffer"
    );
}

#[test]
fn with_mt_2_the_message_goes_straight_to_the_terminal_and_is_not_stored() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,2,0,0,0\r");
    b.inject(0, "+33612345678", "direct");
    let out = b.output();
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{out:?}");
    assert!(l[0].starts_with("+CMT: ,"), "{out:?}");
    assert_eq!(
        conductor_sms::decode_pdu_hex(l[1])
            .ok()
            .and_then(|p| p.text())
            .as_deref(),
        Some("direct")
    );
    assert_eq!(
        b.at("AT+CPMS?\r"),
        "\r\n+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30\r\n\r\nOK\r\n"
    );
}

#[test]
fn with_csms_1_an_unacknowledged_cmt_comes_back_and_routing_is_switched_off() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CSMS=1;+CNMI=2,2,0,0,0\r");
    b.inject(0, "+33612345678", "first");
    b.inject(0, "+33612345678", "second");
    assert_eq!(lines(&b.output()).len(), 2, "one +CMT at a time");
    let out = b.at("AT+CNMA\r");
    assert!(
        out.starts_with("\r\nOK\r\n\r\n+CMT: ,") && lines(&out).len() == 3,
        "the next one right after the acknowledgement: {out:?}"
    );
    // No acknowledgement: after the timeout the TA turns routing off (TS 27.005 §3.4.4) and
    // the network keeps the message.
    b.advance(Duration::from_secs(16));
    assert_eq!(b.at("AT+CNMI?\r"), "\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n");
    assert_eq!(b.net.held(b.now).len(), 1);
    assert_eq!(b.at("AT+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
    b.advance(Duration::from_secs(30));
    assert_eq!(b.net.held(b.now).len(), 0, "stored once routing is off");
    assert_eq!(b.net.unread(ModemId(0)), 1);
}

/// Two modems; modem 0 sends to modem 1 asking for a report; reports come after 2 s.
fn report_bench(personality: Personality, cnmi: &str) -> Bench {
    let mut b = Bench::with(vec![
        options(personality, crate::support::OWN),
        options(generic(), OTHER),
    ]);
    b.quiet_pdu_setup();
    let out = b.at(&format!("AT+CPMS=\"SM\",\"SM\",\"SM\";+CNMI={cnmi}\r"));
    assert!(out.ends_with("OK\r\n"), "{out:?}");
    b.net
        .modem_mut(ModemId(0))
        .expect("modem")
        .set_next_message_reference(77);
    let (len, hex) = submit_to(OTHER, "report me", true);
    b.at(&format!("AT+CMGS={len}\r"));
    assert!(b.at(&format!("{hex}\x1a")).contains("+CMGS: 77"));
    b
}

#[test]
fn ds_1_routes_the_status_report_as_cds_with_the_same_reference_and_recipient() {
    let mut b = report_bench(generic(), "2,1,0,1,0");
    assert_eq!(b.advance(Duration::from_millis(1999)), "");
    let out = b.advance(Duration::from_millis(1));
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{out:?}");
    let pdu = conductor_sms::decode_hex(l[1]).expect("hex");
    assert_eq!(
        l[0],
        format!("+CDS: {}", pdu.len() - 1 - usize::from(pdu[0]))
    );
    let decoded = conductor_sms::decode_pdu_hex(l[1]).expect("decodes");
    let conductor_sms::Tpdu::StatusReport(report) = decoded.tpdu else {
        panic!("not a report: {decoded:?}");
    };
    assert_eq!(report.message_reference, 77);
    assert_eq!(report.recipient.to_string(), OTHER);
    assert_eq!(report.status.0, 0);
}

#[test]
fn ds_2_stores_the_report_in_sr_and_announces_it_with_cdsi() {
    let mut b = report_bench(generic(), "2,1,0,2,0");
    assert_eq!(b.advance(Duration::from_secs(2)), "\r\n+CDSI: \"SR\",1\r\n");
    b.at("AT+CPMS=\"SR\"\r");
    let out = b.at("AT+CMGR=1\r");
    let pdu = lines(&out)[1].to_owned();
    assert!(matches!(
        conductor_sms::decode_pdu_hex(&pdu).map(|p| p.tpdu),
        Ok(conductor_sms::Tpdu::StatusReport(_))
    ));
}

#[test]
fn ds_0_drops_the_report() {
    let mut b = report_bench(generic(), "2,1,0,0,0");
    assert_eq!(b.advance(Duration::from_secs(5)), "");
    assert_eq!(b.net.stats().status_reports_discarded, 1);
}

#[test]
fn quectel_announces_a_report_in_sm_that_it_stored_in_sr() {
    let mut b = report_bench(quiet(Personality::quectel_ec25()), "2,1,0,2,0");
    assert_eq!(b.advance(Duration::from_secs(2)), "\r\n+CDSI: \"SM\",0\r\n");
    assert_eq!(b.at("AT+CMGR=0\r"), "\r\nOK\r\n", "SM slot 0 is empty");
    b.at("AT+CPMS=\"SR\",\"SM\",\"SM\"\r");
    assert!(b.at("AT+CMGR=0\r").starts_with("\r\n+CMGR: 0,,"));
}

#[test]
fn huawei_3g_announces_a_report_with_cmti_sr() {
    let mut b = report_bench(quiet(Personality::huawei_e173()), "2,1,0,2,0");
    assert_eq!(b.advance(Duration::from_secs(2)), "\r\n+CMTI: \"SR\",0\r\n");
}

#[test]
fn balong_stores_the_report_in_the_receive_memory() {
    let mut b = report_bench(quiet(Personality::huawei_e3372()), "2,1,0,2,0");
    assert_eq!(b.advance(Duration::from_secs(2)), "\r\n+CDSI: \"SM\",0\r\n");
    assert!(b.at("AT+CMGR=0\r").starts_with("\r\n+CMGR: 0,,"));
}

#[test]
fn reports_for_outside_numbers_carry_the_configured_status() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,1,0,1,0\r");
    b.net.set_status_reports(StatusReportSettings {
        enabled: true,
        delay: Duration::from_millis(500),
        status: 0x46,
    });
    let (len, hex) = submit_to("+447700900001", "out", true);
    b.at(&format!("AT+CMGS={len}\r"));
    b.at(&format!("{hex}\x1a"));
    let out = b.advance(Duration::from_millis(500));
    let decoded = conductor_sms::decode_pdu_hex(lines(&out)[1]).expect("decodes");
    let conductor_sms::Tpdu::StatusReport(report) = decoded.tpdu else {
        panic!("not a report");
    };
    assert_eq!(report.status.0, 0x46);
    assert_eq!(b.net.outside().len(), 1);
}

#[test]
fn a_full_sim_makes_the_network_hold_messages_until_a_slot_is_deleted() {
    let mut o = options(generic(), crate::support::OWN);
    o.sim_capacity = 2;
    let mut b = Bench::with(vec![o]);
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,1,0,0,0\r");
    for text in ["1", "2", "3", "4"] {
        b.inject(0, "+33612345678", text);
    }
    assert_eq!(b.output(), "\r\n+CMTI: \"SM\",1\r\n\r\n+CMTI: \"SM\",2\r\n");
    assert_eq!(
        b.at("AT+CPMS?\r"),
        "\r\n+CPMS: \"SM\",2,2,\"SM\",2,2,\"SM\",2,2\r\n\r\nOK\r\n"
    );
    let held = b.net.held(b.now);
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].reason, Some("memory_full"));
    assert_eq!(held[0].text.as_deref(), Some("3"));
    // Deleting a slot is "memory available": the next held message comes in at once.
    assert_eq!(b.at("AT+CMGD=1\r"), "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n");
    assert_eq!(b.net.held(b.now).len(), 1);
    b.at("AT+CMGD=2\r");
    assert_eq!(b.output(), "");
    assert_eq!(b.net.held(b.now).len(), 0);
    let listing = b.at("AT+CMGL=4\r");
    let texts: Vec<String> = lines(&listing)
        .iter()
        .filter_map(|l| conductor_sms::decode_pdu_hex(l).ok().and_then(|p| p.text()))
        .collect();
    assert_eq!(texts, vec!["3", "4"], "nothing lost, order kept");
}

#[test]
fn held_messages_are_retried_periodically_too() {
    let mut o = options(generic(), crate::support::OWN);
    o.sim_capacity = 1;
    let mut b = Bench::with(vec![o]);
    b.quiet_pdu_setup();
    b.inject(0, "+33612345678", "1");
    b.inject(0, "+33612345678", "2");
    // Free the slot behind the modem's back (no "memory available"): only the periodic
    // retry can find out.
    b.net
        .modem_mut(ModemId(0))
        .expect("modem")
        .sim_card_mut()
        .delete("SM", 1)
        .expect("index");
    assert_eq!(b.net.held(b.now).len(), 1);
    b.advance(Duration::from_secs(30));
    assert_eq!(b.net.held(b.now).len(), 0);
}

#[test]
fn a_long_text_arrives_as_concatenated_parts_and_unicode_as_ucs2() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    let long = "x".repeat(200);
    assert_eq!(b.inject(0, "+33612345678", &long).len(), 2);
    assert_eq!(b.inject(0, "+33612345678", "Привет").len(), 1);
    let listing = b.at("AT+CMGL=4\r");
    let parts: Vec<conductor_sms::DecodedPdu> = lines(&listing)
        .iter()
        .filter_map(|l| conductor_sms::decode_pdu_hex(l).ok())
        .collect();
    assert_eq!(parts.len(), 3);
    let c1 = parts[0].concat().expect("concat");
    let c2 = parts[1].concat().expect("concat");
    assert_eq!((c1.total, c1.seq, c2.seq), (2, 1, 2));
    assert_eq!(c1.reference, c2.reference);
    assert_eq!(parts[2].text().as_deref(), Some("Привет"));
}

#[test]
fn an_alphanumeric_sender_is_kept() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    let pdus = b.inject(0, "MyBank", "code 1234");
    let decoded = conductor_sms::decode_pdu_hex(&pdus[0]).expect("decodes");
    assert_eq!(decoded.party().to_string(), "MyBank");
}
