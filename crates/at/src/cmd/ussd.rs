//! `AT+CUSD`: unstructured supplementary service data (TS 27.007 §7.15), the `*100#` balance
//! query and its menus.
//!
//! Why the answer is awkward: `AT+CUSD=1,"<str>",<dcs>` starts a network dialogue, and the
//! network's answer comes as `+CUSD: <m>[,<str>,<dcs>]`, which modems print *before* the
//! final `OK` (it then lands among the command's information lines, since it carries the
//! command's prefix), *after* it (then it is a URC, [`crate::Urc::Ussd`]), or never, with a
//! `+CME ERROR` instead. [`parse`] reads the first form; the driver waits for the URC for the
//! second. Decoding `<str>` needs the alphabet tables of `conductor-sms`, which this crate
//! does not depend on: the driver does it.

use std::time::Duration;

use super::{find, quoted};
use crate::{Command, InfoLine, InvalidCommand, ParseError, params};

/// How long the modem may take to answer `OK` to a USSD request. Some firmwares hold the
/// `OK` until the network answered (several seconds on a busy network).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `<dcs>` 15: GSM 7-bit default alphabet, language unspecified (TS 23.038 §5), what every
/// modem accepts for a request typed in ASCII digits, `*` and `#`.
pub const DCS_GSM7: u8 = 15;

/// `AT+CUSD=1,"<code>",15`: result presentation on, and send `code`. `code` is what an
/// operator types (`*100#`, or `1` to answer a menu), as text in the modem's character set.
pub fn request(code: &str) -> Result<Command, InvalidCommand> {
    Ok(
        Command::new(format!("AT+CUSD=1,{},{DCS_GSM7}", quoted(code)?))?
            .with_timeout(REQUEST_TIMEOUT),
    )
}

/// `AT+CUSD=2`: cancel the session (after an answer that asked for more, `<m>`=1, and the
/// caller does not continue). Leaving it open blocks the next request on many networks.
pub fn cancel() -> Command {
    Command::trusted("AT+CUSD=2".to_owned())
}

/// `<m>` of a `+CUSD` answer (TS 27.007 §7.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UssdStatus {
    /// 0: no further user action required (the final answer).
    Done,
    /// 1: further user action required (a menu: answer with another request, or cancel).
    FurtherAction,
    /// 2: the network terminated the dialogue.
    Terminated,
    /// 3: another local client has answered.
    OtherClient,
    /// 4: operation not supported (a code the network does not know).
    NotSupported,
    /// 5: the network timed out.
    TimedOut,
    /// Another value, kept as received.
    Other(u8),
}

impl UssdStatus {
    /// From the `<m>` number.
    pub fn from_number(m: u8) -> UssdStatus {
        match m {
            0 => UssdStatus::Done,
            1 => UssdStatus::FurtherAction,
            2 => UssdStatus::Terminated,
            3 => UssdStatus::OtherClient,
            4 => UssdStatus::NotSupported,
            5 => UssdStatus::TimedOut,
            other => UssdStatus::Other(other),
        }
    }

    /// The `<m>` number.
    pub fn number(self) -> u8 {
        match self {
            UssdStatus::Done => 0,
            UssdStatus::FurtherAction => 1,
            UssdStatus::Terminated => 2,
            UssdStatus::OtherClient => 3,
            UssdStatus::NotSupported => 4,
            UssdStatus::TimedOut => 5,
            UssdStatus::Other(m) => m,
        }
    }

    /// What it means, for people.
    pub fn description(self) -> &'static str {
        match self {
            UssdStatus::Done => "no further action required",
            UssdStatus::FurtherAction => "further action required",
            UssdStatus::Terminated => "terminated by the network",
            UssdStatus::OtherClient => "answered by another client",
            UssdStatus::NotSupported => "not supported by the network",
            UssdStatus::TimedOut => "network time-out",
            UssdStatus::Other(_) => "unknown status",
        }
    }
}

/// A `+CUSD` line, before its text is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawUssd {
    /// `<m>`.
    pub status: UssdStatus,
    /// `<str>`, unquoted, exactly as the modem printed it (packed hex, UCS-2 hex or text).
    pub text: Option<String>,
    /// `<dcs>`.
    pub dcs: Option<u16>,
}

/// Parses the parameters of one `+CUSD:` line (the text after the colon).
pub fn parse_params(rest: &str, line: &str) -> Result<RawUssd, ParseError> {
    let items = params::split(rest.trim());
    let status: u8 = params::number(items.first(), line, "<m>")?;
    Ok(RawUssd {
        status: UssdStatus::from_number(status),
        text: items.get(1).map(|s| params::unquote(s).to_owned()),
        dcs: params::optional_number(items.get(2), line, "<dcs>")?,
    })
}

/// The `+CUSD` answer among a request's information lines (the modem printed it before
/// `OK`); `Ok(None)` when there is none (it will come as a URC, or not at all).
pub fn parse(lines: &[InfoLine]) -> Result<Option<RawUssd>, ParseError> {
    match find(lines, "+CUSD") {
        Ok((line, rest)) => parse_params(rest, &line.text).map(Some),
        Err(ParseError::MissingLine { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The same answer from a [`crate::Urc::Ussd`]'s fields.
pub fn from_urc(status: u8, text: Option<String>, dcs: Option<u16>) -> RawUssd {
    RawUssd {
        status: UssdStatus::from_number(status),
        text,
        dcs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_quotes_the_code_and_asks_for_gsm_7_bit() {
        let command = request("*100#").expect("valid");
        assert_eq!(command.line(), "AT+CUSD=1,\"*100#\",15");
        assert_eq!(command.timeout(), REQUEST_TIMEOUT);
        assert_eq!(command.response_prefix(), Some("+CUSD"));
        assert!(request("*1\"#").is_err());
        assert_eq!(cancel().line(), "AT+CUSD=2");
    }

    #[test]
    fn statuses_round_trip() {
        for m in 0..=7 {
            assert_eq!(UssdStatus::from_number(m).number(), m);
        }
        assert_eq!(UssdStatus::from_number(4), UssdStatus::NotSupported);
    }
}
