//! A command to run: its line, its timeout, and for `AT+CMGS` the PDU of its data phase.
//!
//! Why a type and not a string: the engine needs to know, per command, how long to wait
//! (a `AT+CSQ` answers in milliseconds, `AT+COPS=?` scans every band for minutes), whether
//! a `> ` prompt and a data phase come, and which information-line prefix belongs to the
//! answer (so `+CREG: …` is the answer to `AT+CREG?` and a URC otherwise). Construction
//! validates the line, so nothing that reaches the modem can smuggle in a second command.
//!
//! Spec: V.250 §5.2.1 (command line prefix `AT`, terminated by S3 = CR), §5.4.2.2 (string
//! constants in double quotes); TS 27.005 §4.3 (`AT+CMGS=<length><CR>` then the PDU ended by
//! `<ctrl-Z>`).

use std::time::Duration;

use crate::InvalidCommand;

/// The timeout of commands not listed in [`Command::new`]'s table.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `AT+CMGS` waits for the `> ` prompt. The prompt is local to the modem and comes
/// at once on a healthy one; a short wait lets a lost or garbled prompt be cancelled with
/// ESC well before the send's own, network-bound timeout.
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// One AT command line, with what the engine needs to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The line without its terminating CR, e.g. `AT+CMGS=23`.
    line: String,
    /// How long to wait for the final result code, counted from the submit, or from the
    /// PDU write for a data-phase command (the network part of a send).
    timeout: Duration,
    /// The hex PDU written after the prompt; `None` for ordinary commands.
    pdu: Option<String>,
    /// How long a data-phase command waits for the prompt.
    prompt_timeout: Duration,
}

impl Command {
    /// A command line, validated: it must start with `AT` (any case) and contain no control
    /// character. Its timeout comes from a table of known slow commands (vendor manuals'
    /// maximum response times, rounded up), else [`DEFAULT_TIMEOUT`].
    ///
    /// | command | timeout |
    /// |---|---|
    /// | `+CMGS`, `+CMSS`, `D` (dial), `+CUSD` | 60 s |
    /// | `+COPS=…` (set, `=?` scan) | 180 s |
    /// | `+CGACT` | 150 s, `+CGATT` 75 s |
    /// | `+CMGL` | 30 s, `+CMGD` 25 s, `+CFUN` 30 s |
    /// | `+CMGR`, `+CMGW`, `+CPMS`, `+CPIN`, `+CLCK` | 10 s |
    pub fn new(line: impl Into<String>) -> Result<Command, InvalidCommand> {
        let line = line.into();
        if !line.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT")) {
            return Err(InvalidCommand::MissingPrefix { line });
        }
        if let Some((offset, &byte)) = line
            .as_bytes()
            .iter()
            .enumerate()
            .find(|(_, b)| b.is_ascii_control())
        {
            return Err(InvalidCommand::ControlCharacter { byte, offset });
        }
        Ok(Command::trusted(line))
    }

    /// Builds a command from a line the caller guarantees valid (`cmd/` builders that only
    /// format numbers and fixed text into it). Checked in debug builds.
    pub(crate) fn trusted(line: String) -> Command {
        debug_assert!(
            line.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT"))
                && !line.bytes().any(|b| b.is_ascii_control()),
            "invalid trusted command line {line:?}"
        );
        let timeout = default_timeout(&line);
        Command {
            line,
            timeout,
            pdu: None,
            prompt_timeout: PROMPT_TIMEOUT,
        }
    }

    /// Adds a data phase: after the `> ` prompt the engine writes `pdu` (hex) and Ctrl-Z.
    /// The PDU must be an even number of hex digits.
    pub fn with_pdu(mut self, pdu: impl Into<String>) -> Result<Command, InvalidCommand> {
        let pdu = pdu.into();
        if let Some(offset) = pdu.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(InvalidCommand::PduNotHex { offset });
        }
        if pdu.is_empty() || pdu.len() % 2 != 0 {
            return Err(InvalidCommand::PduNotHex { offset: pdu.len() });
        }
        self.pdu = Some(pdu);
        Ok(self)
    }

    /// Replaces the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Command {
        self.timeout = timeout;
        self
    }

    /// Replaces the prompt timeout of a data-phase command.
    pub fn with_prompt_timeout(mut self, timeout: Duration) -> Command {
        self.prompt_timeout = timeout;
        self
    }

    /// The command line, without the terminating CR.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The timeout for the final result code.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The timeout for the `> ` prompt (data-phase commands only).
    pub fn prompt_timeout(&self) -> Duration {
        self.prompt_timeout
    }

    /// The PDU of the data phase, if any.
    pub fn pdu(&self) -> Option<&str> {
        self.pdu.as_deref()
    }

    /// The information-line prefix of this command's answers: `AT+CMGL=4` → `+CMGL`,
    /// `AT^ICCID?` → `^ICCID`. `None` for basic commands (`ATE0`, `ATI`, `ATD…`).
    pub fn response_prefix(&self) -> Option<&str> {
        let rest = self.line.get(2..)?;
        let first = rest.chars().next()?;
        if !"+^$#%*".contains(first) {
            return None;
        }
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(rest.len(), |i| i + 1);
        (end > 1).then(|| &rest[..end])
    }

    /// Whether this is a dial or answer command (`ATD…`, `ATA`, `ATO`), for which V.250
    /// makes `NO CARRIER`, `BUSY`, `NO ANSWER` and `NO DIALTONE` final result codes.
    pub fn is_dial(&self) -> bool {
        matches!(
            self.line.as_bytes().get(2).map(u8::to_ascii_uppercase),
            Some(b'D' | b'A' | b'O')
        )
    }
}

