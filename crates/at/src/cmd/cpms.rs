//! `AT+CPMS`: preferred message storage and its fill level (TS 27.005 §3.2.2).
//!
//! DESIGN "Lifecycle": capacity monitoring from `AT+CPMS?`, a warning above a threshold and
//! a forced cleanup; storage is shown everywhere as `used/total (x.x % full)`, which is what
//! [`Capacity`]'s `Display` prints. Memory names are kept as the modem spells them (`"SM"`,
//! `"ME"`, `"MT"`, `"SR"`, `"BM"`, vendor ones): the driver compares, this module does not
//! interpret.

use std::fmt;

use super::{find, quoted};
use crate::{Command, InfoLine, InvalidCommand, ParseError, params};

/// `AT+CPMS?`: the three memories and their fill levels.
pub fn query() -> Command {
    Command::trusted("AT+CPMS?".to_owned())
}

/// `AT+CPMS=?`: the memories the modem supports for each role.
pub fn test() -> Command {
    Command::trusted("AT+CPMS=?".to_owned())
}

/// `AT+CPMS="<mem1>"[,"<mem2>"[,"<mem3>"]]`: choose the memories for reading/deleting,
/// writing/sending, and receiving.
pub fn set(
    read: &str,
    write: Option<&str>,
    receive: Option<&str>,
) -> Result<Command, InvalidCommand> {
    let mut line = format!("AT+CPMS={}", quoted(read)?);
    for memory in [write, receive].into_iter().flatten() {
        line.push(',');
        line.push_str(&quoted(memory)?);
    }
    Command::new(line)
}

/// Used and total slots of one memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Messages stored.
    pub used: u32,
    /// Slots in total.
    pub total: u32,
}

impl Capacity {
    /// How full the memory is, in percent (0 for a memory with no slots).
    pub fn percent_full(self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            f64::from(self.used) * 100.0 / f64::from(self.total)
        }
    }

    /// Whether no slot is free.
    pub fn is_full(self) -> bool {
        self.used >= self.total
    }
}

impl fmt::Display for Capacity {
    /// `used/total (x.x % full)`, the form DESIGN.md asks for everywhere.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} ({:.1} % full)",
            self.used,
            self.total,
            self.percent_full()
        )
    }
}

/// One memory in the `AT+CPMS?` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryUsage {
    /// The memory's name, unquoted (`SM`, `ME`, `MT`, …).
    pub memory: String,
    /// Its fill level.
    pub capacity: Capacity,
}

/// The `AT+CPMS?` answer. Old modems report fewer than three memories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `<mem1>`: where messages are read and deleted (`AT+CMGL`, `AT+CMGR`, `AT+CMGD`).
    pub read: MemoryUsage,
    /// `<mem2>`: where messages are written and sent from.
    pub write: Option<MemoryUsage>,
    /// `<mem3>`: where received messages are stored.
    pub receive: Option<MemoryUsage>,
}

/// Parses `+CPMS: <mem1>,<used1>,<total1>[,<mem2>,<used2>,<total2>[,<mem3>,…]]`.
pub fn parse_query(lines: &[InfoLine]) -> Result<Storage, ParseError> {
    let (line, rest) = find(lines, "+CPMS")?;
    let items = params::split(rest);
    let memory = |n: usize| -> Result<Option<MemoryUsage>, ParseError> {
        let Some(name) = items.get(3 * n) else {
            return Ok(None);
        };
        let field = ["<mem1>", "<mem2>", "<mem3>"][n];
        let name = params::unquote(name);
        if name.is_empty() {
            return Err(ParseError::MissingField {
                line: line.text.clone(),
                field,
            });
        }
        Ok(Some(MemoryUsage {
            memory: name.to_owned(),
            capacity: Capacity {
                used: params::number(items.get(3 * n + 1), &line.text, "<used>")?,
                total: params::number(items.get(3 * n + 2), &line.text, "<total>")?,
            },
        }))
    };
    let read = memory(0)?.ok_or_else(|| ParseError::MissingField {
        line: line.text.clone(),
        field: "<mem1>",
    })?;
    Ok(Storage {
        read,
        write: memory(1)?,
        receive: memory(2)?,
    })
}

/// Parses the answer to [`set`]: `+CPMS: <used1>,<total1>,<used2>,<total2>,…`, one
/// [`Capacity`] per memory set.
pub fn parse_set(lines: &[InfoLine]) -> Result<Vec<Capacity>, ParseError> {
    let (line, rest) = find(lines, "+CPMS")?;
    let items = params::split(rest);
    if items.is_empty() || !items.len().is_multiple_of(2) {
        return Err(ParseError::MissingField {
            line: line.text.clone(),
            field: "<total>",
        });
    }
    items
        .chunks(2)
        .map(|pair| {
            Ok(Capacity {
                used: params::number(pair.first(), &line.text, "<used>")?,
                total: params::number(pair.get(1), &line.text, "<total>")?,
            })
        })
        .collect()
}

