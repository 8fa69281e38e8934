//! A command's answer: its information lines and the final result code that ended it.
//!
//! Why data and not `Result`: `ERROR`, `+CMS ERROR` and `+CME ERROR` are the modem's
//! answer to a well-run conversation. The engine did its job; what the answer means is for
//! the caller (a `+CMS ERROR: 42` is retried, a `+CMS ERROR: 304` is not). quinn reports a
//! lost connection the same way, as an event.
//!
//! Spec: V.250 §5.7.2 (final result codes `OK`, `ERROR`, `NO CARRIER`, `BUSY`,
//! `NO ANSWER`, `NO DIALTONE`); TS 27.005 §3.2.5 (`+CMS ERROR: <err>`); TS 27.007 §9.2
//! (`+CME ERROR: <err>`, numeric with `AT+CMEE=1`, verbose with `AT+CMEE=2`).

use std::fmt;

use crate::{CmeCode, CmsCode, ErrorClass};

/// One information line of a response, with the PDU line that followed it when the line is
/// a two-line construct (`+CMGL:` and `+CMGR:` headers in PDU mode, TS 27.005 §4.1, §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoLine {
    /// The line, trimmed, without its line end.
    pub text: String,
    /// The PDU (hex text) that followed the line, when the line is a two-line header and
    /// the next line was hex. `None` for ordinary lines, and for a header whose PDU line
    /// never came (the engine resynchronised on the next non-hex line).
    pub pdu: Option<String>,
}

impl InfoLine {
    /// A line without a PDU.
    pub fn new(text: impl Into<String>) -> InfoLine {
        InfoLine {
            text: text.into(),
            pdu: None,
        }
    }

    /// A header line with its PDU.
    pub fn with_pdu(text: impl Into<String>, pdu: impl Into<String>) -> InfoLine {
        InfoLine {
            text: text.into(),
            pdu: Some(pdu.into()),
        }
    }
}

/// The complete answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Information lines in arrival order. URCs that arrived during the command are not
    /// here: they left as [`crate::Event::Urc`] the moment they arrived.
    pub lines: Vec<InfoLine>,
    /// The final result code that ended the command.
    pub result: FinalResult,
}

impl Response {
    /// Whether the final result is `OK`.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// The final result code of a command (V.250 §5.7.2 plus the 3GPP error codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalResult {
    /// `OK`.
    Ok,
    /// `ERROR`, also the Huawei-specific `COMMAND NOT SUPPORT` and `TOO MANY PARAMETERS`.
    Error,
    /// `+CMS ERROR: <err>`, numeric or verbose text that maps to a known code.
    CmsError(CmsCode),
    /// `+CMS ERROR: <text>` whose text is not one of TS 27.005's: kept as sent.
    CmsErrorText(String),
    /// `+CME ERROR: <err>`, numeric or verbose text that maps to a known code.
    CmeError(CmeCode),
    /// `+CME ERROR: <text>` whose text is not one of TS 27.007's: kept as sent.
    CmeErrorText(String),
    /// `NO CARRIER` (only final for dial/answer commands; otherwise a URC).
    NoCarrier,
    /// `BUSY` (dial commands).
    Busy,
    /// `NO ANSWER` (dial commands).
    NoAnswer,
    /// `NO DIALTONE` (dial commands).
    NoDialtone,
}

impl FinalResult {
    /// Whether the command succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self, FinalResult::Ok)
    }

    /// The `+CMS ERROR` code, if this is one with a number.
    pub fn cms_code(&self) -> Option<CmsCode> {
        match self {
            FinalResult::CmsError(code) => Some(*code),
            _ => None,
        }
    }

    /// The `+CME ERROR` code, if this is one with a number.
    pub fn cme_code(&self) -> Option<CmeCode> {
        match self {
            FinalResult::CmeError(code) => Some(*code),
            _ => None,
        }
    }

    /// Whether a failed command may be retried; `None` for `OK`. A bare `ERROR` or an
    /// unrecognised verbose text says nothing about the cause, so it counts as retryable
    /// and the caller's attempt limit bounds the retries. Call outcomes (`BUSY`, …) are
    /// retryable too.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            FinalResult::Ok => None,
            FinalResult::CmsError(code) => Some(code.class()),
            FinalResult::CmeError(code) => Some(code.class()),
            _ => Some(ErrorClass::Retryable),
        }
    }

    /// Recognises a final result code line. `dialing` says whether the command in flight
    /// is a dial or answer command, the only ones for which V.250 makes `NO CARRIER`,
    /// `BUSY`, `NO ANSWER` and `NO DIALTONE` final.
    pub(crate) fn parse(line: &str, dialing: bool) -> Option<FinalResult> {
        match line {
            "OK" => return Some(FinalResult::Ok),
            "ERROR" | "COMMAND NOT SUPPORT" | "TOO MANY PARAMETERS" => {
                return Some(FinalResult::Error);
            }
            _ => {}
        }
        if let Some(rest) = crate::params::after_prefix(line, "+CMS ERROR") {
            let rest = crate::params::unquote(rest);
            return Some(match rest.parse::<u16>() {
                Ok(code) => FinalResult::CmsError(CmsCode(code)),
                Err(_) => match CmsCode::from_text(rest) {
                    Some(code) => FinalResult::CmsError(code),
                    None => FinalResult::CmsErrorText(rest.to_owned()),
                },
            });
        }
        if let Some(rest) = crate::params::after_prefix(line, "+CME ERROR") {
            let rest = crate::params::unquote(rest);
            return Some(match rest.parse::<u16>() {
                Ok(code) => FinalResult::CmeError(CmeCode(code)),
                Err(_) => match CmeCode::from_text(rest) {
                    Some(code) => FinalResult::CmeError(code),
                    None => FinalResult::CmeErrorText(rest.to_owned()),
                },
            });
        }
        if !dialing {
            return None;
        }
        match line {
            "NO CARRIER" => Some(FinalResult::NoCarrier),
            "BUSY" => Some(FinalResult::Busy),
            "NO ANSWER" => Some(FinalResult::NoAnswer),
            "NO DIALTONE" | "NO DIAL TONE" => Some(FinalResult::NoDialtone),
            _ => None,
        }
    }
}

