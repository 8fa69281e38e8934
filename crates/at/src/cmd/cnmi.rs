//! `AT+CNMI`: how new messages and status reports are indicated (TS 27.005 §3.4.1).
//!
//! DESIGN "Receiving": never route messages straight to the terminal (`<mt>` 2/3 lost
//! messages in the original system). Prefer `<mt>`=1 (store, `+CMTI`); status reports stored
//! with `+CDSI` (`<ds>`=2), else `<ds>`=1 (with `AT+CSMS=0`), else none. Modems differ in
//! what they accept, so the test form is parsed into the supported values and
//! [`CnmiSupport::preferred`] picks the best setting they allow.

use super::find;
use crate::{Command, InfoLine, ParseError, params};

/// The five `AT+CNMI` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CnmiSettings {
    /// `<mode>`: buffering of indications while the link is busy (2: buffer in the TA and
    /// flush when free, the safe choice for a driver that is sometimes mid-command).
    pub mode: u8,
    /// `<mt>`: new-message indication (1: store and send `+CMTI`).
    pub mt: u8,
    /// `<bm>`: cell broadcast indication (0: none).
    pub bm: u8,
    /// `<ds>`: status report indication (2: store and send `+CDSI`; 1: `+CDS` direct).
    pub ds: u8,
    /// `<bfr>`: what to do with buffered indications when `<mode>` 1…3 is entered (0: flush).
    pub bfr: u8,
}

/// `AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>`.
pub fn set(settings: CnmiSettings) -> Command {
    let CnmiSettings {
        mode,
        mt,
        bm,
        ds,
        bfr,
    } = settings;
    Command::trusted(format!("AT+CNMI={mode},{mt},{bm},{ds},{bfr}"))
}

/// `AT+CNMI?`: the current settings.
pub fn query() -> Command {
    Command::trusted("AT+CNMI?".to_owned())
}

/// `AT+CNMI=?`: the supported values.
pub fn test() -> Command {
    Command::trusted("AT+CNMI=?".to_owned())
}

/// Parses `+CNMI: <mode>,<mt>,<bm>,<ds>,<bfr>`; missing trailing values read as 0.
pub fn parse_query(lines: &[InfoLine]) -> Result<CnmiSettings, ParseError> {
    let (line, rest) = find(lines, "+CNMI")?;
    let items = params::split(rest);
    let text = &line.text;
    let value = |n: usize, field| {
        params::optional_number::<u8>(items.get(n), text, field).map(Option::unwrap_or_default)
    };
    Ok(CnmiSettings {
        mode: params::number(items.first(), text, "<mode>")?,
        mt: value(1, "<mt>")?,
        bm: value(2, "<bm>")?,
        ds: value(3, "<ds>")?,
        bfr: value(4, "<bfr>")?,
    })
}

/// Supported values per parameter, from `AT+CNMI=?`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CnmiSupport {
    /// Supported `<mode>` values.
    pub mode: Vec<u8>,
    /// Supported `<mt>` values.
    pub mt: Vec<u8>,
    /// Supported `<bm>` values.
    pub bm: Vec<u8>,
    /// Supported `<ds>` values.
    pub ds: Vec<u8>,
    /// Supported `<bfr>` values.
    pub bfr: Vec<u8>,
}

impl CnmiSupport {
    /// Whether every value of `settings` is supported.
    pub fn supports(&self, settings: CnmiSettings) -> bool {
        self.mode.contains(&settings.mode)
            && self.mt.contains(&settings.mt)
            && self.bm.contains(&settings.bm)
            && self.ds.contains(&settings.ds)
            && self.bfr.contains(&settings.bfr)
    }

