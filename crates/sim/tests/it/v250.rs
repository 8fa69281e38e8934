//! V.250 basics: echo, framing, chaining, error modes.

use crate::support::{Bench, generic};

#[test]
fn echo_is_on_after_power_up_and_at_answers_ok() {
    let mut b = Bench::new(generic());
    assert_eq!(b.at("AT\r"), "AT\r\r\nOK\r\n");
}

#[test]
fn ate0_turns_echo_off_and_its_own_line_is_still_echoed() {
    let mut b = Bench::new(generic());
    assert_eq!(b.at("ATE0\r"), "ATE0\r\r\nOK\r\n");
    assert_eq!(b.at("AT\r"), "\r\nOK\r\n");
    assert_eq!(b.at("ATE1\r"), "\r\nOK\r\n");
    assert_eq!(b.at("AT\r"), "AT\r\r\nOK\r\n");
}

#[test]
fn echo_comes_byte_by_byte_as_the_host_types() {
    let mut b = Bench::new(generic());
    assert_eq!(b.at("A"), "A");
    assert_eq!(b.at("T"), "T");
    assert_eq!(b.at("\r"), "\r\r\nOK\r\n");
}

#[test]
fn chained_commands_each_get_an_information_block_and_one_final_ok() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    assert_eq!(
        b.at("AT+CMGF=0;+CNMI=1,1,0,2,0;+CMGF?;+CNMI?\r"),
        "\r\n+CMGF: 0\r\n\r\n+CNMI: 1,1,0,2,0\r\n\r\nOK\r\n"
    );
}

#[test]
fn basic_commands_run_together_without_separators() {
    let mut b = Bench::new(generic());
    assert_eq!(b.at("ATE0V1Q0\r"), "ATE0V1Q0\r\r\nOK\r\n");
    assert_eq!(b.at("AT\r"), "\r\nOK\r\n");
}

#[test]
fn an_unknown_command_is_a_bare_error_whatever_cmee_says() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    assert_eq!(b.at("AT+NOPE\r"), "\r\nERROR\r\n");
    b.at("AT+CMEE=2\r");
    assert_eq!(b.at("AT+NOPE\r"), "\r\nERROR\r\n");
}

#[test]
fn cmee_chooses_between_bare_numeric_and_verbose_errors() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    assert_eq!(b.at("AT+CMGR=99\r"), "\r\nERROR\r\n");
    b.at("AT+CMEE=1\r");
    assert_eq!(b.at("AT+CMGR=99\r"), "\r\n+CMS ERROR: 321\r\n");
    assert_eq!(b.at("AT+CPIN=\"1234\"\r"), "\r\n+CME ERROR: 3\r\n");
    b.at("AT+CMEE=2\r");
    assert_eq!(
        b.at("AT+CMGR=99\r"),
        "\r\n+CMS ERROR: Invalid memory index\r\n"
    );
    assert_eq!(
        b.at("AT+CMGS=999\r"),
        "\r\n+CMS ERROR: Invalid PDU mode parameter\r\n"
    );
    assert_eq!(
        b.at("AT+CREG=9\r"),
        "\r\n+CME ERROR: Incorrect parameters\r\n"
    );
    assert_eq!(b.at("AT+CMEE?\r"), "\r\n+CMEE: 2\r\n\r\nOK\r\n");
}

#[test]
fn an_error_stops_the_rest_of_the_line() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    assert_eq!(b.at("AT+CMGF=1;+NOPE;+CMGF=0\r"), "\r\nERROR\r\n");
    assert_eq!(b.at("AT+CMGF?\r"), "\r\n+CMGF: 1\r\n\r\nOK\r\n");
}

#[test]
fn a_syntax_error_runs_the_commands_before_it_then_answers_error() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    assert_eq!(
        b.at("AT+CSQ;+CSCA=\"oops\r"),
        "\r\n+CSQ: 20,99\r\n\r\nERROR\r\n"
    );
}

#[test]
fn lines_without_the_at_prefix_are_ignored() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    assert_eq!(b.at("hello\r\n"), "");
    assert_eq!(b.at("\n\n\r"), "");
}

#[test]
fn backspace_edits_the_line_being_typed() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    assert_eq!(b.at("AT+CSX\x08Q\r"), "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
}

