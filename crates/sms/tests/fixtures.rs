//! Runs the vectors in `tests/fixtures/` (decode.jsonl, encode.jsonl): real modem and
//! reference-implementation PDUs and constructed spec cases, one JSON object per line.
//!
//! Table-driven (after h2's hpack fixtures): every line is checked, every mismatch is collected
//! with the fixture's name, and the test fails once at the end listing all of them. Only the
//! fields an expectation has are compared; a status's `meaning` wording is not compared (the
//! code and the category are).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use conductor_sms::{
    DataCodingScheme, DecodedPdu, ReferenceWidth, SubmitOptions, Tpdu, decode_pdu_hex, encode_hex,
    encode_submit,
};
use serde_json::Value;

fn fixture_lines(file: &str) -> Vec<(usize, Value)> {
    // CONDUCTOR_SMS_FIXTURES points at another folder of vectors (e.g. while editing them).
    let dir = std::env::var_os("CONDUCTOR_SMS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"));
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{file}:{}: not JSON: {e}", i + 1));
            (i + 1, v)
        })
        .collect()
}

/// Collects "field: expected X, got Y" lines for one fixture.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    fn check(&mut self, field: &str, expected: &Value, got: Value) {
        if *expected != got {
            self.0
                .push(format!("{field}: expected {expected}, got {got}"));
        }
    }
}

fn string_or_null(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::String)
}

fn check_decode(expect: &Value, pdu: &DecodedPdu, m: &mut Mismatches) {
    let Some(expect) = expect.as_object() else {
        m.0.push("expect is not an object".into());
        return;
    };
    let tpdu = &pdu.tpdu;
    let dcs: Option<DataCodingScheme> = tpdu.dcs();
    for (key, want) in expect {
        let got = match key.as_str() {
            "type" => Value::from(tpdu.kind()),
            "smsc" => string_or_null(pdu.smsc.as_ref().map(ToString::to_string)),
            "sender" => match tpdu {
                Tpdu::Deliver(d) => Value::from(d.originator.to_string()),
                _ => Value::Null,
            },
            "recipient" => match tpdu {
                Tpdu::Submit(s) => Value::from(s.destination.to_string()),
                Tpdu::StatusReport(s) => Value::from(s.recipient.to_string()),
                Tpdu::Deliver(_) => Value::Null,
            },
            "text" => string_or_null(pdu.text()),
            "encoding" => dcs.map_or(Value::Null, |d| Value::from(d.encoding().name())),
            "dcs" => dcs.map_or(Value::Null, |d| Value::from(d.octet())),
            "class" => dcs
                .and_then(DataCodingScheme::class)
                .map_or(Value::Null, |c| Value::from(c.bits())),
            "timestamp" => match tpdu {
                Tpdu::Deliver(d) => Value::from(d.timestamp.to_rfc3339()),
                Tpdu::StatusReport(s) => Value::from(s.service_centre_timestamp.to_rfc3339()),
                Tpdu::Submit(_) => Value::Null,
            },
            "discharge_time" => match tpdu {
                Tpdu::StatusReport(s) => Value::from(s.discharge_time.to_rfc3339()),
                _ => Value::Null,
            },
            "message_ref" => match tpdu {
                Tpdu::Submit(s) => Value::from(s.message_reference),
                Tpdu::StatusReport(s) => Value::from(s.message_reference),
                Tpdu::Deliver(_) => Value::Null,
            },
            "status" => match tpdu {
                Tpdu::StatusReport(s) => {
                    let mut obj = serde_json::Map::new();
                    if want.get("code").is_some() {
                        obj.insert("code".into(), Value::from(s.status.0));
                    }
                    if want.get("category").is_some() {
                        obj.insert("category".into(), Value::from(s.status.category().name()));
                    }
                    // The wording of `meaning` may differ; it is not compared.
                    if let Some(meaning) = want.get("meaning") {
                        obj.insert("meaning".into(), meaning.clone());
                    }
                    Value::Object(obj)
                }
                _ => Value::Null,
            },
            "concat" => match pdu.concat() {
                Some(c) => serde_json::json!({
                    "ref": c.reference,
                    "total": c.total,
                    "seq": c.seq,
                    "ref_bits": c.width.bits(),
                }),
                None => Value::Null,
            },
            "udh" => {
                let header = tpdu.user_data().and_then(|u| u.header.as_ref());
                let hex = header.map(|h| encode_hex(&h.to_bytes()).to_lowercase());
                let want_lower = want.as_str().map(str::to_lowercase);
                m.check(key, &string_or_null(want_lower), string_or_null(hex));
                continue;
            }
            "data_hex" => {
                let data = tpdu
                    .user_data()
                    .map(|u| encode_hex(u.payload_bytes()).to_lowercase());
                let want_lower = want.as_str().map(str::to_lowercase);
                m.check(key, &string_or_null(want_lower), string_or_null(data));
                continue;
            }
            other => {
                m.0.push(format!("unknown expectation key {other:?}"));
                continue;
            }
        };
        m.check(key, want, got);
    }
}

