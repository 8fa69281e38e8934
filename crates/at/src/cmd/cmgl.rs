//! `AT+CMGL`: list the messages in the read memory (TS 27.005 §4.1, PDU mode).
//!
//! Each entry is a two-line construct: `+CMGL: <index>,<stat>,[<alpha>],<length>` then the
//! PDU line; the engine pairs them into one [`InfoLine`]. The gateway's periodic sweep and
//! its "SIM full" drain (DESIGN "Lifecycle") are built on this listing.

use super::{MessageStatus, find_all};
use crate::{Command, InfoLine, ParseError, params};

/// `AT+CMGL=<stat>`: list the messages with status `stat` ([`MessageStatus::All`] for all).
pub fn list(stat: MessageStatus) -> Command {
    Command::trusted(format!("AT+CMGL={}", stat.number()))
}

/// One message of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The message's slot in the memory (`<index>`).
    pub index: u32,
    /// Its status (`<stat>`).
    pub stat: MessageStatus,
    /// The phonebook name of the sender, when the modem fills it in (`<alpha>`).
    pub alpha: Option<String>,
    /// The TPDU length in octets, without the SMSC address (`<length>`).
    pub length: u32,
    /// The PDU, hex, SMSC address first.
    pub pdu: String,
}

/// Parses the `+CMGL` entries of a listing, in order. An empty listing (bare `OK`) is an
/// empty vector; a header whose PDU line did not follow is [`ParseError::MissingPdu`].
pub fn parse(lines: &[InfoLine]) -> Result<Vec<ListEntry>, ParseError> {
    find_all(lines, "+CMGL")
        .map(|(line, rest)| parse_entry(line, rest))
        .collect()
}

fn parse_entry(line: &InfoLine, rest: &str) -> Result<ListEntry, ParseError> {
    let text = &line.text;
    let items = params::split(rest);
    let index = params::number(items.first(), text, "<index>")?;
    let stat = parse_stat(items.get(1), text)?;
    let (alpha, length) = match items.len() {
        // Some firmwares leave out the empty <alpha>: `+CMGL: 1,0,24`.
        3 => (None, params::number(items.get(2), text, "<length>")?),
        _ => (
            params::optional_string(items.get(2)),
            params::number(items.get(3), text, "<length>")?,
        ),
    };
    let pdu = line
        .pdu
        .clone()
        .ok_or_else(|| ParseError::MissingPdu { line: text.clone() })?;
    Ok(ListEntry {
        index,
        stat,
        alpha,
        length,
        pdu,
    })
}

/// Reads a `<stat>` parameter, shared with `+CMGR`.
pub(crate) fn parse_stat(item: Option<&&str>, line: &str) -> Result<MessageStatus, ParseError> {
    let raw = item.copied().unwrap_or_default();
    if raw.is_empty() {
        return Err(ParseError::MissingField {
            line: line.to_owned(),
            field: "<stat>",
        });
    }
    MessageStatus::from_param(raw).ok_or_else(|| ParseError::InvalidField {
        line: line.to_owned(),
        field: "<stat>",
        value: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDU: &str =
        "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

    #[test]
    fn the_command_lists_by_status_number() {
        assert_eq!(list(MessageStatus::All).line(), "AT+CMGL=4");
        assert_eq!(list(MessageStatus::ReceivedUnread).line(), "AT+CMGL=0");
    }

    #[test]
    fn entries_pair_headers_with_their_pdus() {
        let lines = vec![
            InfoLine::with_pdu("+CMGL: 1,0,,39", PDU),
            InfoLine::with_pdu("+CMGL: 4,1,\"Mum\",39", PDU),
        ];
        let entries = parse(&lines);
        assert_eq!(
            entries,
            Ok(vec![
                ListEntry {
                    index: 1,
                    stat: MessageStatus::ReceivedUnread,
                    alpha: None,
                    length: 39,
                    pdu: PDU.into()
                },
                ListEntry {
                    index: 4,
                    stat: MessageStatus::ReceivedRead,
                    alpha: Some("Mum".into()),
                    length: 39,
                    pdu: PDU.into()
                },
            ])
        );
    }

    #[test]
    fn a_listing_without_alpha_field_and_an_empty_listing_parse() {
        let lines = vec![InfoLine::with_pdu("+CMGL: 2,1,39", PDU)];
        assert_eq!(parse(&lines).map(|e| e[0].length), Ok(39));
        assert_eq!(parse(&[]), Ok(vec![]));
    }

    #[test]
    fn foreign_lines_are_skipped_but_a_missing_pdu_is_an_error() {
        let lines = vec![InfoLine::new("^VENDOR: 1"), InfoLine::new("+CMGL: 3,0,,39")];
        assert_eq!(
            parse(&lines),
            Err(ParseError::MissingPdu {
                line: "+CMGL: 3,0,,39".into()
            })
        );
    }

    #[test]
    fn malformed_headers_name_the_field() {
        let lines = vec![InfoLine::with_pdu("+CMGL: x,0,,39", PDU)];
        assert!(matches!(
            parse(&lines),
            Err(ParseError::InvalidField {
                field: "<index>",
                ..
            })
        ));
        let lines = vec![InfoLine::with_pdu("+CMGL: 1,7,,39", PDU)];
        assert!(matches!(
            parse(&lines),
            Err(ParseError::InvalidField {
                field: "<stat>",
                ..
            })
        ));
        let lines = vec![InfoLine::with_pdu("+CMGL: 1", PDU)];
        assert!(matches!(
            parse(&lines),
            Err(ParseError::MissingField {
                field: "<stat>",
                ..
            })
        ));
    }
}