#[test]
fn a_slash_repeats_the_last_line_without_a_carriage_return() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    b.at("AT+CSQ\r");
    assert_eq!(b.at("A/"), "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
}

#[test]
fn atz_restores_echo_and_message_format() {
    let mut b = Bench::new(generic());
    b.at("ATE0;+CMGF=1\r");
    assert_eq!(b.at("ATZ\r"), "\r\nOK\r\n");
    assert_eq!(b.at("AT+CMGF?\r"), "AT+CMGF?\r\r\n+CMGF: 0\r\n\r\nOK\r\n");
}

#[test]
fn atv0_is_refused_because_only_verbose_result_codes_are_simulated() {
    let mut b = Bench::new(generic());
    assert_eq!(b.at("ATV0\r"), "ATV0\r\r\nERROR\r\n");
}

#[test]
fn identity_commands_answer_without_prefix_and_ati_lists_the_model() {
    let mut b = Bench::new(generic());
    b.at("ATE0\r");
    assert_eq!(b.at("AT+CGMI\r"), "\r\nConductor\r\n\r\nOK\r\n");
    let imsi = b.at("AT+CIMI\r");
    assert!(
        imsi.starts_with("\r\n00101") && imsi.ends_with("\r\n\r\nOK\r\n"),
        "{imsi:?}"
    );
    let ati = b.at("ATI\r");
    assert!(ati.contains("Model: Virtual Modem\r\n"), "{ati:?}");
}

#[test]
fn a_locked_sim_asks_for_its_pin_and_a_wrong_one_is_error_16() {
    let mut options = crate::support::options(generic(), crate::support::OWN);
    options.pin = Some("1234".into());
    let mut b = Bench::with(vec![options]);
    b.at("ATE0;+CMEE=1\r");
    assert_eq!(b.at("AT+CPIN?\r"), "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    assert_eq!(b.at("AT+CMGL=4\r"), "\r\n+CMS ERROR: 311\r\n");
    assert_eq!(b.at("AT+CIMI\r"), "\r\n+CME ERROR: 11\r\n");
    assert_eq!(b.at("AT+CREG?\r"), "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    assert_eq!(b.at("AT+CPIN=\"0000\"\r"), "\r\n+CME ERROR: 16\r\n");
    assert_eq!(b.at("AT+CPIN=\"1234\"\r"), "\r\nOK\r\n");
    assert_eq!(b.at("AT+CPIN?\r"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    assert_eq!(b.at("AT+CREG?\r"), "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
}

#[test]
fn three_wrong_pins_block_the_sim_until_the_puk() {
    let mut options = crate::support::options(generic(), crate::support::OWN);
    options.pin = Some("1234".into());
    let mut b = Bench::with(vec![options]);
    b.at("ATE0;+CMEE=1\r");
    for _ in 0..3 {
        assert_eq!(b.at("AT+CPIN=\"9999\"\r"), "\r\n+CME ERROR: 16\r\n");
    }
    assert_eq!(b.at("AT+CPIN?\r"), "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n");
    assert_eq!(b.at("AT+CPIN=\"1234\"\r"), "\r\n+CME ERROR: 16\r\n");
    assert_eq!(b.at("AT+CPIN=\"12345678\",\"4321\"\r"), "\r\nOK\r\n");
    assert_eq!(b.at("AT+CPIN?\r"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
}

#[test]
fn registration_urcs_follow_creg_n() {
    let mut b = Bench::new(generic());
    b.at("ATE0;+CREG=2\r");
    assert_eq!(
        b.at("AT+CREG?\r"),
        "\r\n+CREG: 2,1,\"1A2B\",\"00C0FFEE\",7\r\n\r\nOK\r\n"
    );
    let out = {
        b.net
            .apply_fault(
                b.now,
                conductor_sim::ModemId(0),
                &conductor_sim::Fault::NoNetwork { seconds: None },
            )
            .expect("fault");
        b.output()
    };
    assert_eq!(out, "\r\n+CREG: 2\r\n");
    assert_eq!(
        b.at("AT+CSQ;+COPS?\r"),
        "\r\n+CSQ: 99,99\r\n\r\n+COPS: 0\r\n\r\nOK\r\n"
    );
}
