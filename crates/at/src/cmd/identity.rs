//! Identity: manufacturer, model, revision, IMEI, IMSI and ICCID (TS 27.007 §5.1–§5.4,
//! §5.6 `+CIMI`; ICCID commands are vendor-specific).
//!
//! The ICCID is part of the inbound fingerprint (DESIGN "Receiving"), so it must come out
//! the same whatever the modem's dialect: `+CCID: 8944…`, `+ICCID: …`, `^ICCID: …`,
//! `+QCCID: …`, bare digits, quoted, padded with a trailing `F`, or nibble-swapped as read
//! raw from EF_ICCID (Huawei's `^ICCID` gives `98…` for an `89…` ICCID).

use crate::{Command, InfoLine, ParseError, params};

/// `AT+CGMI`: manufacturer.
pub fn manufacturer() -> Command {
    Command::trusted("AT+CGMI".to_owned())
}

/// `AT+CGMM`: model.
pub fn model() -> Command {
    Command::trusted("AT+CGMM".to_owned())
}

/// `AT+CGMR`: firmware revision.
pub fn revision() -> Command {
    Command::trusted("AT+CGMR".to_owned())
}

/// `AT+CGSN`: serial number (the IMEI on GSM/LTE modems).
pub fn serial_number() -> Command {
    Command::trusted("AT+CGSN".to_owned())
}

/// `AT+CIMI`: the SIM's IMSI.
pub fn imsi() -> Command {
    Command::trusted("AT+CIMI".to_owned())
}

/// The vendor command that reads the ICCID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IccidCommand {
    /// `AT+CCID` (SIMCom, u-blox, many others).
    Ccid,
    /// `AT+ICCID` (Sierra, some SIMCom).
    Iccid,
    /// `AT^ICCID?` (Huawei).
    HuaweiIccid,
    /// `AT+QCCID` (Quectel).
    Qccid,
}

/// The command that reads the ICCID in the given dialect.
pub fn iccid(dialect: IccidCommand) -> Command {
    let line = match dialect {
        IccidCommand::Ccid => "AT+CCID",
        IccidCommand::Iccid => "AT+ICCID",
        IccidCommand::HuaweiIccid => "AT^ICCID?",
        IccidCommand::Qccid => "AT+QCCID",
    };
    Command::trusted(line.to_owned())
}

/// The text answer of `AT+CGMI`, `AT+CGMM` or `AT+CGMR`: the first line, without an echoed
/// `+CGMx:` prefix or a `Revision:` label, unquoted.
pub fn parse_text(lines: &[InfoLine]) -> Result<String, ParseError> {
    let line = lines.first().ok_or(ParseError::MissingLine {
        expected: "identity text",
    })?;
    let value = strip_label(&line.text, &["+CGMI", "+CGMM", "+CGMR", "Revision"]);
    let value = params::unquote(value);
    if value.is_empty() {
        return Err(ParseError::MissingField {
            line: line.text.clone(),
            field: "<text>",
        });
    }
    Ok(value.to_owned())
}

/// The IMEI from `AT+CGSN`: 14 to 17 digits (IMEI, IMEI with check digit, IMEISV).
pub fn parse_imei(lines: &[InfoLine]) -> Result<String, ParseError> {
    digits(lines, &["+CGSN", "IMEI"], "<sn>", 14..=17)
}

/// The IMSI from `AT+CIMI`: 6 to 15 digits (TS 23.003 §2.2).
pub fn parse_imsi(lines: &[InfoLine]) -> Result<String, ParseError> {
    digits(lines, &["+CIMI"], "<IMSI>", 6..=15)
}

/// The ICCID from any dialect's answer: label stripped, unquoted, nibble-swapped when it
/// reads `98…` (an ICCID starts with the telecom industry prefix 89, ITU-T E.118), trailing
/// `F` padding removed. 18 to 22 digits.
pub fn parse_iccid(lines: &[InfoLine]) -> Result<String, ParseError> {
    let labels = ["+CCID", "+ICCID", "^ICCID", "+QCCID", "ICCID", "^SCID"];
    let line = lines
        .iter()
        .find(|l| !strip_label(&l.text, &labels).is_empty())
        .ok_or(ParseError::MissingLine { expected: "ICCID" })?;
    let raw = params::unquote(strip_label(&line.text, &labels));
    let mut value = raw.to_ascii_uppercase();
    if value.starts_with("98") && value.len().is_multiple_of(2) {
        value = swap_nibbles(&value);
    }
    let value = value.trim_end_matches('F');
    if !(18..=22).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::InvalidField {
            line: line.text.clone(),
            field: "<ICCID>",
            value: raw.to_owned(),
        });
    }
    Ok(value.to_owned())
}

