//! `conductor pdu decode|encode`: the codec on the command line, for operators reading a
//! modem capture and for scripts that want to know what `AT+CMGS` will be given.

use crate::cli::{EncodeArgs, PduCommand};
use crate::pdu_json;
use anyhow::{Context, Result, bail};
use conductor_sms::{
    DecodedPdu, ReferenceWidth, SubmitOptions, decode_pdu_hex, decode_pdu_hex_with_length,
    encode_submit,
};
use serde_json::{Value, json};
use std::io::{BufRead, Write};

/// Runs `conductor pdu ...`.
pub fn run(command: PduCommand) -> Result<()> {
    match command {
        PduCommand::Decode { hex: Some(hex) } => {
            let decoded = decode_pdu_hex(hex.trim()).with_context(
                || "not a valid PDU; give the hex exactly as AT+CMGL prints it, SMSC address first",
            )?;
            print_json(&pdu_json::decoded_pdu(&decoded))
        }
        PduCommand::Decode { hex: None } => decode_lines(std::io::stdin().lock()),
        PduCommand::Encode(args) => encode(args),
    }
}

fn print_json(value: &Value) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

/// What a line of a modem capture is, for decoding a whole `AT+CMGL` session.
#[derive(Debug, PartialEq)]
enum CaptureLine {
    /// Blank, an echoed command, or a final result: nothing to decode.
    Skip,
    /// `+CMGL: <index>,<stat>,[<alpha>],<length>`, `+CMGR: ...`, `+CMT: ...` or `+CDS: <length>`:
    /// the next line is a PDU of `length` TPDU octets.
    Header {
        index: Option<u64>,
        length: Option<usize>,
    },
    /// Anything else is taken for a PDU.
    Pdu,
}

fn classify(line: &str) -> CaptureLine {
    let upper = line.to_ascii_uppercase();
    if line.is_empty()
        || upper.starts_with("AT")
        || matches!(upper.as_str(), "OK" | "ERROR" | ">")
        || upper.starts_with("+CMS ERROR")
        || upper.starts_with("+CME ERROR")
    {
        return CaptureLine::Skip;
    }
    let Some((prefix, params)) = line.split_once(':') else {
        return CaptureLine::Pdu;
    };
    if !prefix.starts_with('+') {
        return CaptureLine::Pdu;
    }
    let fields: Vec<&str> = params.split(',').map(str::trim).collect();
    let length = fields.last().and_then(|f| f.parse().ok());
    let index = match prefix.to_ascii_uppercase().as_str() {
        "+CMGL" => fields.first().and_then(|f| f.parse().ok()),
        "+CMGR" | "+CMT" | "+CDS" => None,
        // Some other information line (+CPMS, +CMTI...): not a PDU, nothing follows.
        _ => return CaptureLine::Skip,
    };
    CaptureLine::Header { index, length }
}

/// Decodes one PDU per line of `input` and prints one JSON object per line; a line that does
/// not decode prints `{"line": n, "error": "..."}` and the command exits 1 at the end.
fn decode_lines(input: impl BufRead) -> Result<()> {
    let mut failed = 0usize;
    let mut pending_header: Option<(Option<u64>, Option<usize>)> = None;
    for (number, line) in input.lines().enumerate() {
        let line = line.context("reading standard input")?;
        let line = line.trim();
        let (index, length) = match classify(line) {
            CaptureLine::Skip => continue,
            CaptureLine::Header { index, length } => {
                pending_header = Some((index, length));
                continue;
            }
            CaptureLine::Pdu => pending_header.take().unwrap_or((None, None)),
        };
        let decoded: Result<DecodedPdu, _> = match length {
            Some(length) => decode_pdu_hex_with_length(line, length),
            None => decode_pdu_hex(line),
        };
        let value = match decoded {
            Ok(decoded) => {
                let mut value = pdu_json::decoded_pdu(&decoded);
                if let (Some(index), Some(object)) = (index, value.as_object_mut()) {
                    object.insert("index".into(), json!(index));
                }
                value
            }
            Err(error) => {
                failed += 1;
                json!({ "line": number + 1, "error": error.to_string() })
            }
        };
        print_json(&value)?;
    }
    if failed > 0 {
        bail!("{failed} line(s) did not decode; see the \"error\" objects above");
    }
    Ok(())
}

fn encode(args: EncodeArgs) -> Result<()> {
    let options = SubmitOptions {
        status_report: args.status_report,
        flash: args.flash,
        validity: args.validity,
        concat_reference: u16::from(args.concat_ref),
        reference_width: ReferenceWidth::Bits8,
    };
    let (text, replaced) = match args
        .transliterate
        .then(|| conductor_sms::transliterate::fit_gsm7(&args.text))
    {
        Some(conductor_sms::transliterate::Gsm7Fit::Transliterated { text, replaced }) => {
            (text, replaced)
        }
        _ => (args.text.clone(), 0),
    };
    let message = encode_submit(&args.to, &text, &options)
        .with_context(|| format!("cannot encode a message to {:?}", args.to))?;
    let parts: Vec<Value> = message
        .parts
        .iter()
        .map(|part| {
            json!({
                "pdu": part.pdu.to_hex(),
                "tpdu_length": part.pdu.tpdu_length,
                "text": part.text,
            })
        })
        .collect();
    // `part_count` and `encoding` first: what the message costs, before it is sent.
    print_json(&json!({
        "part_count": parts.len(),
        "encoding": message.encoding.name(),
        "transliterated": replaced,
        "parts": parts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_lines_are_classified_like_a_modem_prints_them() {
        assert_eq!(classify("AT+CMGL=4"), CaptureLine::Skip);
        assert_eq!(classify("OK"), CaptureLine::Skip);
        assert_eq!(classify("+CMS ERROR: 321"), CaptureLine::Skip);
        assert_eq!(classify("+CPMS: \"SM\",1,30"), CaptureLine::Skip);
        assert_eq!(
            classify("+CMGL: 3,0,,23"),
            CaptureLine::Header {
                index: Some(3),
                length: Some(23)
            }
        );
        assert_eq!(
            classify("+CDS: 25"),
            CaptureLine::Header {
                index: None,
                length: Some(25)
            }
        );
        assert_eq!(classify("0791447758100650040C91"), CaptureLine::Pdu);
    }
}
