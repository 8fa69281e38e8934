//! Lines, echo and final result codes.

use conductor_at::cmd::{creg, csq, identity};
use conductor_at::urc::Startup;
use conductor_at::{CmeCode, CmsCode, DiscardReason, Event, FinalResult, InfoLine, Response, Urc};

use crate::util::{input, run, submit};

fn completed(outcome: &crate::util::Outcome, index: usize, response: Response) -> Event {
    Event::Completed {
        id: outcome.id(index),
        response,
        pdu_sent: false,
    }
}

#[test]
fn a_response_with_echo_off_completes_with_its_information_lines() {
    let outcome = run(&[submit("AT+CSQ"), input("\r\n+CSQ: 17,99\r\n\r\nOK\r\n")]);
    assert_eq!(outcome.transmits, vec![b"AT+CSQ\r".to_vec()]);
    assert_eq!(
        outcome.events,
        vec![completed(
            &outcome,
            0,
            Response {
                lines: vec![InfoLine::new("+CSQ: 17,99")],
                result: FinalResult::Ok
            }
        )]
    );
    assert_eq!(
        csq::parse(&outcome.response(0).lines).map(|q| q.dbm()),
        Ok(Some(-79))
    );
}

#[test]
fn the_echoed_command_line_is_dropped() {
    let outcome = run(&[
        submit("AT+CSQ"),
        input("AT+CSQ\r\r\n+CSQ: 17,99\r\n\r\nOK\r\n"),
    ]);
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(
        outcome.response(0).lines,
        vec![InfoLine::new("+CSQ: 17,99")]
    );
}

#[test]
fn an_echo_in_another_case_and_split_over_reads_is_dropped() {
    // `run` also splits this input at every offset, echo included.
    let outcome = run(&[
        submit("AT+CPMS?"),
        input("at+cpms?\r\r\n+CPMS: \"SM\",1,30,\"SM\",1,30,\"SM\",1,30\r\n\r\nOK\r\n"),
    ]);
    assert_eq!(outcome.response(0).lines.len(), 1);
    assert!(outcome.response(0).is_ok());
}

#[test]
fn an_echo_arriving_in_separate_reads_is_dropped() {
    let outcome = run(&[
        submit("AT+CGSN"),
        input("AT+C"),
        input("GSN\r"),
        input("\r\n356938035643809\r\n"),
        input("\r\nOK\r\n"),
    ]);
    assert_eq!(
        identity::parse_imei(&outcome.response(0).lines),
        Ok("356938035643809".into())
    );
}

#[test]
fn ate0_is_still_echoed_and_the_echo_is_dropped() {
    let outcome = run(&[submit("ATE0"), input("ATE0\r\r\nOK\r\n")]);
    assert_eq!(
        outcome.events,
        vec![completed(
            &outcome,
            0,
            Response {
                lines: vec![],
                result: FinalResult::Ok
            }
        )]
    );
}

#[test]
fn bare_cr_and_bare_lf_line_ends_are_tolerated() {
    for transcript in [
        "+CSQ: 5,99\rOK\r",
        "\n+CSQ: 5,99\n\nOK\n",
        "+CSQ: 5,99\r\r\n\nOK\n\r",
    ] {
        let outcome = run(&[submit("AT+CSQ"), input(transcript)]);
        assert_eq!(
            outcome.response(0).lines,
            vec![InfoLine::new("+CSQ: 5,99")],
            "{transcript:?}"
        );
    }
}

