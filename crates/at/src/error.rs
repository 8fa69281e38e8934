//! The crate's two failure domains: parsing what the modem said, and building what we say.
//!
//! A modem's `ERROR`, `+CMS ERROR` or `+CME ERROR` is not here: that is the modem's answer,
//! carried as data in [`crate::FinalResult`]. These are our own failures: information lines
//! we cannot read ([`ParseError`]) and command lines we refuse to send ([`InvalidCommand`]).

/// An information line (or a URC) that does not have the shape the specification gives it.
///
/// Every variant carries the offending line, so a log entry is enough to reproduce the
/// case with a transcript test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The response has no information line of the expected kind, e.g. an `AT+CSQ`
    /// answered with a bare `OK`.
    #[error("the response has no {expected} line")]
    MissingLine {
        /// What was looked for, e.g. `+CSQ`.
        expected: &'static str,
    },
    /// A mandatory parameter is absent or empty.
    #[error("missing {field} in `{line}`")]
    MissingField {
        /// The line as received.
        line: String,
        /// The parameter's name in the specification, e.g. `<index>`.
        field: &'static str,
    },
    /// A parameter is present but its value is not allowed (not a number, out of range,
    /// an unknown status string).
    #[error("invalid {field} `{value}` in `{line}`")]
    InvalidField {
        /// The line as received.
        line: String,
        /// The parameter's name in the specification, e.g. `<rssi>`.
        field: &'static str,
        /// The value as received.
        value: String,
    },
    /// A `+CMGL`/`+CMGR` header (PDU mode) arrived without the PDU line that must follow
    /// it (TS 27.005 §4.1, §4.2): the engine resynchronised on a non-hex line.
    #[error("no PDU line after `{line}`")]
    MissingPdu {
        /// The header line.
        line: String,
    },
}

/// A command line or data phase that would not be a single, well-formed AT command.
///
/// Refusing these protects the conversation: a CR inside a line would run a second,
/// unintended command; a Ctrl-Z or ESC would end or cancel a data phase (TS 27.005 §3.5.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCommand {
    /// The line does not start with the `AT` prefix (V.250 §5.2.1).
    #[error("command line `{line}` does not start with AT")]
    MissingPrefix {
        /// The rejected line.
        line: String,
    },
    /// The line contains a control character (CR, LF, Ctrl-Z, ESC, NUL …).
    #[error("command line contains control character 0x{byte:02X} at byte {offset}")]
    ControlCharacter {
        /// The offending byte.
        byte: u8,
        /// Its offset in the line.
        offset: usize,
    },
    /// A string parameter contains a double quote, which would end the string early
    /// (V.250 §5.4.2.2).
    #[error("string parameter `{value}` contains a double quote")]
    QuoteInString {
        /// The rejected parameter.
        value: String,
    },
    /// A parameter's value is outside what the command accepts (a PIN with letters).
    #[error("invalid {field} `{value}`")]
    InvalidParameter {
        /// The parameter's name in the specification, e.g. `<pin>`.
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A PDU for the data phase is not an even number of hex digits (TS 27.005 §4.3).
    #[error("PDU is not an even-length hex string (offending character at {offset})")]
    PduNotHex {
        /// Offset of the first offending character, or the length if it is odd.
        offset: usize,
    },
    /// The PDU's SMSC length octet points past its end, so its TPDU length cannot be
    /// computed (TS 27.005 §4.3: `<length>` excludes the SMSC address).
    #[error("PDU's SMSC length octet ({smsc_octets}) leaves no TPDU in {total_octets} octets")]
    PduTooShort {
        /// The SMSC length octet.
        smsc_octets: usize,
        /// The PDU's length in octets.
        total_octets: usize,
    },
}