/// The answer to `AT+CPMS=?`: supported memory names per role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SupportedMemories {
    /// Supported `<mem1>` names.
    pub read: Vec<String>,
    /// Supported `<mem2>` names.
    pub write: Vec<String>,
    /// Supported `<mem3>` names.
    pub receive: Vec<String>,
}

/// Parses `+CPMS: ("SM","ME"),("SM","ME"),("SM")`.
pub fn parse_test(lines: &[InfoLine]) -> Result<SupportedMemories, ParseError> {
    let (line, rest) = find(lines, "+CPMS")?;
    let groups = params::split(rest);
    if groups.is_empty() {
        return Err(ParseError::MissingField {
            line: line.text.clone(),
            field: "<mem1>s",
        });
    }
    let names = |n: usize| -> Vec<String> {
        groups
            .get(n)
            .map(|g| {
                params::split(params::unparen(g))
                    .into_iter()
                    .map(|name| params::unquote(name).to_owned())
                    .filter(|name| !name.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(SupportedMemories {
        read: names(0),
        write: names(1),
        receive: names(2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(memory: &str, used: u32, total: u32) -> MemoryUsage {
        MemoryUsage {
            memory: memory.into(),
            capacity: Capacity { used, total },
        }
    }

    #[test]
    fn commands_quote_memory_names_and_refuse_quotes() {
        assert_eq!(query().line(), "AT+CPMS?");
        assert_eq!(test().line(), "AT+CPMS=?");
        assert_eq!(
            set("SM", Some("SM"), Some("SM")).map(|c| c.line().to_owned()),
            Ok("AT+CPMS=\"SM\",\"SM\",\"SM\"".to_owned())
        );
        assert_eq!(
            set("ME", None, None).map(|c| c.line().to_owned()),
            Ok("AT+CPMS=\"ME\"".to_owned())
        );
        assert!(set("S\"M", None, None).is_err());
        assert!(set("SM\r", None, None).is_err());
    }

    #[test]
    fn the_query_gives_three_memories_with_their_fill_levels() {
        let lines = [InfoLine::new(
            "+CPMS: \"SM\",5,30,\"ME\",0,100,\"MT\",5,130",
        )];
        assert_eq!(
            parse_query(&lines),
            Ok(Storage {
                read: usage("SM", 5, 30),
                write: Some(usage("ME", 0, 100)),
                receive: Some(usage("MT", 5, 130)),
            })
        );
    }

    #[test]
    fn an_old_modem_with_two_memories_parses() {
        let lines = [InfoLine::new("+CPMS: \"SM\",30,30,\"SM\",30,30")];
        let storage = parse_query(&lines);
        assert_eq!(storage.as_ref().map(|s| s.receive.is_none()), Ok(true));
        assert_eq!(storage.map(|s| s.read.capacity.is_full()), Ok(true));
    }

    #[test]
    fn malformed_queries_name_the_field() {
        let lines = [InfoLine::new("+CPMS: \"SM\",5")];
        assert!(matches!(
            parse_query(&lines),
            Err(ParseError::MissingField {
                field: "<total>",
                ..
            })
        ));
        let lines = [InfoLine::new("+CPMS: ,5,30")];
        assert!(matches!(
            parse_query(&lines),
            Err(ParseError::MissingField {
                field: "<mem1>",
                ..
            })
        ));
    }

    #[test]
    fn the_set_answer_gives_one_capacity_per_memory() {
        let lines = [InfoLine::new("+CPMS: 5,30,5,30,5,30")];
        assert_eq!(
            parse_set(&lines),
            Ok(vec![Capacity { used: 5, total: 30 }; 3])
        );
        assert!(parse_set(&[InfoLine::new("+CPMS: 5,30,5")]).is_err());
    }

    #[test]
    fn the_test_answer_lists_supported_memories_per_role() {
        let lines = [InfoLine::new(
            "+CPMS: (\"SM\",\"ME\",\"MT\"),(\"SM\",\"ME\"),(\"SM\",\"SR\",\"BM\")",
        )];
        assert_eq!(
            parse_test(&lines),
            Ok(SupportedMemories {
                read: vec!["SM".into(), "ME".into(), "MT".into()],
                write: vec!["SM".into(), "ME".into()],
                receive: vec!["SM".into(), "SR".into(), "BM".into()],
            })
        );
    }

    #[test]
    fn capacity_displays_as_the_design_asks() {
        assert_eq!(
            Capacity {
                used: 24,
                total: 30
            }
            .to_string(),
            "24/30 (80.0 % full)"
        );
        assert_eq!(
            Capacity { used: 0, total: 0 }.to_string(),
            "0/0 (0.0 % full)"
        );
    }
}
