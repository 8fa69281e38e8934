//! `AT+CSCA`: the SMS service centre address (TS 27.005 §3.3.1).
//!
//! Sends fail with `+CMS ERROR: 330` (SMSC address unknown) when the SIM carries none; the
//! driver reads it at init to say so in `health` rather than at the first send.

use super::{find, quoted};
use crate::{Command, InfoLine, InvalidCommand, ParseError, params};

/// `AT+CSCA?`.
pub fn query() -> Command {
    Command::trusted("AT+CSCA?".to_owned())
}

/// `AT+CSCA="<sca>"[,<tosca>]`.
pub fn set(address: &str, type_of_address: Option<u8>) -> Result<Command, InvalidCommand> {
    let mut line = format!("AT+CSCA={}", quoted(address)?);
    if let Some(tosca) = type_of_address {
        line.push_str(&format!(",{tosca}"));
    }
    Command::new(line)
}

/// The answer to `AT+CSCA?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCentre {
    /// `<sca>`, e.g. `+447958879879`; empty when the SIM has none.
    pub address: String,
    /// `<tosca>`: 145 international, 129 national/unknown.
    pub type_of_address: Option<u8>,
}

/// Parses `+CSCA: "<sca>",<tosca>`. With `AT+CSCS="UCS2"` some modems print the address as
/// UCS-2 hex (`"002B00340034…"`); that is decoded when every character it gives is a
/// dial-string character.
pub fn parse_query(lines: &[InfoLine]) -> Result<ServiceCentre, ParseError> {
    let (line, rest) = find(lines, "+CSCA")?;
    let items = params::split(rest);
    let raw = items
        .first()
        .map(|s| params::unquote(s))
        .unwrap_or_default();
    Ok(ServiceCentre {
        address: decode_ucs2_dial_string(raw).unwrap_or_else(|| raw.to_owned()),
        type_of_address: params::optional_number(items.get(1), &line.text, "<tosca>")?,
    })
}

fn decode_ucs2_dial_string(raw: &str) -> Option<String> {
    if raw.len() < 8 || !raw.len().is_multiple_of(4) || !params::is_hex(raw) {
        return None;
    }
    raw.as_bytes()
        .chunks(4)
        .map(|unit| {
            let unit = std::str::from_utf8(unit).ok()?;
            let c = char::from_u32(u32::from_str_radix(unit, 16).ok()?)?;
            (c.is_ascii_digit() || "+*#".contains(c)).then_some(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_and_its_type_parse() {
        assert_eq!(
            parse_query(&[InfoLine::new("+CSCA: \"+447958879879\",145")]),
            Ok(ServiceCentre {
                address: "+447958879879".into(),
                type_of_address: Some(145)
            })
        );
        assert_eq!(
            parse_query(&[InfoLine::new("+CSCA: \"\",129")]).map(|s| s.address),
            Ok(String::new())
        );
    }

    #[test]
    fn a_ucs2_hex_address_is_decoded() {
        assert_eq!(
            parse_query(&[InfoLine::new("+CSCA: \"002B003400340037\",145")]).map(|s| s.address),
            Ok("+447".into())
        );
        // Plain digits that happen to be hex stay as they are.
        assert_eq!(
            parse_query(&[InfoLine::new("+CSCA: \"44795887\",129")]).map(|s| s.address),
            Ok("44795887".into())
        );
    }

    #[test]
    fn set_quotes_the_address() {
        assert_eq!(
            set("+447958879879", Some(145)).map(|c| c.line().to_owned()),
            Ok("AT+CSCA=\"+447958879879\",145".into())
        );
        assert_eq!(query().line(), "AT+CSCA?");
        assert!(set("+44\"", None).is_err());
    }
}
