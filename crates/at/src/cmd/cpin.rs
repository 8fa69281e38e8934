//! `AT+CPIN`: SIM state and PIN entry (TS 27.007 §8.3).
//!
//! A modem whose SIM is not `READY` cannot send or receive; `+CPIN: READY` also arrives
//! unsolicited after boot or a SIM swap, which tells the driver to rerun init (DESIGN
//! promise 6).

use super::find;
use crate::{Command, InfoLine, InvalidCommand, ParseError, params};

/// `<code>` of `+CPIN: <code>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PinStatus {
    /// `READY`: no password pending.
    Ready,
    /// `SIM PIN`: the SIM waits for its PIN.
    SimPin,
    /// `SIM PUK`: the PIN was blocked; the PUK is needed.
    SimPuk,
    /// `SIM PIN2`.
    SimPin2,
    /// `SIM PUK2`.
    SimPuk2,
    /// `PH-SIM PIN`: the phone waits for its phone-to-SIM password.
    PhoneSimPin,
    /// Vendor states: `NOT READY`, `NOT INSERTED`, `SIM REMOVED`, … (no SIM to talk to).
    NotReady(String),
    /// Any other code (network/corporate personalisation …), kept as reported.
    Other(String),
}

impl PinStatus {
    /// Reads a `<code>` (quotes and surrounding spaces tolerated, case-insensitive).
    pub fn from_code(code: &str) -> PinStatus {
        let code = params::unquote(code).trim();
        match code.to_ascii_uppercase().as_str() {
            "READY" => PinStatus::Ready,
            "SIM PIN" => PinStatus::SimPin,
            "SIM PUK" => PinStatus::SimPuk,
            "SIM PIN2" => PinStatus::SimPin2,
            "SIM PUK2" => PinStatus::SimPuk2,
            "PH-SIM PIN" => PinStatus::PhoneSimPin,
            "NOT READY" | "NOT INSERTED" | "SIM REMOVED" | "NO SIM" => {
                PinStatus::NotReady(code.to_owned())
            }
            _ => PinStatus::Other(code.to_owned()),
        }
    }

    /// Whether the SIM is usable.
    pub fn is_ready(&self) -> bool {
        matches!(self, PinStatus::Ready)
    }
}

/// `AT+CPIN?`.
pub fn query() -> Command {
    Command::trusted("AT+CPIN?".to_owned())
}

/// `AT+CPIN="<pin>"`: enter the PIN (4 to 8 digits, TS 31.101 §9.5.1 / TS 27.007 §8.3).
pub fn enter(pin: &str) -> Result<Command, InvalidCommand> {
    if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidCommand::InvalidParameter {
            field: "<pin>",
            // Never echo a secret into an error that may be logged.
            value: "*".repeat(pin.len().min(16)),
        });
    }
    Ok(Command::trusted(format!("AT+CPIN=\"{pin}\"")))
}

/// Parses `+CPIN: <code>`.
pub fn parse_query(lines: &[InfoLine]) -> Result<PinStatus, ParseError> {
    let (line, rest) = find(lines, "+CPIN")?;
    if rest.is_empty() {
        return Err(ParseError::MissingField {
            line: line.text.clone(),
            field: "<code>",
        });
    }
    Ok(PinStatus::from_code(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_from_the_query_answer() {
        let parse = |text: &str| parse_query(&[InfoLine::new(text)]);
        assert_eq!(parse("+CPIN: READY"), Ok(PinStatus::Ready));
        assert_eq!(parse("+CPIN: SIM PIN"), Ok(PinStatus::SimPin));
        assert_eq!(parse("+CPIN: SIM PUK"), Ok(PinStatus::SimPuk));
        assert_eq!(parse("+CPIN: \"PH-SIM PIN\""), Ok(PinStatus::PhoneSimPin));
        assert_eq!(
            parse("+CPIN: NOT INSERTED"),
            Ok(PinStatus::NotReady("NOT INSERTED".into()))
        );
        assert_eq!(
            parse("+CPIN: PH-NET PIN"),
            Ok(PinStatus::Other("PH-NET PIN".into()))
        );
        assert!(parse("+CPIN:").is_err());
        assert!(PinStatus::Ready.is_ready());
    }

    #[test]
    fn pins_must_be_four_to_eight_digits_and_are_not_echoed_in_errors() {
        assert_eq!(
            enter("1234").map(|c| c.line().to_owned()),
            Ok("AT+CPIN=\"1234\"".into())
        );
        assert_eq!(
            enter("12a4"),
            Err(InvalidCommand::InvalidParameter {
                field: "<pin>",
                value: "****".into()
            })
        );
        assert!(enter("123").is_err());
        assert!(enter("123456789").is_err());
        assert_eq!(query().line(), "AT+CPIN?");
    }
}