impl fmt::Display for FinalResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FinalResult::Ok => f.write_str("OK"),
            FinalResult::Error => f.write_str("ERROR"),
            FinalResult::CmsError(code) => write!(f, "+CMS ERROR: {code}"),
            FinalResult::CmsErrorText(text) => write!(f, "+CMS ERROR: {text}"),
            FinalResult::CmeError(code) => write!(f, "+CME ERROR: {code}"),
            FinalResult::CmeErrorText(text) => write!(f, "+CME ERROR: {text}"),
            FinalResult::NoCarrier => f.write_str("NO CARRIER"),
            FinalResult::Busy => f.write_str("BUSY"),
            FinalResult::NoAnswer => f.write_str("NO ANSWER"),
            FinalResult::NoDialtone => f.write_str("NO DIALTONE"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Option<FinalResult> {
        FinalResult::parse(line, false)
    }

    #[test]
    fn ok_and_error_are_final() {
        assert_eq!(parse("OK"), Some(FinalResult::Ok));
        assert_eq!(parse("ERROR"), Some(FinalResult::Error));
        assert_eq!(parse("COMMAND NOT SUPPORT"), Some(FinalResult::Error));
        assert_eq!(parse("OKAY"), None);
    }

    #[test]
    fn numeric_cms_and_cme_errors_keep_their_code() {
        assert_eq!(
            parse("+CMS ERROR: 304"),
            Some(FinalResult::CmsError(CmsCode(304)))
        );
        assert_eq!(
            parse("+CME ERROR:10"),
            Some(FinalResult::CmeError(CmeCode(10)))
        );
        assert_eq!(
            parse("+CMS ERROR: 4242"),
            Some(FinalResult::CmsError(CmsCode(4242)))
        );
    }

    #[test]
    fn verbose_errors_map_back_to_their_code_or_keep_the_text() {
        assert_eq!(
            parse("+CME ERROR: SIM not inserted"),
            Some(FinalResult::CmeError(CmeCode::SIM_NOT_INSERTED))
        );
        assert_eq!(
            parse("+CMS ERROR: Invalid PDU mode parameter"),
            Some(FinalResult::CmsError(CmsCode::INVALID_PDU_MODE_PARAMETER))
        );
        assert_eq!(
            parse("+CME ERROR: modem on fire"),
            Some(FinalResult::CmeErrorText("modem on fire".into()))
        );
        assert_eq!(
            parse("+CMS ERROR: \"weird\""),
            Some(FinalResult::CmsErrorText("weird".into()))
        );
    }

    #[test]
    fn call_results_are_final_only_for_dial_commands() {
        assert_eq!(parse("NO CARRIER"), None);
        assert_eq!(
            FinalResult::parse("NO CARRIER", true),
            Some(FinalResult::NoCarrier)
        );
        assert_eq!(FinalResult::parse("BUSY", true), Some(FinalResult::Busy));
        assert_eq!(
            FinalResult::parse("NO DIALTONE", true),
            Some(FinalResult::NoDialtone)
        );
    }

    #[test]
    fn classes_follow_the_codes_and_unknown_causes_are_retryable() {
        assert_eq!(FinalResult::Ok.class(), None);
        assert_eq!(
            FinalResult::CmsError(CmsCode(304)).class(),
            Some(ErrorClass::Permanent)
        );
        assert_eq!(FinalResult::Error.class(), Some(ErrorClass::Retryable));
        assert_eq!(
            FinalResult::CmsError(CmsCode(42)).cms_code(),
            Some(CmsCode::CONGESTION)
        );
    }
}
