//! `AT+CMGD`: delete messages (TS 27.005 §3.5.4).
//!
//! Promise 1 ("no inbound loss"): the gateway deletes a slot only after its row is
//! committed, and by index after re-reading it. The bulk forms (`<delflag>`) exist for the
//! capacity drain of messages already safe in the database.

use super::find;
use crate::{Command, InfoLine, ParseError, params};

/// `<delflag>` of `AT+CMGD=<index>,<delflag>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeleteFlag {
    /// 0: delete the message at `<index>` only.
    Index,
    /// 1: delete all read messages.
    Read,
    /// 2: delete all read and sent messages.
    ReadAndSent,
    /// 3: delete all read, sent and unsent messages (keeps unread ones).
    ReadSentAndUnsent,
    /// 4: delete every message, unread ones included.
    All,
}

impl DeleteFlag {
    /// The `<delflag>` number.
    pub fn number(self) -> u8 {
        match self {
            DeleteFlag::Index => 0,
            DeleteFlag::Read => 1,
            DeleteFlag::ReadAndSent => 2,
            DeleteFlag::ReadSentAndUnsent => 3,
            DeleteFlag::All => 4,
        }
    }
}

/// `AT+CMGD=<index>`: delete one message.
pub fn delete(index: u32) -> Command {
    Command::trusted(format!("AT+CMGD={index}"))
}

/// `AT+CMGD=<index>,<delflag>`: delete by flag (`index` is ignored by the modem unless the
/// flag is [`DeleteFlag::Index`], but must still be a valid slot on some firmwares).
pub fn delete_with_flag(index: u32, flag: DeleteFlag) -> Command {
    Command::trusted(format!("AT+CMGD={index},{}", flag.number()))
}

/// `AT+CMGD=?`: which slots hold messages and which flags the modem supports.
pub fn test() -> Command {
    Command::trusted("AT+CMGD=?".to_owned())
}

/// The answer to `AT+CMGD=?`: `+CMGD: (1,2,5),(0-4)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteSupport {
    /// Slots that currently hold a message.
    pub indices: Vec<u32>,
    /// Supported `<delflag>` values (empty if the modem lists none).
    pub flags: Vec<u32>,
}

/// Parses the answer to [`test()`].
pub fn parse_test(lines: &[InfoLine]) -> Result<DeleteSupport, ParseError> {
    let (line, rest) = find(lines, "+CMGD")?;
    let items = params::split(rest);
    let indices = match items.first() {
        Some(item) => params::range_list(item, &line.text, "<index>")?,
        None => Vec::new(),
    };
    let flags = match items.get(1) {
        Some(item) => params::range_list(item, &line.text, "<delflag>")?,
        None => Vec::new(),
    };
    Ok(DeleteSupport { indices, flags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_flagged_deletes_build_their_lines() {
        assert_eq!(delete(3).line(), "AT+CMGD=3");
        assert_eq!(delete_with_flag(1, DeleteFlag::All).line(), "AT+CMGD=1,4");
        assert_eq!(delete_with_flag(5, DeleteFlag::Index).line(), "AT+CMGD=5,0");
        assert_eq!(test().line(), "AT+CMGD=?");
    }

    #[test]
    fn the_test_answer_lists_slots_and_flags() {
        assert_eq!(
            parse_test(&[InfoLine::new("+CMGD: (1,2,5),(0-4)")]),
            Ok(DeleteSupport {
                indices: vec![1, 2, 5],
                flags: vec![0, 1, 2, 3, 4]
            })
        );
        assert_eq!(
            parse_test(&[InfoLine::new("+CMGD: (),(0-4)")]).map(|s| s.indices),
            Ok(vec![])
        );
        assert!(parse_test(&[]).is_err());
    }
}
