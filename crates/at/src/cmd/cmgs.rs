//! `AT+CMGS`: send a message (TS 27.005 §4.3, PDU mode).
//!
//! The only command with a data phase: `AT+CMGS=<length><CR>`, the modem's `> ` prompt, the
//! PDU as hex ended by Ctrl-Z, then `+CMGS: <mr>[,<ackpdu>]` and `OK`, or `+CMS ERROR`.
//! Promise 3 ("sent at most once"): once the PDU is written the send is ambiguous until the
//! final result; the engine reports that in its events (`pdu_sent`).

use super::find;
use crate::{Command, InfoLine, InvalidCommand, ParseError, params};

/// `AT+CMGS=<length>` with `pdu` as its data phase. `pdu` is hex, SMSC address first (a
/// lone `00` octet for "use the SIM's SMSC"); `<length>` is computed from it as TS 27.005
/// §4.3 defines it: the octets after the SMSC address.
pub fn send(pdu: &str) -> Result<Command, InvalidCommand> {
    let even_hex = pdu.len().is_multiple_of(2) && pdu.bytes().all(|b| b.is_ascii_hexdigit());
    let smsc_octets = match pdu.get(..2).map(|h| u8::from_str_radix(h, 16)) {
        Some(Ok(octets)) if even_hex => usize::from(octets),
        _ => {
            let offset = pdu
                .bytes()
                .position(|b| !b.is_ascii_hexdigit())
                .unwrap_or(pdu.len());
            return Err(InvalidCommand::PduNotHex { offset });
        }
    };
    let total_octets = pdu.len() / 2;
    let tpdu_octets = total_octets
        .checked_sub(1 + smsc_octets)
        .filter(|&n| n > 0)
        .ok_or(InvalidCommand::PduTooShort {
            smsc_octets,
            total_octets,
        })?;
    send_with_length(tpdu_octets, pdu)
}

/// `AT+CMGS=<length>` with a caller-computed `<length>`.
pub fn send_with_length(length: usize, pdu: &str) -> Result<Command, InvalidCommand> {
    Command::trusted(format!("AT+CMGS={length}")).with_pdu(pdu)
}

/// Parses `+CMGS: <mr>[,<ackpdu>]` into the TP-Message-Reference, which status reports
/// carry back (DESIGN "Sending": reports match on modem, TP-MR and recipient).
pub fn parse(lines: &[InfoLine]) -> Result<u8, ParseError> {
    let (line, rest) = find(lines, "+CMGS")?;
    let items = params::split(rest);
    params::number(items.first(), &line.text, "<mr>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_excludes_the_smsc_address() {
        // Default SMSC (00) + 3-octet TPDU.
        let command = send("00110001");
        assert_eq!(command.as_ref().map(Command::line), Ok("AT+CMGS=3"));
        assert_eq!(command.as_ref().map(Command::pdu), Ok(Some("00110001")));
        // 7-octet SMSC address + 2-octet TPDU.
        let command = send("07911326040000F01100");
        assert_eq!(command.as_ref().map(Command::line), Ok("AT+CMGS=2"));
    }

    #[test]
    fn malformed_pdus_are_refused() {
        assert_eq!(send("0G11"), Err(InvalidCommand::PduNotHex { offset: 1 }));
        assert_eq!(send("001"), Err(InvalidCommand::PduNotHex { offset: 3 }));
        assert_eq!(send(""), Err(InvalidCommand::PduNotHex { offset: 0 }));
        assert_eq!(
            send("0791132604"),
            Err(InvalidCommand::PduTooShort {
                smsc_octets: 7,
                total_octets: 5
            })
        );
        assert_eq!(
            send("00"),
            Err(InvalidCommand::PduTooShort {
                smsc_octets: 0,
                total_octets: 1
            })
        );
    }

    #[test]
    fn the_message_reference_is_parsed_with_or_without_ackpdu() {
        assert_eq!(parse(&[InfoLine::new("+CMGS: 12")]), Ok(12));
        assert_eq!(parse(&[InfoLine::new("+CMGS: 255,\"0011\"")]), Ok(255));
        assert!(matches!(
            parse(&[InfoLine::new("+CMGS: 256")]),
            Err(ParseError::InvalidField { field: "<mr>", .. })
        ));
        assert_eq!(
            parse(&[]),
            Err(ParseError::MissingLine { expected: "+CMGS" })
        );
    }
}