    /// The DESIGN's preference among the supported values: `<mt>`=1 (never 2 or 3),
    /// `<ds>` 2 then 1 then 0, `<mode>` 2 then 1, `<bm>` 0, `<bfr>` 0 then 1. `None` if the
    /// modem cannot store-and-indicate (`<mt>`=1): it is swept instead.
    pub fn preferred(&self) -> Option<CnmiSettings> {
        let pick =
            |supported: &[u8], order: &[u8]| order.iter().copied().find(|v| supported.contains(v));
        Some(CnmiSettings {
            mode: pick(&self.mode, &[2, 1])?,
            mt: pick(&self.mt, &[1])?,
            bm: pick(&self.bm, &[0]).unwrap_or(0),
            ds: pick(&self.ds, &[2, 1, 0]).unwrap_or(0),
            bfr: pick(&self.bfr, &[0, 1]).unwrap_or(0),
        })
    }
}

/// Parses `+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)`.
pub fn parse_test(lines: &[InfoLine]) -> Result<CnmiSupport, ParseError> {
    let (line, rest) = find(lines, "+CNMI")?;
    let items = params::split(rest);
    let values = |n: usize, field: &'static str| -> Result<Vec<u8>, ParseError> {
        let Some(item) = items.get(n) else {
            return Ok(Vec::new());
        };
        params::range_list(item, &line.text, field)?
            .into_iter()
            .map(|v| {
                u8::try_from(v).map_err(|_| ParseError::InvalidField {
                    line: line.text.clone(),
                    field,
                    value: (*item).to_owned(),
                })
            })
            .collect()
    };
    Ok(CnmiSupport {
        mode: values(0, "<mode>")?,
        mt: values(1, "<mt>")?,
        bm: values(2, "<bm>")?,
        ds: values(3, "<ds>")?,
        bfr: values(4, "<bfr>")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAFE: CnmiSettings = CnmiSettings {
        mode: 2,
        mt: 1,
        bm: 0,
        ds: 2,
        bfr: 0,
    };

    #[test]
    fn set_query_and_test_build_their_lines() {
        assert_eq!(set(SAFE).line(), "AT+CNMI=2,1,0,2,0");
        assert_eq!(query().line(), "AT+CNMI?");
        assert_eq!(test().line(), "AT+CNMI=?");
    }

    #[test]
    fn the_query_answer_parses_with_missing_trailing_values() {
        assert_eq!(parse_query(&[InfoLine::new("+CNMI: 2,1,0,2,0")]), Ok(SAFE));
        assert_eq!(
            parse_query(&[InfoLine::new("+CNMI: 1,1")]).map(|s| (s.mode, s.mt, s.ds)),
            Ok((1, 1, 0))
        );
    }

    #[test]
    fn the_test_answer_lists_supported_values() {
        let support = parse_test(&[InfoLine::new("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)")]);
        assert_eq!(
            support,
            Ok(CnmiSupport {
                mode: vec![0, 1, 2],
                mt: vec![0, 1, 2, 3],
                bm: vec![0, 2],
                ds: vec![0, 1, 2],
                bfr: vec![0, 1],
            })
        );
        assert_eq!(support.map(|s| s.supports(SAFE)), Ok(true));
    }

    #[test]
    fn the_preferred_setting_falls_back_as_the_design_says() {
        let full = CnmiSupport {
            mode: vec![0, 1, 2],
            mt: vec![0, 1, 2, 3],
            bm: vec![0],
            ds: vec![0, 1, 2],
            bfr: vec![0, 1],
        };
        assert_eq!(full.preferred(), Some(SAFE));
        let no_cdsi = CnmiSupport {
            mode: vec![1],
            ds: vec![0, 1],
            ..full.clone()
        };
        assert_eq!(no_cdsi.preferred().map(|s| (s.mode, s.ds)), Some((1, 1)));
        let direct_only = CnmiSupport {
            mt: vec![0, 2],
            ..full
        };
        assert_eq!(direct_only.preferred(), None);
    }

    #[test]
    fn out_of_range_values_are_errors() {
        assert!(parse_test(&[InfoLine::new("+CNMI: (0-300)")]).is_err());
        assert!(parse_test(&[InfoLine::new("+CNMI: (x)")]).is_err());
    }
}
