//! AT+CMGS: prompt, PDU checks, ESC, TP-MR, latency, send faults.

use std::time::Duration;

use conductor_sim::{Fault, ModemId, RejectStage};

use crate::support::{Bench, HI_SUBMIT, generic, options, submit_to};

fn ready() -> Bench {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b
}

#[test]
fn cmgs_prompts_then_answers_with_the_message_reference() {
    let mut b = ready();
    b.net
        .modem_mut(ModemId(0))
        .expect("modem")
        .set_next_message_reference(41);
    assert_eq!(b.at("AT+CMGS=15\r"), "\r\n> ");
    assert_eq!(
        b.at(&format!("{HI_SUBMIT}\x1a")),
        "\r\n+CMGS: 41\r\n\r\nOK\r\n"
    );
    let submitted = b.net.submitted();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].to, "+46708251358");
    assert_eq!(submitted[0].text.as_deref(), Some("hi"));
    assert_eq!(submitted[0].message_references, vec![41]);
    assert_eq!(submitted[0].delivered_to, None);
}

#[test]
fn with_echo_on_the_pdu_is_echoed_after_the_prompt() {
    let mut b = Bench::new(generic());
    b.at("AT+CMEE=1;+CMGF=0\r");
    assert_eq!(b.at("AT+CMGS=15\r"), "AT+CMGS=15\r\r\n> ");
    let out = b.at(&format!("{HI_SUBMIT}\x1a"));
    assert!(out.starts_with(HI_SUBMIT), "{out:?}");
    assert!(
        out.ends_with("\r\n\r\nOK\r\n") && out.contains("\r\n+CMGS: "),
        "{out:?}"
    );
}

#[test]
fn escape_cancels_the_send_with_ok_and_nothing_is_submitted() {
    let mut b = ready();
    b.at("AT+CMGS=15\r");
    assert_eq!(b.at("0001000B91\x1b"), "\r\nOK\r\n");
    assert!(b.net.submitted().is_empty());
    assert_eq!(b.at("AT\r"), "\r\nOK\r\n");
}

#[test]
fn a_length_that_is_not_the_tpdu_length_is_cms_304() {
    let mut b = ready();
    // 16 would count the SMSC length octet: the classic off-by-one.
    b.at("AT+CMGS=16\r");
    assert_eq!(b.at(&format!("{HI_SUBMIT}\x1a")), "\r\n+CMS ERROR: 304\r\n");
    assert!(b.net.submitted().is_empty());
}

#[test]
fn a_pdu_that_is_not_hex_or_not_a_submit_is_cms_304() {
    let mut b = ready();
    b.at("AT+CMGS=15\r");
    assert_eq!(
        b.at("0001000B916407281553F8000002E83Z\x1a"),
        "\r\n+CMS ERROR: 304\r\n"
    );
    b.at("AT+CMGS=15\r");
    assert_eq!(
        b.at("0001000B916407281553F8000002E834\r\x1a"),
        "\r\n+CMS ERROR: 304\r\n",
        "a CR inside the PDU is not hex"
    );
    // A DELIVER (MTI 00) is not something a phone submits.
    b.at("AT+CMGS=15\r");
    assert_eq!(
        b.at("0000000B916407281553F8000002E834\x1a"),
        "\r\n+CMS ERROR: 304\r\n"
    );
    // TP-UDL says 5 septets where 2 are present.
    b.at("AT+CMGS=15\r");
    assert_eq!(
        b.at("0001000B916407281553F8000005E834\x1a"),
        "\r\n+CMS ERROR: 304\r\n"
    );
    assert!(b.net.submitted().is_empty());
}

#[test]
fn text_mode_sends_a_text_after_the_prompt() {
    let mut b = ready();
    b.at("AT+CMGF=1\r");
    assert_eq!(b.at("AT+CMGS=\"+46708251358\"\r"), "\r\n> ");
    let out = b.at("hello\x1a");
    assert!(
        out.starts_with("\r\n+CMGS: ") && out.ends_with("\r\n\r\nOK\r\n"),
        "{out:?}"
    );
    assert_eq!(b.net.submitted()[0].text.as_deref(), Some("hello"));
}

#[test]
fn the_message_reference_increments_and_wraps_at_256() {
    let mut b = ready();
    b.net
        .modem_mut(ModemId(0))
        .expect("modem")
        .set_next_message_reference(254);
    let mut seen = Vec::new();
    for _ in 0..3 {
        b.at("AT+CMGS=15\r");
        let out = b.at(&format!("{HI_SUBMIT}\x1a"));
        let mr: u8 = out
            .trim()
            .strip_prefix("+CMGS: ")
            .and_then(|r| r.split("\r\n").next())
            .and_then(|n| n.parse().ok())
            .expect("mr");
        seen.push(mr);
    }
    assert_eq!(seen, vec![254, 255, 0]);
    let submitted = b.net.submitted();
    assert_eq!(submitted.len(), 1, "the same PDU three times is one entry");
    assert_eq!(submitted[0].count, 3);
    assert_eq!(submitted[0].message_references, vec![254, 255, 0]);
}