#[test]
fn numeric_and_verbose_errors_are_final_results_with_codes() {
    let cases = [
        ("+CME ERROR: 10\r\n", FinalResult::CmeError(CmeCode(10))),
        (
            "+CME ERROR: SIM not inserted\r\n",
            FinalResult::CmeError(CmeCode::SIM_NOT_INSERTED),
        ),
        ("+CMS ERROR: 304\r\n", FinalResult::CmsError(CmsCode(304))),
        (
            "+CMS ERROR: Invalid PDU mode parameter\r\n",
            FinalResult::CmsError(CmsCode::INVALID_PDU_MODE_PARAMETER),
        ),
        (
            "+CME ERROR: vendor says no\r\n",
            FinalResult::CmeErrorText("vendor says no".into()),
        ),
        ("+CMS ERROR: 4711\r\n", FinalResult::CmsError(CmsCode(4711))),
        ("ERROR\r\n", FinalResult::Error),
        ("COMMAND NOT SUPPORT\r\n", FinalResult::Error),
    ];
    for (answer, expected) in cases {
        let outcome = run(&[submit("AT+CPIN?"), input(format!("\r\n{answer}"))]);
        assert_eq!(outcome.response(0).result, expected, "{answer:?}");
    }
}

#[test]
fn a_final_result_while_idle_is_a_stray_diagnostic() {
    let outcome = run(&[input("\r\nOK\r\n")]);
    assert_eq!(
        outcome.events,
        vec![Event::Discarded {
            line: "OK".into(),
            reason: DiscardReason::Stray
        }]
    );
}

#[test]
fn unprefixed_answers_belong_to_the_command() {
    let outcome = run(&[
        submit("AT+CCID"),
        input("\r\n89441000301234567890F\r\n\r\nOK\r\n"),
    ]);
    assert_eq!(
        identity::parse_iccid(&outcome.response(0).lines),
        Ok("89441000301234567890".into())
    );
}

#[test]
fn the_creg_query_answer_is_a_response_and_a_creg_report_is_a_urc() {
    let outcome = run(&[
        submit("AT+CREG?"),
        input("\r\n+CREG: 2,1,\"00C3\",\"A1B2\"\r\n\r\nOK\r\n"),
        input("\r\n+CREG: 5,\"00C3\",\"A1B3\"\r\n"),
    ]);
    let answer = creg::parse_query(creg::Domain::CircuitSwitched, &outcome.response(0).lines);
    assert_eq!(
        answer.map(|r| (r.reporting, r.status)),
        Ok((Some(2), creg::RegistrationStatus::Home))
    );
    assert!(matches!(
        outcome.events.last(),
        Some(Event::Urc(Urc::Registration(creg::Registration {
            reporting: None,
            status: creg::RegistrationStatus::Roaming,
            cell: Some(0xA1B3),
            ..
        })))
    ));
}

#[test]
fn a_creg_report_during_another_command_is_a_urc() {
    let outcome = run(&[
        submit("AT+CSQ"),
        input("\r\n+CREG: 1\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
    ]);
    assert!(matches!(
        outcome.events[0],
        Event::Urc(Urc::Registration(_))
    ));
    assert_eq!(
        outcome.response(0).lines,
        vec![InfoLine::new("+CSQ: 20,99")]
    );
}

#[test]
fn a_spontaneous_cpin_ready_is_a_urc_but_answers_cpin_query() {
    let outcome = run(&[
        input("\r\nRDY\r\n\r\n+CPIN: READY\r\n"),
        submit("AT+CPIN?"),
        input("\r\n+CPIN: READY\r\n\r\nOK\r\n"),
    ]);
    assert_eq!(outcome.events[0], Event::Urc(Urc::Startup(Startup::Ready)));
    assert!(matches!(outcome.events[1], Event::Urc(Urc::SimStatus(_))));
    assert_eq!(
        outcome.response(0).lines,
        vec![InfoLine::new("+CPIN: READY")]
    );
    assert_eq!(outcome.events.len(), 3);
}

#[test]
fn call_results_are_final_for_dial_commands_and_urcs_otherwise() {
    let outcome = run(&[
        submit("ATD+441234567890;"),
        input("\r\nNO CARRIER\r\n"),
        input("\r\nNO CARRIER\r\n"),
    ]);
    assert_eq!(outcome.response(0).result, FinalResult::NoCarrier);
    assert_eq!(outcome.events.last(), Some(&Event::Urc(Urc::NoCarrier)));
}
