//! `AT+COPS`: operator selection (TS 27.007 §7.3).
//!
//! For `status`/`health`: which network the modem is on. `AT+COPS=?` scans every band and
//! can take minutes, which is why [`crate::Command::new`] gives it the longest timeout.

use super::find;
use crate::{Command, InfoLine, ParseError, params};

/// `<format>` of the operator name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorFormat {
    /// 0: long alphanumeric, e.g. `Vodafone UK`.
    Long,
    /// 1: short alphanumeric, e.g. `voda UK`.
    Short,
    /// 2: numeric MCC+MNC, e.g. `23415`.
    Numeric,
}

impl OperatorFormat {
    /// The `<format>` number.
    pub fn number(self) -> u8 {
        match self {
            OperatorFormat::Long => 0,
            OperatorFormat::Short => 1,
            OperatorFormat::Numeric => 2,
        }
    }

    fn from_number(n: u8) -> Option<OperatorFormat> {
        match n {
            0 => Some(OperatorFormat::Long),
            1 => Some(OperatorFormat::Short),
            2 => Some(OperatorFormat::Numeric),
            _ => None,
        }
    }
}

/// `AT+COPS?`: the current operator.
pub fn query() -> Command {
    Command::trusted("AT+COPS?".to_owned())
}

/// `AT+COPS=3,<format>`: set the name format of later queries without touching selection.
pub fn set_format(format: OperatorFormat) -> Command {
    Command::trusted(format!("AT+COPS=3,{}", format.number()))
}

/// `AT+COPS=0`: automatic operator selection.
pub fn automatic() -> Command {
    Command::trusted("AT+COPS=0".to_owned())
}

/// `AT+COPS=?`: scan for available operators (slow).
pub fn test() -> Command {
    Command::trusted("AT+COPS=?".to_owned())
}

/// The answer to `AT+COPS?`: `+COPS: <mode>[,<format>,<oper>[,<AcT>]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSelection {
    /// `<mode>`: 0 automatic, 1 manual, 2 deregistered, 4 manual/automatic.
    pub mode: u8,
    /// The format of `name`, when an operator is reported.
    pub format: Option<OperatorFormat>,
    /// `<oper>`; `None` when not registered.
    pub name: Option<String>,
    /// `<AcT>` (0 GSM, 2 UTRAN, 7 E-UTRAN, …).
    pub act: Option<u8>,
}

/// Parses the answer to [`query`].
pub fn parse_query(lines: &[InfoLine]) -> Result<OperatorSelection, ParseError> {
    let (line, rest) = find(lines, "+COPS")?;
    let text = &line.text;
    let items = params::split(rest);
    let format = params::optional_number::<u8>(items.get(1), text, "<format>")?
        .map(|n| {
            OperatorFormat::from_number(n).ok_or_else(|| ParseError::InvalidField {
                line: text.clone(),
                field: "<format>",
                value: n.to_string(),
            })
        })
        .transpose()?;
    Ok(OperatorSelection {
        mode: params::number(items.first(), text, "<mode>")?,
        format,
        name: params::optional_string(items.get(2)),
        act: params::optional_number(items.get(3), text, "<AcT>")?,
    })
}

/// One operator from the `AT+COPS=?` scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailableOperator {
    /// `<stat>`: 0 unknown, 1 available, 2 current, 3 forbidden.
    pub stat: u8,
    /// Long alphanumeric name.
    pub long_name: Option<String>,
    /// Short alphanumeric name.
    pub short_name: Option<String>,
    /// Numeric MCC+MNC.
    pub numeric: Option<String>,
    /// `<AcT>`.
    pub act: Option<u8>,
}

/// Parses `+COPS: (2,"Long","Short","23415",7),(1,…),,(0-4),(0-2)`: the operator groups;
/// the trailing lists of supported modes and formats are skipped.
pub fn parse_test(lines: &[InfoLine]) -> Result<Vec<AvailableOperator>, ParseError> {
    let (line, rest) = find(lines, "+COPS")?;
    let text = &line.text;
    params::split(rest)
        .into_iter()
        .take_while(|item| !item.is_empty())
        .filter(|group| params::unparen(group).contains('"'))
        .map(|group| {
            let items = params::split(params::unparen(group));
            Ok(AvailableOperator {
                stat: params::number(items.first(), text, "<stat>")?,
                long_name: params::optional_string(items.get(1)),
                short_name: params::optional_string(items.get(2)),
                numeric: params::optional_string(items.get(3)),
                act: params::optional_number(items.get(4), text, "<AcT>")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_build_their_lines() {
        assert_eq!(query().line(), "AT+COPS?");
        assert_eq!(set_format(OperatorFormat::Numeric).line(), "AT+COPS=3,2");
        assert_eq!(automatic().line(), "AT+COPS=0");
        assert_eq!(test().line(), "AT+COPS=?");
    }

    #[test]
    fn the_current_operator_parses_with_name_format_and_act() {
        assert_eq!(
            parse_query(&[InfoLine::new("+COPS: 0,0,\"Vodafone UK\",7")]),
            Ok(OperatorSelection {
                mode: 0,
                format: Some(OperatorFormat::Long),
                name: Some("Vodafone UK".into()),
                act: Some(7),
            })
        );
        assert_eq!(
            parse_query(&[InfoLine::new("+COPS: 0,2,\"23415\"")]).map(|s| s.name),
            Ok(Some("23415".into()))
        );
    }

    #[test]
    fn no_operator_is_a_mode_without_name() {
        assert_eq!(
            parse_query(&[InfoLine::new("+COPS: 2")]),
            Ok(OperatorSelection {
                mode: 2,
                format: None,
                name: None,
                act: None
            })
        );
        assert!(matches!(
            parse_query(&[InfoLine::new("+COPS: 0,9,\"x\"")]),
            Err(ParseError::InvalidField {
                field: "<format>",
                ..
            })
        ));
    }

    #[test]
    fn the_scan_lists_operators_and_skips_the_supported_value_lists() {
        let lines = [InfoLine::new(
            "+COPS: (2,\"Vodafone UK\",\"voda UK\",\"23415\",7),(3,\"O2 - UK\",\"O2\",\"23410\",2),,(0-4),(0-2)",
        )];
        let operators = parse_test(&lines);
        assert_eq!(operators.as_ref().map(Vec::len), Ok(2));
        assert_eq!(
            operators.map(|o| o[1].clone()),
            Ok(AvailableOperator {
                stat: 3,
                long_name: Some("O2 - UK".into()),
                short_name: Some("O2".into()),
                numeric: Some("23410".into()),
                act: Some(2),
            })
        );
    }
}
