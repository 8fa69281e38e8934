//! Garbage, overlong lines and arbitrary bytes (promise 5: never a panic, never wedged).

use std::time::{Duration, Instant};

use conductor_at::{Command, Config, DiscardReason, Engine, Event, FinalResult};
use proptest::prelude::*;

use crate::util::{input, run, run_config, submit};

#[test]
fn garbage_bytes_between_commands_are_discarded_and_the_next_command_works() {
    let outcome = run(&[
        input(b"\x00\xff\xfe\x01\x02\r\n\xde\xad\xbe\xef\r\n"),
        submit("AT"),
        input("\r\nOK\r\n"),
    ]);
    assert!(
        outcome.events[..2].iter().all(|e| matches!(
            e,
            Event::Discarded {
                reason: DiscardReason::Garbage,
                ..
            }
        )),
        "{:?}",
        outcome.events
    );
    assert!(outcome.response(0).is_ok());
}

#[test]
fn garbage_inside_an_answer_is_discarded_without_ending_it() {
    let outcome = run(&[
        submit("AT+CSQ"),
        input(b"\r\n+CSQ: 3,99\r\n\x01gar\x02\x03bage\x04\r\n\r\nOK\r\n"),
    ]);
    assert_eq!(outcome.response(0).lines.len(), 1);
    assert_eq!(outcome.events.len(), 2);
}

#[test]
fn padding_around_lines_is_ignored() {
    let outcome = run(&[submit("AT"), input(b"\x00\x00\r\n\xffOK\x00\r\n")]);
    assert!(outcome.response(0).is_ok());
    assert_eq!(outcome.events.len(), 1);
}

#[test]
fn an_overlong_line_is_discarded_and_the_lexer_resyncs_at_the_next_line_end() {
    let config = Config {
        max_line_len: 32,
        ..Config::default()
    };
    let mut noise = b"\r\n".to_vec();
    noise.extend(std::iter::repeat_n(b'A', 100));
    noise.extend_from_slice(b"\r\nOK\r\n");
    let outcome = run_config(&config, &[submit("AT"), input(noise)]);
    assert!(matches!(
        &outcome.events[0],
        Event::Discarded { reason: DiscardReason::Overlong, line } if line.starts_with("AAAA")
    ));
    assert!(outcome.response(0).is_ok());
}

#[test]
fn a_line_that_never_ends_is_bounded_and_a_later_line_end_recovers() {
    let mut engine = Engine::with_config(Config {
        max_line_len: 64,
        ..Config::default()
    });
    let now = Instant::now();
    for _ in 0..10_000 {
        engine.handle_input(now, b"xxxxxxxxxxxxxxxx");
    }
    let discards = std::iter::from_fn(|| engine.poll_event()).count();
    assert_eq!(
        discards, 1,
        "one diagnostic per overlong line, not per byte"
    );
    assert!(
        engine
            .submit(now, Command::new("AT").expect("valid"))
            .is_ok()
    );
    engine.handle_input(now, b"\r\nOK\r\n");
    assert!(matches!(
        engine.poll_event(),
        Some(Event::Completed { response, .. }) if response.is_ok()
    ));
}

/// Drives the engine back to idle (timing out and draining whatever the bytes started),
/// then checks that a fresh command completes.
fn assert_usable(engine: &mut Engine, mut now: Instant) {
    for _ in 0..4 {
        if engine.is_idle() {
            break;
        }
        now += Duration::from_secs(3600);
        engine.handle_timeout(now);
    }
    while engine.poll_event().is_some() {}
    while engine.poll_transmit().is_some() {}
    let id = engine
        .submit(now, Command::new("AT").expect("valid"))
        .expect("idle after timeouts");
    assert_eq!(engine.poll_transmit(), Some(b"AT\r".to_vec()));
    engine.handle_input(now, b"\r\nOK\r\n");
    let completed = std::iter::from_fn(|| engine.poll_event()).find_map(|e| match e {
        Event::Completed {
            id: done, response, ..
        } if done == id => Some(response.result),
        _ => None,
    });
    assert_eq!(completed, Some(FinalResult::Ok));
}

fn arbitrary_command() -> impl Strategy<Value = Option<Command>> {
    prop_oneof![
        Just(None),
        Just(Command::new("AT+CMGL=4").ok()),
        Just(Command::new("AT+CREG?").ok()),
        Just(
            Command::new("AT+CMGS=3")
                .and_then(|c| c.with_pdu("00110001"))
                .ok()
        ),
    ]
}

/// Bytes that are likely to hit the interesting paths: line ends, prompts, hex, headers.
fn modemish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"> ".to_vec()),
        Just(b"OK".to_vec()),
        Just(b"+CMGL: 1,0,,3".to_vec()),
        Just(b"+CMT: ,3".to_vec()),
        Just(b"+CMTI: \"SM\",1".to_vec()),
        Just(b"+CMS ERROR: 500".to_vec()),
        Just(b"00110001".to_vec()),
        Just(b"AT+CMGL=4".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_the_engine_stays_usable(
        command in arbitrary_command(),
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cut in 0usize..600,
    ) {
        let now = Instant::now();
        let mut engine = Engine::with_config(Config { max_line_len: 128, ..Config::default() });
        if let Some(command) = command {
            prop_assert!(engine.submit(now, command).is_ok());
        }
        let cut = cut.min(bytes.len());
        engine.handle_input(now, &bytes[..cut]);
        engine.handle_input(now, &bytes[cut..]);
        assert_usable(&mut engine, now);
    }

    #[test]
    fn modem_like_noise_never_panics_and_the_engine_stays_usable(
        command in arbitrary_command(),
        bytes in modemish_bytes(),
    ) {
        let now = Instant::now();
        let mut engine = Engine::new();
        if let Some(command) = command {
            prop_assert!(engine.submit(now, command).is_ok());
        }
        engine.handle_input(now, &bytes);
        assert_usable(&mut engine, now);
    }

    #[test]
    fn any_chunking_of_modem_like_noise_gives_the_same_events(
        command in arbitrary_command(),
        bytes in modemish_bytes(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let now = Instant::now();
        let mut offsets: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        offsets.sort_unstable();
        let feed = |chunks: &[&[u8]]| {
            let mut engine = Engine::new();
            if let Some(command) = command.clone() {
                let _ = engine.submit(now, command);
            }
            let mut events = Vec::new();
            let mut transmits = Vec::new();
            for chunk in chunks {
                engine.handle_input(now, chunk);
                events.extend(std::iter::from_fn(|| engine.poll_event()));
                transmits.extend(std::iter::from_fn(|| engine.poll_transmit()));
            }
            (events, transmits)
        };
        let mut chunks = Vec::new();
        let mut start = 0;
        for &offset in &offsets {
            chunks.push(&bytes[start..offset]);
            start = offset;
        }
        chunks.push(&bytes[start..]);
        prop_assert_eq!(feed(&chunks), feed(&[&bytes[..]]));
    }
}
