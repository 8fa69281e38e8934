//! Each personality replays its device's transcript (`crates/at/tests/transcripts/`, real
//! device behaviour collected in `docs/real-modems.md`), and the answers that do not depend on
//! the SIM's contents or on identity numbers must match the device's line for line.

use std::path::PathBuf;

use conductor_sim::personality::Personality;

use crate::storage::quiet;
use crate::support::{Bench, lines};

/// Host commands whose answer is compared. The rest (identity numbers, message counts, PDUs)
/// differs by design.
fn compared(command: &str) -> bool {
    const EXACT: &[&str] = &[
        "AT",
        "ATE0",
        "AT+CMEE=1",
        "AT+CMEE?",
        "AT+CPIN?",
        "AT+CGMI",
        "AT+CGMM",
        "AT+CGMR",
        "AT+CPMS=?",
        "AT+CNMI=?",
        "AT+CNMI?",
        "AT+CSCA?",
        "AT+CSQ",
        "AT+COPS?",
        "AT+MODE=2",
    ];
    EXACT.contains(&command) || (command.starts_with("AT+CNMI=") && !command.ends_with('?'))
}

/// One exchange of a transcript: the host line, the PDU after the prompt if any, and the
/// modem's lines.
struct Exchange {
    command: String,
    pdu: Option<String>,
    answers: Vec<String>,
}

fn exchanges(text: &str) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("> ") {
            out.push(Exchange {
                command: command.to_owned(),
                pdu: None,
                answers: Vec::new(),
            });
            open = true;
        } else if let Some(answer) = line.strip_prefix("< ") {
            if let (true, Some(exchange)) = (open, out.last_mut()) {
                exchange.answers.push(answer.to_owned());
            }
        } else if let Some(pdu) = line.strip_prefix("= ") {
            if let Some(exchange) = out.last_mut() {
                exchange.pdu = Some(pdu.to_owned());
            }
        } else if !line.starts_with("<~") {
            open = false;
        }
    }
    out
}

/// Vendor noise is compared nowhere: it comes when it comes.
fn is_noise(line: &str) -> bool {
    line.starts_with('^') && !line.starts_with("^ICCID")
}

fn transcript(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../at/tests/transcripts")
        .join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(personality: Personality) {
    let name = personality.name;
    let mut b = Bench::new(quiet(personality));
    let mut checked = 0;
    for Exchange {
        command,
        pdu,
        answers,
    } in exchanges(&transcript(name))
    {
        let mut out = b.at(&format!("{command}\r"));
        if let Some(pdu) = pdu {
            out.push_str(&b.at(&format!("{pdu}\x1a")));
        }
        if !compared(&command) {
            continue;
        }
        let got: Vec<String> = lines(&out)
            .into_iter()
            .map(|l| l.trim_end_matches('\r').to_owned())
            .filter(|l| !is_noise(l))
            .collect();
        let expected: Vec<String> = answers.into_iter().filter(|l| !is_noise(l)).collect();
        // The echo of the command is in the transcript when echo was on.
        assert_eq!(got, expected, "{name}: {command}");
        checked += 1;
    }
    assert!(checked >= 8, "{name}: only {checked} exchanges compared");
}

#[test]
fn huawei_e173_answers_like_its_transcript() {
    check(Personality::huawei_e173());
}

#[test]
fn huawei_e3372_answers_like_its_transcript() {
    check(Personality::huawei_e3372());
}

#[test]
fn simcom_sim800_answers_like_its_transcript() {
    check(Personality::simcom_sim800());
}

#[test]
fn simcom_sim7600_answers_like_its_transcript() {
    check(Personality::simcom_sim7600());
}

#[test]
fn quectel_ec25_answers_like_its_transcript() {
    check(Personality::quectel_ec25());
}
