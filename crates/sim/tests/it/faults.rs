//! Faults on the sans-IO modem: hang, unplug, garbage, lost bytes.

use std::time::Duration;

use conductor_sim::{Fault, FaultKind, ModemId};

use crate::support::{Bench, generic};

fn fault(b: &mut Bench, f: Fault) {
    b.net.apply_fault(b.now, ModemId(0), &f).expect("fault");
}

#[test]
fn a_hung_modem_answers_nothing_until_its_time_is_up() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    fault(
        &mut b,
        Fault::Hang {
            seconds: Some(Duration::from_secs(10)),
        },
    );
    assert_eq!(b.at("AT\r"), "");
    assert_eq!(b.advance(Duration::from_secs(9)), "");
    assert_eq!(b.at("AT\r"), "");
    b.advance(Duration::from_secs(1));
    assert_eq!(b.at("AT\r"), "\r\nOK\r\n");
}

#[test]
fn a_hung_modem_still_stores_messages_but_their_urcs_are_lost() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,1,0,0,0\r");
    fault(&mut b, Fault::Hang { seconds: None });
    b.inject(0, "+33612345678", "while hung");
    assert_eq!(b.output(), "");
    b.net
        .clear_fault(b.now, ModemId(0), Some(FaultKind::Hang))
        .expect("clear");
    assert_eq!(b.output(), "");
    assert_eq!(b.net.unread(ModemId(0)), 1, "a sweep finds it");
}

#[test]
fn an_unplugged_modem_is_silent_and_the_network_holds_its_messages() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    fault(
        &mut b,
        Fault::Unplug {
            seconds: Some(Duration::from_secs(5)),
        },
    );
    assert!(!b.net.modem(ModemId(0)).expect("modem").is_plugged());
    assert_eq!(b.at("AT\r"), "");
    b.inject(0, "+33612345678", "while away");
    let held = b.net.held(b.now);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].reason, Some("unreachable"));
    b.advance(Duration::from_secs(5));
    assert!(b.net.modem(ModemId(0)).expect("modem").is_plugged());
    assert_eq!(b.net.held(b.now).len(), 0);
    assert_eq!(b.net.unread(ModemId(0)), 1);
    // Plugged back in means powered up: echo is on again.
    assert_eq!(b.at("AT\r"), "AT\r\r\nOK\r\n");
}

#[test]
fn garbage_comes_between_lines_at_the_next_boundary() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    fault(&mut b, Fault::Garbage { bytes: 8 });
    let mut out = Vec::new();
    b.net.handle_input(b.now, ModemId(0), b"AT\r");
    while let Some(bytes) = b.net.poll_output(ModemId(0)) {
        out.extend(bytes);
    }
    assert_eq!(out.len(), 8 + 6);
    assert_eq!(&out[8..], b"\r\nOK\r\n");
}

#[test]
fn dropping_output_bytes_loses_about_the_fraction_asked() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    fault(&mut b, Fault::DropOutput { fraction: 0.5 });
    let mut total = 0;
    for _ in 0..200 {
        total += b.at("AT\r").len();
    }
    // 200 × 6 bytes, half lost give or take.
    assert!((400..800).contains(&total), "{total}");
    b.net.clear_fault(b.now, ModemId(0), None).expect("clear");
    assert_eq!(b.at("AT\r"), "\r\nOK\r\n");
}

#[test]
fn a_modem_without_network_gets_its_messages_once_it_registers_again() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,1,0,0,0\r");
    fault(
        &mut b,
        Fault::NoNetwork {
            seconds: Some(Duration::from_secs(3)),
        },
    );
    b.inject(0, "+33612345678", "out of coverage");
    assert_eq!(b.net.held(b.now).len(), 1);
    assert_eq!(b.advance(Duration::from_secs(3)), "\r\n+CMTI: \"SM\",1\r\n");
    assert_eq!(b.net.held(b.now).len(), 0);
}

#[test]
fn a_locked_sim_receives_nothing_until_the_pin_is_entered() {
    let mut options = crate::support::options(generic(), crate::support::OWN);
    options.pin = Some("1234".into());
    let mut b = Bench::with(vec![options]);
    b.at("ATE0\r");
    b.inject(0, "+33612345678", "waiting");
    assert_eq!(b.net.held(b.now).len(), 1);
    assert_eq!(b.at("AT+CPIN=\"1234\"\r"), "\r\nOK\r\n");
    assert_eq!(b.net.held(b.now).len(), 0);
    assert_eq!(b.net.unread(ModemId(0)), 1);
}