#[test]
fn every_decode_fixture_decodes_to_its_expected_fields() {
    let lines = fixture_lines("decode.jsonl");
    assert!(!lines.is_empty(), "decode.jsonl has no fixtures");
    let mut report = String::new();
    let mut failed = 0;
    for (line, fixture) in &lines {
        let name = fixture["name"].as_str().unwrap_or("<unnamed>");
        let hex = fixture["hex"].as_str().unwrap_or_default();
        let mut m = Mismatches::default();
        match decode_pdu_hex(hex) {
            Ok(pdu) => {
                check_decode(&fixture["expect"], &pdu, &mut m);
                // Whatever decodes re-encodes to the same octets (modulo trailing padding).
                match pdu.encode() {
                    Ok(encoded) => {
                        let again = decode_pdu_hex(&encoded.to_hex());
                        if again.as_ref() != Ok(&pdu) {
                            m.0.push(format!("re-encoding changed it: {again:?}"));
                        }
                    }
                    Err(e) => m.0.push(format!("does not re-encode: {e}")),
                }
            }
            Err(e) => m.0.push(format!("does not decode: {e}")),
        }
        if !m.0.is_empty() {
            failed += 1;
            let _ = writeln!(report, "decode.jsonl:{line} {name}:");
            for mismatch in m.0 {
                let _ = writeln!(report, "    {mismatch}");
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} decode fixtures failed:\n{report}",
        lines.len()
    );
}

#[test]
fn every_encode_fixture_encodes_byte_for_byte() {
    let lines = fixture_lines("encode.jsonl");
    assert!(!lines.is_empty(), "encode.jsonl has no fixtures");
    let mut report = String::new();
    let mut failed = 0;
    for (line, f) in &lines {
        let name = f["name"].as_str().unwrap_or("<unnamed>");
        let options = SubmitOptions {
            status_report: f["status_report"].as_bool().unwrap_or(false),
            flash: f["flash"].as_bool().unwrap_or(false),
            validity: f["validity_minutes"]
                .as_u64()
                .map(|m| Duration::from_secs(m * 60)),
            concat_reference: f["concat_ref"]
                .as_u64()
                .and_then(|r| u16::try_from(r).ok())
                .unwrap_or(0),
            reference_width: match f["concat_ref"].as_u64() {
                Some(r) if r > 255 => ReferenceWidth::Bits16,
                _ => ReferenceWidth::Bits8,
            },
        };
        let to = f["to"].as_str().unwrap_or_default();
        let text = f["text"].as_str().unwrap_or_default();
        let mut m = Mismatches::default();
        match encode_submit(to, text, &options) {
            Ok(message) => {
                if let Some(want) = f.get("encoding") {
                    m.check("encoding", want, Value::from(message.encoding.name()));
                }
                let want_parts = f["expect_parts"].as_array().cloned().unwrap_or_default();
                if want_parts.len() != message.parts.len() {
                    m.0.push(format!(
                        "parts: expected {}, got {}",
                        want_parts.len(),
                        message.parts.len()
                    ));
                }
                for (i, (want, got)) in want_parts.iter().zip(&message.parts).enumerate() {
                    let want_pdu = want["pdu"].as_str().map(str::to_uppercase);
                    m.check(
                        &format!("part {} pdu", i + 1),
                        &string_or_null(want_pdu),
                        Value::from(got.pdu.to_hex()),
                    );
                    m.check(
                        &format!("part {} tpdu_length", i + 1),
                        &want["tpdu_length"],
                        Value::from(got.pdu.tpdu_length),
                    );
                }
                // Every part decodes back and the parts join to the text.
                let mut joined = String::new();
                for part in &message.parts {
                    match decode_pdu_hex(&part.pdu.to_hex()) {
                        Ok(pdu) => joined.push_str(&pdu.text().unwrap_or_default()),
                        Err(e) => m.0.push(format!("an encoded part does not decode: {e}")),
                    }
                }
                if joined != text {
                    m.0.push(format!("parts decode to {joined:?}"));
                }
            }
            Err(e) => m.0.push(format!("does not encode: {e}")),
        }
        if !m.0.is_empty() {
            failed += 1;
            let _ = writeln!(report, "encode.jsonl:{line} {name}:");
            for mismatch in m.0 {
                let _ = writeln!(report, "    {mismatch}");
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} encode fixtures failed:\n{report}",
        lines.len()
    );
}
