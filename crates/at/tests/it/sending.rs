//! `AT+CMGS`: prompt, data phase, ambiguity and ESC recovery.

use conductor_at::cmd::cmgs;
use conductor_at::{CmsCode, Command, DiscardReason, ErrorClass, Event, FinalResult, Urc};

use crate::util::{Step, advance, input, run};

const PDU: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";

fn send() -> Step {
    Step::Submit(cmgs::send(PDU).expect("valid PDU"))
}

fn data_phase() -> Vec<u8> {
    let mut bytes = PDU.as_bytes().to_vec();
    bytes.push(0x1A);
    bytes
}

#[test]
fn the_prompt_flow_writes_the_pdu_with_ctrl_z_and_completes_with_the_reference() {
    let outcome = run(&[
        send(),
        input("\r\n> "),
        input("\r\n+CMGS: 42\r\n\r\nOK\r\n"),
    ]);
    assert_eq!(
        outcome.transmits,
        vec![b"AT+CMGS=23\r".to_vec(), data_phase()]
    );
    let Some(Event::Completed {
        response, pdu_sent, ..
    }) = outcome.events.first()
    else {
        panic!("expected completion, got {:?}", outcome.events);
    };
    assert!(*pdu_sent);
    assert_eq!(cmgs::parse(&response.lines), Ok(42));
}

#[test]
fn every_prompt_variant_and_echo_of_command_and_pdu_work() {
    let variants = [
        "\r\n> ".to_owned(),
        "\r\n>".to_owned(),
        "> ".to_owned(),
        "AT+CMGS=23\r\r\n> ".to_owned(),
        "AT+CMGS=23\r> ".to_owned(),
        "\0\r\n> ".to_owned(),
    ];
    for prompt in variants {
        // With echo on, the modem echoes the PDU and the Ctrl-Z after the prompt.
        let answer = format!("{PDU}\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n");
        let outcome = run(&[send(), input(&prompt), input(answer)]);
        assert_eq!(outcome.transmits.len(), 2, "{prompt:?}");
        assert_eq!(outcome.events.len(), 1, "{prompt:?}: {:?}", outcome.events);
        assert_eq!(cmgs::parse(&outcome.response(0).lines), Ok(7), "{prompt:?}");
    }
}

#[test]
fn a_prompt_and_the_answer_in_one_read_still_write_the_pdu_once() {
    let outcome = run(&[send(), input("\r\n> \r\n+CMGS: 1\r\n\r\nOK\r\n")]);
    assert_eq!(
        outcome.transmits,
        vec![b"AT+CMGS=23\r".to_vec(), data_phase()]
    );
    assert!(outcome.response(0).is_ok());
}

#[test]
fn a_cms_error_before_the_prompt_completes_with_the_pdu_not_sent() {
    let outcome = run(&[send(), input("\r\n+CMS ERROR: 330\r\n")]);
    assert_eq!(outcome.transmits, vec![b"AT+CMGS=23\r".to_vec()]);
    assert!(matches!(
        &outcome.events[..],
        [Event::Completed { pdu_sent: false, response, .. }]
            if response.result == FinalResult::CmsError(CmsCode::SMSC_ADDRESS_UNKNOWN)
    ));
    assert_eq!(
        outcome.response(0).result.class(),
        Some(ErrorClass::Permanent)
    );
}

#[test]
fn a_cms_error_after_the_pdu_completes_with_the_pdu_sent() {
    let outcome = run(&[send(), input("\r\n> "), input("\r\n+CMS ERROR: 38\r\n")]);
    assert!(matches!(
        &outcome.events[..],
        [Event::Completed { pdu_sent: true, response, .. }]
            if response.result == FinalResult::CmsError(CmsCode::NETWORK_OUT_OF_ORDER)
    ));
}

#[test]
fn a_urc_between_prompt_and_result_leaves_as_a_urc() {
    let outcome = run(&[
        send(),
        input("\r\n> "),
        input("\r\n+CMTI: \"SM\",9\r\n\r\n+CMGS: 3\r\n\r\nOK\r\n"),
    ]);
    assert!(matches!(
        outcome.events[0],
        Event::Urc(Urc::MessageStored { index: 9, .. })
    ));
    assert_eq!(cmgs::parse(&outcome.response(0).lines), Ok(3));
}

#[test]
fn a_stuck_prompt_after_the_pdu_times_out_with_esc_and_the_send_is_ambiguous() {
    let outcome = run(&[send(), input("\r\n> "), advance(61.0)]);
    assert_eq!(
        outcome.transmits,
        vec![b"AT+CMGS=23\r".to_vec(), data_phase(), vec![0x1B]]
    );
    assert_eq!(
        outcome.events,
        vec![Event::TimedOut {
            id: outcome.id(0),
            pdu_sent: true
        }]
    );
}

#[test]
fn a_missing_prompt_times_out_early_with_esc_and_the_send_is_not_ambiguous() {
    let outcome = run(&[send(), advance(16.0)]);
    assert_eq!(
        outcome.transmits,
        vec![b"AT+CMGS=23\r".to_vec(), vec![0x1B]]
    );
    assert_eq!(
        outcome.events,
        vec![Event::TimedOut {
            id: outcome.id(0),
            pdu_sent: false
        }]
    );
}

#[test]
fn a_late_prompt_after_a_timeout_is_cancelled_with_esc_and_its_answer_is_stray() {
    let outcome = run(&[
        send(),
        advance(16.0),
        input("\r\n> "),
        input("\r\nOK\r\n"),
        Step::Submit(Command::new("AT").expect("valid")),
        input("\r\nOK\r\n"),
    ]);
    assert_eq!(
        outcome.transmits,
        vec![
            b"AT+CMGS=23\r".to_vec(),
            vec![0x1B],
            vec![0x1B],
            b"AT\r".to_vec()
        ]
    );
    assert_eq!(
        outcome.events[1..3],
        [
            Event::Discarded {
                line: ">".into(),
                reason: DiscardReason::UnexpectedPrompt
            },
            Event::Discarded {
                line: "OK".into(),
                reason: DiscardReason::Stray
            },
        ]
    );
    assert!(outcome.response(1).is_ok());
}

#[test]
fn a_send_is_refused_while_busy_and_handed_back() {
    let outcome = run(&[Step::Submit(Command::new("AT").expect("valid")), send()]);
    assert!(matches!(&outcome.submits[1], Err(busy) if busy.command.pdu() == Some(PDU)));
}
