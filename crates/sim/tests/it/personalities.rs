//! Personality behaviour: noise placement, boot windows, reboots, vendor quirks.

use std::time::Duration;

use conductor_sim::personality::Personality;
use conductor_sim::{Fault, ModemId};

use crate::storage::quiet;
use crate::support::{Bench, lines, options};

fn is_noise(line: &str) -> bool {
    line.starts_with('^') || line.starts_with("+QIND:")
}

/// Whether `line` is something a real modem writes in these exchanges.
fn is_well_formed(line: &str) -> bool {
    is_noise(line)
        || line == "OK"
        || line.starts_with("+CMGL: ")
        || line.starts_with("+CMTI: ")
        || line.starts_with("+CSQ: ")
        || line.starts_with("AT")
        || (!line.is_empty() && line.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn noise_lands_between_lines_of_a_listing_but_never_inside_a_line() {
    let mut p = Personality::huawei_e173();
    p.noise_in_response = 0.5;
    let mut b = Bench::with(vec![options(p, crate::support::OWN)]);
    b.at("AT+CMGF=0;+CNMI=2,0,0,0,0\r");
    for i in 0..10 {
        b.inject(0, "+33612345678", &format!("message {i}"));
    }
    b.output();
    let out = b.at("AT+CMGL=4\r");
    let all = lines(&out);
    assert!(
        all.iter().any(|l| is_noise(l)),
        "some noise expected at p=0.5: {out:?}"
    );
    for line in &all {
        let line = line.trim_end_matches('\r');
        assert!(is_well_formed(line), "broken line {line:?} in {out:?}");
    }
    // Every +CMGL header is still followed by its PDU, noise or not.
    let useful: Vec<&str> = all.iter().copied().filter(|l| !is_noise(l)).collect();
    let headers = useful.iter().filter(|l| l.starts_with("+CMGL: ")).count();
    assert_eq!(headers, 10);
    for (i, line) in useful.iter().enumerate() {
        if line.starts_with("+CMGL: ") {
            let pdu = useful.get(i + 1).copied().unwrap_or("");
            assert!(
                conductor_sms::decode_pdu_hex(pdu).is_ok(),
                "{line} then {pdu:?}"
            );
        }
    }
}

#[test]
fn periodic_noise_waits_while_the_host_is_typing_a_line() {
    let mut p = Personality::huawei_e173();
    p.noise_in_response = 0.0;
    let mut b = Bench::with(vec![options(p, crate::support::OWN)]);
    assert_eq!(b.at("AT+CS"), "AT+CS");
    assert_eq!(
        b.advance(Duration::from_secs(12)),
        "",
        "no URC inside the echoed line"
    );
    let out = b.at("Q\r");
    assert!(out.starts_with("Q\r"), "{out:?}");
    assert!(
        lines(&out).iter().any(|l| is_noise(l)),
        "owed noise comes after: {out:?}"
    );
    // And without a line being typed, noise comes on its own.
    assert!(
        lines(&b.advance(Duration::from_secs(5)))
            .iter()
            .all(|l| is_noise(l))
    );
}

#[test]
fn urcs_wait_while_the_prompt_is_open() {
    let mut b = Bench::new(crate::support::generic());
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,1,0,0,0\r");
    assert_eq!(b.at("AT+CMGS=15\r"), "\r\n> ");
    b.inject(0, "+33612345678", "meanwhile");
    assert_eq!(b.output(), "", "nothing after the prompt");
    let out = b.at(&format!("{}\x1b", &crate::support::HI_SUBMIT[..10]));
    assert_eq!(out, "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n");
}

#[test]
fn sim800_refuses_sms_commands_until_sms_ready_after_a_reboot() {
    let mut b = Bench::new(Personality::simcom_sim800());
    b.at("ATE0\r");
    b.net
        .apply_fault(b.now, ModemId(0), &Fault::Reboot)
        .expect("fault");
    assert_eq!(b.output(), "");
    let early = b.advance(Duration::from_secs(1));
    assert_eq!(early, "\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n");
    assert_eq!(
        b.at("AT+CMGF=0\r"),
        "AT+CMGF=0\r\r\nERROR\r\n",
        "echo is back on after boot"
    );
    let later = b.advance(Duration::from_secs(3));
    assert_eq!(later, "\r\nCall Ready\r\n\r\nSMS Ready\r\n");
    assert_eq!(b.at("AT+CMGF=0\r"), "AT+CMGF=0\r\r\nOK\r\n");
}

#[test]
fn a_reboot_restores_defaults_and_keeps_the_sim_contents() {
    let mut b = Bench::new(quiet(Personality::quectel_ec25()));
    b.quiet_pdu_setup();
    b.at("AT+CPMS=\"SM\",\"SM\",\"SM\";+CNMI=1,1,0,2,0;+CMGF=1\r");
    b.inject(0, "+33612345678", "kept");
    b.output();
    b.net
        .apply_fault(b.now, ModemId(0), &Fault::Reboot)
        .expect("fault");
    let banner = b.advance(Duration::from_secs(4));
    assert_eq!(
        lines(&banner),
        vec![
            "RDY",
            "+CFUN: 1",
            "+CPIN: READY",
            "+QUSIM: 1",
            "+QIND: SMS DONE",
            "+QIND: PB DONE"
        ]
    );
    assert_eq!(
        b.at("AT+CNMI?;+CMGF?;+CPMS?\r"),
        "AT+CNMI?;+CMGF?;+CPMS?\r\r\n+CNMI: 2,1,0,0,0\r\n\r\n+CMGF: 0\r\n\r\n+CPMS: \"ME\",0,255,\"ME\",0,255,\"ME\",0,255\r\n\r\nOK\r\n"
    );
    b.at("ATE0;+CPMS=\"SM\"\r");
    assert!(b.at("AT+CMGL=4\r").starts_with("\r\n+CMGL: 0,0,,"));
}

#[test]
fn cfun_1_1_reboots_after_its_ok() {
    let mut b = Bench::new(Personality::simcom_sim7600());
    b.at("ATE0\r");
    assert_eq!(b.at("AT+CFUN=1,1\r"), "\r\nOK\r\n");
    assert_eq!(
        lines(&b.advance(Duration::from_secs(5))),
        vec!["RDY", "+CPIN: READY", "SMS DONE", "PB DONE"]
    );
    assert_eq!(b.at("AT\r"), "AT\r\r\nOK\r\n");
}

#[test]
fn old_huawei_firmware_says_command_not_support() {
    let mut b = Bench::new(quiet(Personality::huawei_e173()));
    b.at("ATE0\r");
    assert_eq!(b.at("AT+MODE=2\r"), "\r\nCOMMAND NOT SUPPORT\r\n");
    assert_eq!(b.at("AT^ICCID?\r"), "\r\nCOMMAND NOT SUPPORT\r\n");
    let crsm = b.at("AT+CRSM=176,12258,0,0,10\r");
    assert!(crsm.starts_with("\r\n+CRSM: 144,0,\"98"), "{crsm:?}");
}

#[test]
fn each_vendor_reads_the_iccid_its_own_way() {
    let cases: [(Personality, &str, &str); 5] = [
        (Personality::generic(), "AT+CCID\r", "+CCID: 89"),
        (Personality::simcom_sim800(), "AT+CCID\r", "89"),
        (
            quiet(Personality::huawei_e3372()),
            "AT^ICCID?\r",
            "^ICCID: 89",
        ),
        (
            quiet(Personality::quectel_ec25()),
            "AT+QCCID\r",
            "+QCCID: 89",
        ),
        (Personality::simcom_sim7600(), "AT+CICCID\r", "+ICCID: 89"),
    ];
    for (p, command, prefix) in cases {
        let name = p.name;
        let mut b = Bench::new(p);
        b.at("ATE0\r");
        let out = b.at(command);
        let line = lines(&out)[0];
        assert!(line.starts_with(prefix), "{name}: {out:?}");
        let padded = matches!(name, "simcom_sim800" | "huawei_e3372" | "quectel_ec25");
        assert_eq!(line.ends_with('F'), padded, "{name}: {line}");
    }
}

#[test]
fn huawei_says_so_when_its_memory_fills_up() {
    let mut o = options(quiet(Personality::huawei_e173()), crate::support::OWN);
    o.sim_capacity = 1;
    let mut b = Bench::with(vec![o]);
    b.quiet_pdu_setup();
    b.at("AT+CNMI=2,1,0,0,0\r");
    b.inject(0, "+33612345678", "fills it");
    assert_eq!(
        b.output(),
        "\r\n+CMTI: \"SM\",0\r\n\r\n^SMMEMFULL: \"SM\"\r\n"
    );
}
