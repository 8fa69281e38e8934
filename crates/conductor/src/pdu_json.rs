//! The JSON shape of a decoded PDU, as `conductor pdu decode` prints it.
//!
//! Why here and not in the codec: the codec stays free of serde and of presentation choices;
//! this one mapping is what operators, fixtures and scripts read, so it lives at the edge and
//! its keys are documented once (README, "PDU tools"). Keys appear only when they apply.

use conductor_sms::{DecodedPdu, Payload, Tpdu, UserData, encode_hex};
use serde_json::{Map, Value, json};

/// The JSON object for one decoded PDU.
pub fn decoded_pdu(pdu: &DecodedPdu) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(pdu.tpdu.kind()));
    out.insert(
        "smsc".into(),
        pdu.smsc
            .as_ref()
            .map_or(Value::Null, |a| json!(a.to_string())),
    );
    match &pdu.tpdu {
        Tpdu::Deliver(deliver) => {
            out.insert("sender".into(), json!(deliver.originator.to_string()));
            out.insert("timestamp".into(), json!(deliver.timestamp.to_rfc3339()));
        }
        Tpdu::Submit(submit) => {
            out.insert("recipient".into(), json!(submit.destination.to_string()));
            out.insert("message_ref".into(), json!(submit.message_reference));
            out.insert(
                "status_report_request".into(),
                json!(submit.status_report_request),
            );
            if let Some(validity) = &submit.validity {
                out.insert("validity".into(), json!(format!("{validity:?}")));
            }
        }
        Tpdu::StatusReport(report) => {
            out.insert("recipient".into(), json!(report.recipient.to_string()));
            out.insert("message_ref".into(), json!(report.message_reference));
            out.insert(
                "timestamp".into(),
                json!(report.service_centre_timestamp.to_rfc3339()),
            );
            out.insert(
                "discharge_time".into(),
                json!(report.discharge_time.to_rfc3339()),
            );
            out.insert(
                "status".into(),
                json!({
                    "code": report.status.0,
                    "meaning": report.status.meaning(),
                    "category": report.status.category().name(),
                    "final": report.status.is_final(),
                }),
            );
        }
    }
    if let Some(dcs) = pdu.tpdu.dcs() {
        out.insert("dcs".into(), json!(dcs.octet()));
        out.insert("encoding".into(), json!(dcs.encoding().name()));
        if let Some(class) = dcs.class() {
            out.insert("class".into(), json!(class.bits()));
        }
    }
    if let Some(user_data) = pdu.tpdu.user_data() {
        insert_user_data(&mut out, user_data);
    }
    if let Some(concat) = pdu.tpdu.concat() {
        out.insert(
            "concat".into(),
            json!({
                "ref": concat.reference,
                "total": concat.total,
                "seq": concat.seq,
                "ref_bits": concat.width.bits(),
            }),
        );
    }
    Value::Object(out)
}

fn insert_user_data(out: &mut Map<String, Value>, user_data: &UserData) {
    if let Some(text) = user_data.text() {
        out.insert("text".into(), json!(text));
    }
    if let Some(header) = &user_data.header {
        out.insert(
            "udh".into(),
            json!(encode_hex(&header.to_bytes()).to_lowercase()),
        );
    }
    match &user_data.payload {
        Payload::Octets(data) => {
            out.insert("data_hex".into(), json!(encode_hex(data).to_lowercase()));
        }
        Payload::Compressed(data) => {
            out.insert("compressed".into(), json!(true));
            out.insert("data_hex".into(), json!(encode_hex(data).to_lowercase()));
        }
        Payload::Septets(_) | Payload::Ucs2(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_sms::decode_pdu_hex;

    /// Every vector generated from independent implementations (see the `source` of each
    /// line) decodes to the JSON the fixture expects; all mismatches are reported at once.
    #[test]
    fn every_decode_fixture_prints_the_expected_json() {
        let fixtures = include_str!("../../sms/tests/fixtures/decode.jsonl");
        let mut failures = Vec::new();
        let mut checked = 0;
        for line in fixtures.lines().filter(|l| !l.trim().is_empty()) {
            let fixture: Value = serde_json::from_str(line).expect("fixture line is JSON");
            let name = fixture["name"].as_str().unwrap_or("?").to_owned();
            let hex = fixture["hex"].as_str().expect("fixture has hex");
            let decoded = match decode_pdu_hex(hex) {
                Ok(decoded) => decoded_pdu(&decoded),
                Err(error) => {
                    failures.push(format!("{name}: {error}"));
                    continue;
                }
            };
            let Some(expect) = fixture["expect"].as_object() else {
                continue;
            };
            for (key, want) in expect {
                let got = &decoded[key.as_str()];
                let same = match (key.as_str(), want, got) {
                    // Meaning texts are ours; the code and category are the contract.
                    ("status", Value::Object(w), Value::Object(g)) => {
                        w.get("code") == g.get("code") && w.get("category") == g.get("category")
                    }
                    _ => want == got,
                };
                if !same {
                    failures.push(format!("{name}: {key}: want {want}, got {got}"));
                }
            }
            checked += 1;
        }
        assert!(checked >= 40, "only {checked} fixtures checked");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