fn digits(
    lines: &[InfoLine],
    labels: &[&str],
    field: &'static str,
    lengths: std::ops::RangeInclusive<usize>,
) -> Result<String, ParseError> {
    let line = lines
        .iter()
        .find(|l| !strip_label(&l.text, labels).is_empty())
        .ok_or(ParseError::MissingLine { expected: field })?;
    let value = params::unquote(strip_label(&line.text, labels));
    if !lengths.contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::InvalidField {
            line: line.text.clone(),
            field,
            value: value.to_owned(),
        });
    }
    Ok(value.to_owned())
}

/// Removes a leading `<label>:` (case-insensitive), if present.
fn strip_label<'a>(text: &'a str, labels: &[&str]) -> &'a str {
    labels
        .iter()
        .find_map(|label| params::after_prefix(text, label))
        .unwrap_or(text)
        .trim()
}

fn swap_nibbles(value: &str) -> String {
    value
        .as_bytes()
        .chunks(2)
        .flat_map(|pair| pair.iter().rev())
        .map(|&b| char::from(b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Vec<InfoLine> {
        vec![InfoLine::new(text)]
    }

    #[test]
    fn commands_build_their_lines() {
        assert_eq!(manufacturer().line(), "AT+CGMI");
        assert_eq!(model().line(), "AT+CGMM");
        assert_eq!(revision().line(), "AT+CGMR");
        assert_eq!(serial_number().line(), "AT+CGSN");
        assert_eq!(imsi().line(), "AT+CIMI");
        assert_eq!(iccid(IccidCommand::HuaweiIccid).line(), "AT^ICCID?");
        assert_eq!(iccid(IccidCommand::Qccid).line(), "AT+QCCID");
    }

    #[test]
    fn text_answers_lose_their_labels() {
        assert_eq!(parse_text(&one("Quectel")), Ok("Quectel".into()));
        assert_eq!(
            parse_text(&one("+CGMI: \"SIMCOM_Ltd\"")),
            Ok("SIMCOM_Ltd".into())
        );
        assert_eq!(
            parse_text(&one("Revision: EC25EFAR06A09M4G")),
            Ok("EC25EFAR06A09M4G".into())
        );
        assert!(parse_text(&[]).is_err());
    }

    #[test]
    fn imei_and_imsi_are_digit_strings() {
        assert_eq!(
            parse_imei(&one("356938035643809")),
            Ok("356938035643809".into())
        );
        assert_eq!(
            parse_imei(&one("+CGSN: \"356938035643809\"")),
            Ok("356938035643809".into())
        );
        assert_eq!(
            parse_imsi(&one("234150123456789")),
            Ok("234150123456789".into())
        );
        assert!(matches!(
            parse_imsi(&one("2341A")),
            Err(ParseError::InvalidField {
                field: "<IMSI>",
                ..
            })
        ));
    }

    #[test]
    fn every_iccid_dialect_gives_the_same_digits() {
        let expected = Ok("89441000301234567890".to_owned());
        for text in [
            "+CCID: 89441000301234567890",
            "+ICCID: 89441000301234567890",
            "+QCCID: 89441000301234567890",
            "89441000301234567890",
            "\"89441000301234567890\"",
            "+CCID: \"89441000301234567890\"",
            "^ICCID: 98440100032143658709",
        ] {
            assert_eq!(parse_iccid(&one(text)), expected, "{text}");
        }
        assert_eq!(
            parse_iccid(&one("8944100030123456789F")),
            Ok("8944100030123456789".into())
        );
        assert_eq!(
            parse_iccid(&one("^ICCID: 984401000321436587F9")),
            Ok("8944100030123456789".into())
        );
    }

    #[test]
    fn malformed_iccids_are_errors() {
        assert!(matches!(
            parse_iccid(&one("+CCID: 1234")),
            Err(ParseError::InvalidField {
                field: "<ICCID>",
                ..
            })
        ));
        assert!(parse_iccid(&one("+CCID: ")).is_err());
        assert!(parse_iccid(&[]).is_err());
    }
}