#[test]
fn the_answer_comes_after_the_send_latency_and_commands_typed_meanwhile_wait() {
    let mut o = options(generic(), crate::support::OWN);
    o.send_latency = conductor_sim::SendLatency::fixed(Duration::from_secs(2));
    let mut b = Bench::with(vec![o]);
    b.quiet_pdu_setup();
    b.at("AT+CMGS=15\r");
    assert_eq!(b.at(&format!("{HI_SUBMIT}\x1a")), "");
    assert_eq!(b.at("AT\r"), "", "read ahead, answered after the send");
    assert_eq!(b.advance(Duration::from_millis(1999)), "");
    let out = b.advance(Duration::from_millis(1));
    assert!(
        out.starts_with("\r\n+CMGS: ") && out.ends_with("OK\r\n\r\nOK\r\n"),
        "{out:?}"
    );
}

#[test]
fn a_rejection_before_the_prompt_means_nothing_was_sent() {
    let mut b = ready();
    b.net
        .apply_fault(
            b.now,
            ModemId(0),
            &Fault::RejectSends {
                count: 1,
                code: 42,
                stage: RejectStage::BeforePrompt,
            },
        )
        .expect("fault");
    assert_eq!(b.at("AT+CMGS=15\r"), "\r\n+CMS ERROR: 42\r\n");
    assert_eq!(b.at("AT+CMGS=15\r"), "\r\n> ", "only the next send");
}

#[test]
fn a_rejection_after_the_pdu_comes_in_place_of_cmgs() {
    let mut b = ready();
    b.net
        .apply_fault(
            b.now,
            ModemId(0),
            &Fault::RejectSends {
                count: 2,
                code: 38,
                stage: RejectStage::AfterPdu,
            },
        )
        .expect("fault");
    for _ in 0..2 {
        assert_eq!(b.at("AT+CMGS=15\r"), "\r\n> ");
        assert_eq!(b.at(&format!("{HI_SUBMIT}\x1a")), "\r\n+CMS ERROR: 38\r\n");
    }
    b.at("AT+CMGS=15\r");
    assert!(b.at(&format!("{HI_SUBMIT}\x1a")).contains("+CMGS: "));
    assert_eq!(b.net.submitted().len(), 1);
    assert_eq!(b.net.submitted()[0].count, 1);
}

#[test]
fn a_held_send_never_answers_but_reaches_the_network_and_the_modem_carries_on() {
    let mut b = ready();
    b.net
        .apply_fault(
            b.now,
            ModemId(0),
            &Fault::HoldSends {
                count: 1,
                submit: true,
            },
        )
        .expect("fault");
    b.at("AT+CMGS=15\r");
    assert_eq!(b.at(&format!("{HI_SUBMIT}\x1a")), "");
    assert_eq!(b.advance(Duration::from_secs(60)), "");
    assert_eq!(
        b.net.submitted().len(),
        1,
        "the network got it: an ambiguous send"
    );
    assert_eq!(b.at("AT\r"), "\r\nOK\r\n");
}

#[test]
fn without_network_a_send_fails_with_331() {
    let mut b = ready();
    b.net
        .apply_fault(
            b.now,
            ModemId(0),
            &Fault::NoNetwork {
                seconds: Some(Duration::from_secs(5)),
            },
        )
        .expect("fault");
    b.at("AT+CMGS=15\r");
    assert_eq!(b.at(&format!("{HI_SUBMIT}\x1a")), "\r\n+CMS ERROR: 331\r\n");
    b.advance(Duration::from_secs(5));
    b.at("AT+CMGS=15\r");
    assert!(b.at(&format!("{HI_SUBMIT}\x1a")).contains("+CMGS: "));
}

#[test]
fn a_send_to_another_virtual_modem_arrives_there() {
    let mut b = Bench::with(vec![
        options(generic(), crate::support::OWN),
        options(generic(), crate::support::OTHER),
    ]);
    b.quiet_pdu_setup();
    b.at_on(1, "ATE0;+CNMI=2,1,0,0,0\r");
    let (len, hex) = submit_to(crate::support::OTHER, "ping", false);
    b.at(&format!("AT+CMGS={len}\r"));
    b.at(&format!("{hex}\x1a"));
    assert_eq!(b.output_of(1), "\r\n+CMTI: \"SM\",1\r\n");
    let listing = b.at_on(1, "AT+CMGL=4\r");
    let pdu = listing.split("\r\n").nth(2).expect("pdu line");
    let decoded = conductor_sms::decode_pdu_hex(pdu).expect("decodes");
    assert_eq!(decoded.text().as_deref(), Some("ping"));
    assert_eq!(decoded.party().to_string(), crate::support::OWN);
    assert_eq!(b.net.submitted()[0].delivered_to.as_deref(), Some("modem1"));
}

#[test]
fn cmss_sends_a_stored_message_and_marks_it_sent() {
    let mut b = ready();
    let (len, hex) = submit_to("+46708251358", "stored", false);
    b.at(&format!("AT+CMGW={len}\r"));
    assert_eq!(b.at(&format!("{hex}\x1a")), "\r\n+CMGW: 1\r\n\r\nOK\r\n");
    let out = b.at("AT+CMSS=1\r");
    assert!(out.starts_with("\r\n+CMSS: "), "{out:?}");
    assert!(b.at("AT+CMGL=4\r").starts_with("\r\n+CMGL: 1,3,,"));
    assert_eq!(b.net.submitted()[0].text.as_deref(), Some("stored"));
}
