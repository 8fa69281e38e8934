//! `conductor pdu decode|encode` as an operator uses them.

use crate::support::{conductor, json_lines};

const HELLO: &str = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";

#[test]
fn decode_prints_one_json_object_with_the_fields_that_apply() {
    let output = conductor(&["pdu", "decode", HELLO], "");
    assert!(output.status.success(), "{output:?}");
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    let pdu = &lines[0];
    assert_eq!(pdu["type"], "deliver");
    assert_eq!(pdu["smsc"], "+27381000015");
    assert_eq!(pdu["sender"], "27838890001");
    assert_eq!(pdu["text"], "hellohello");
    assert_eq!(pdu["encoding"], "gsm7");
    assert_eq!(pdu["timestamp"], "1999-03-29T15:16:59+02:00");
    assert!(pdu.get("recipient").is_none(), "a deliver has no recipient");
}

#[test]
fn malformed_hex_exits_1_with_one_line_naming_the_octet() {
    for bad in [
        "0791447758100650040C91",
        "07917283010010F5040BC872388809",
        "zz",
        "079",
    ] {
        let output = conductor(&["pdu", "decode", bad], "");
        assert_eq!(output.status.code(), Some(1), "{bad}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{bad}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bad}: {stderr}");
        assert!(output.stdout.is_empty());
    }
    let output = conductor(&["pdu", "decode", "0791447758100650040C91"], "");
    assert!(String::from_utf8_lossy(&output.stderr).contains("at octet"));
}

#[test]
fn a_captured_cmgl_session_decodes_line_by_line_with_errors_in_place() {
    // What a terminal shows for AT+CMGL=4 with two messages, plus one corrupted PDU line.
    let capture = format!(
        "AT+CMGL=4\r\n+CMGL: 0,1,,30\r\n{}\r\n+CMGL: 5,0,,30\r\n{}\r\n+CMGL: 6,0,,30\r\n0791FF\r\n\r\nOK\r\n",
        HELLO, HELLO
    );
    let output = conductor(&["pdu", "decode"], &capture);
    assert_eq!(
        output.status.code(),
        Some(1),
        "one bad line makes the run fail"
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["index"], 0);
    assert_eq!(lines[0]["text"], "hellohello");
    assert_eq!(lines[1]["index"], 5);
    assert_eq!(lines[2]["line"], 7);
    assert!(lines[2]["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[test]
fn encode_gives_the_parts_and_the_length_at_cmgs_expects() {
    let text = "€".repeat(81); // 162 septets: two parts, escape pairs kept whole
    let output = conductor(
        &[
            "pdu",
            "encode",
            "--to",
            "+46708251358",
            "--text",
            &text,
            "--status-report",
            "--validity",
            "1day",
        ],
        "",
    );
    assert!(output.status.success(), "{output:?}");
    let encoded = &json_lines(&output)[0];
    assert_eq!(encoded["encoding"], "gsm7");
    let parts = encoded["parts"].as_array().expect("parts is a list");
    assert_eq!(parts.len(), 2);
    let mut rejoined = String::new();
    for part in parts {
        let hex = part["pdu"].as_str().expect("pdu is hex");
        // SMSC length 00, then the TPDU: AT+CMGS counts the TPDU only.
        assert_eq!(part["tpdu_length"], hex.len() / 2 - 1);
        let decoded = conductor(&["pdu", "decode", hex], "");
        let decoded = &json_lines(&decoded)[0];
        assert_eq!(decoded["type"], "submit");
        assert_eq!(decoded["recipient"], "+46708251358");
        assert_eq!(decoded["status_report_request"], true);
        rejoined.push_str(decoded["text"].as_str().expect("text"));
    }
    assert_eq!(rejoined, text);
}

#[test]
fn encode_refuses_an_invalid_number_with_a_clear_message() {
    let output = conductor(&["pdu", "encode", "--to", "+49abc", "--text", "hi"], "");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("+49abc"), "{stderr}");
}
