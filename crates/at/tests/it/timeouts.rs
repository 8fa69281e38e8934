//! Timeouts, draining, and late answers that must not be taken for the next command's.

use std::time::Duration;

use conductor_at::{Config, DiscardReason, Event, InfoLine, Urc};

use crate::util::{advance, input, run, run_config, submit};

#[test]
fn a_timed_out_command_reports_and_the_engine_refuses_commands_while_draining() {
    let outcome = run(&[submit("AT+CSQ"), advance(5.0), submit("AT")]);
    assert_eq!(
        outcome.events,
        vec![Event::TimedOut {
            id: outcome.id(0),
            pdu_sent: false
        }]
    );
    assert!(outcome.submits[1].is_err());
    // No ESC for a command without a data phase.
    assert_eq!(outcome.transmits, vec![b"AT+CSQ\r".to_vec()]);
}

#[test]
fn a_late_answer_after_a_timeout_is_not_taken_for_the_next_command() {
    let outcome = run(&[
        submit("AT+COPS?"),
        advance(6.0),
        input("\r\n+COPS: 0,0,\"Late Net\",7\r\n\r\nOK\r\n"),
        submit("AT+CSQ"),
        input("\r\n+CSQ: 12,99\r\n\r\nOK\r\n"),
    ]);
    assert_eq!(
        outcome.events[1..3],
        [
            Event::Discarded {
                line: "+COPS: 0,0,\"Late Net\",7".into(),
                reason: DiscardReason::Stray
            },
            Event::Discarded {
                line: "OK".into(),
                reason: DiscardReason::Stray
            },
        ]
    );
    assert_eq!(
        outcome.response(1).lines,
        vec![InfoLine::new("+CSQ: 12,99")]
    );
}

#[test]
fn draining_ends_after_a_quiet_period_when_no_answer_comes() {
    let outcome = run(&[
        submit("AT+CSQ"),
        advance(5.0),
        advance(1.0),
        submit("AT"),
        advance(1.0),
        submit("AT"),
        input("\r\nOK\r\n"),
    ]);
    assert!(outcome.submits[1].is_err(), "still draining after 1 s");
    assert!(outcome.submits[2].is_ok(), "idle after 2 s of quiet");
    assert!(outcome.response(2).is_ok());
}

#[test]
fn stray_lines_extend_the_quiet_period_but_not_past_the_limit() {
    let config = Config {
        drain_quiet: Duration::from_secs(2),
        drain_limit: Duration::from_secs(5),
        ..Config::default()
    };
    let mut steps = vec![submit("AT+CSQ"), advance(5.0)];
    for _ in 0..4 {
        steps.push(advance(1.5));
        steps.push(input("\r\nchatter\r\n"));
    }
    steps.push(submit("AT"));
    let outcome = run_config(&config, &steps);
    assert!(outcome.submits[1].is_ok(), "the drain limit ended it");

    let outcome = run_config(&config, &steps[..6]);
    assert_eq!(outcome.events.len(), 3, "{:?}", outcome.events);
}

#[test]
fn urcs_keep_flowing_while_draining_and_the_old_prefix_is_stray() {
    let outcome = run(&[
        submit("AT+CREG?"),
        advance(5.0),
        input("\r\n+CMTI: \"SM\",2\r\n+CREG: 0,1\r\n"),
    ]);
    assert_eq!(
        outcome.events[1..],
        [
            Event::Urc(Urc::MessageStored {
                storage: "SM".into(),
                index: 2
            }),
            Event::Discarded {
                line: "+CREG: 0,1".into(),
                reason: DiscardReason::Stray
            },
        ]
    );
}

#[test]
fn a_command_answered_just_before_its_deadline_completes() {
    let outcome = run(&[
        submit("AT+CSQ"),
        advance(4.9),
        input("\r\nOK\r\n"),
        advance(1.0),
    ]);
    assert!(outcome.response(0).is_ok());
    assert_eq!(outcome.events.len(), 1);
}

#[test]
fn a_line_half_received_before_a_submit_is_not_taken_for_its_answer() {
    // Found by the robustness property: the tail of a stale `+CMS ERROR` arrived after the
    // next command was written.
    let outcome = run(&[
        input("\r\n+CMS ERROR: 5"),
        submit("AT"),
        input("00\r\n\r\nOK\r\n"),
    ]);
    assert_eq!(
        outcome.events[0],
        Event::Discarded {
            line: "+CMS ERROR: 500".into(),
            reason: DiscardReason::Stray
        }
    );
    assert!(outcome.response(0).is_ok());
}