fn default_timeout(line: &str) -> Duration {
    let upper = line.to_ascii_uppercase();
    let rest = upper.get(2..).unwrap_or_default();
    let secs = |s| Duration::from_secs(s);
    if rest.starts_with('D') {
        return secs(60);
    }
    let name_end = rest.find(['=', '?', ';']).unwrap_or(rest.len());
    let (name, args) = rest.split_at(name_end);
    match name {
        "+CMGS" | "+CMSS" | "+CUSD" => secs(60),
        "+COPS" if args.starts_with('=') => secs(180),
        "+CGACT" => secs(150),
        "+CGATT" => secs(75),
        "+CMGL" | "+CFUN" => secs(30),
        "+CMGD" => secs(25),
        "+CMGR" | "+CMGW" | "+CPMS" | "+CPIN" | "+CLCK" => secs(10),
        _ => DEFAULT_TIMEOUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_must_start_with_at_and_hold_no_control_characters() {
        assert!(Command::new("AT+CSQ").is_ok());
        assert!(Command::new("at+csq").is_ok());
        assert_eq!(
            Command::new("+CSQ"),
            Err(InvalidCommand::MissingPrefix {
                line: "+CSQ".into()
            })
        );
        assert_eq!(
            Command::new("AT+CMGD=1\rAT+CMGD=2"),
            Err(InvalidCommand::ControlCharacter {
                byte: b'\r',
                offset: 9
            })
        );
        assert!(Command::new("").is_err());
    }

    #[test]
    fn the_response_prefix_comes_from_the_command_name() {
        let prefix = |line: &str| {
            Command::new(line)
                .map(|c| c.response_prefix().map(str::to_owned))
                .ok()
                .flatten()
        };
        assert_eq!(prefix("AT+CMGL=4").as_deref(), Some("+CMGL"));
        assert_eq!(prefix("AT+CREG?").as_deref(), Some("+CREG"));
        assert_eq!(prefix("AT^ICCID?").as_deref(), Some("^ICCID"));
        assert_eq!(prefix("AT+QCCID").as_deref(), Some("+QCCID"));
        assert_eq!(prefix("ATE0"), None);
        assert_eq!(prefix("AT"), None);
        assert_eq!(prefix("AT+"), None);
    }

    #[test]
    fn slow_commands_get_long_timeouts() {
        let timeout = |line: &str| Command::new(line).map(|c| c.timeout()).ok();
        assert_eq!(timeout("AT+CMGS=23"), Some(Duration::from_secs(60)));
        assert_eq!(timeout("AT+COPS=?"), Some(Duration::from_secs(180)));
        assert_eq!(timeout("AT+COPS?"), Some(DEFAULT_TIMEOUT));
        assert_eq!(timeout("AT+CMGL=4"), Some(Duration::from_secs(30)));
        assert_eq!(timeout("AT+CSQ"), Some(DEFAULT_TIMEOUT));
        assert_eq!(timeout("ATD+441234;"), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_pdu_must_be_even_length_hex() {
        let base = || Command::new("AT+CMGS=1");
        assert!(base().and_then(|c| c.with_pdu("0001")).is_ok());
        assert_eq!(
            base().and_then(|c| c.with_pdu("00G1")),
            Err(InvalidCommand::PduNotHex { offset: 2 })
        );
        assert_eq!(
            base().and_then(|c| c.with_pdu("001")),
            Err(InvalidCommand::PduNotHex { offset: 3 })
        );
        assert_eq!(
            base().and_then(|c| c.with_pdu("001\x1a")),
            Err(InvalidCommand::PduNotHex { offset: 3 })
        );
    }

    #[test]
    fn dial_commands_are_recognised() {
        assert!(Command::new("ATD123;").is_ok_and(|c| c.is_dial()));
        assert!(Command::new("ATA").is_ok_and(|c| c.is_dial()));
        assert!(!Command::new("AT+CSQ").is_ok_and(|c| c.is_dial()));
    }
}
