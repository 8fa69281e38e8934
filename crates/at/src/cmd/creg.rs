//! `AT+CREG`, `AT+CGREG`, `AT+CEREG`: network registration (TS 27.007 §7.2, §10.1.20,
//! §10.1.22).
//!
//! The three share one shape, so one module serves them, keyed by [`Domain`]. The same
//! prefix appears in two forms: the answer to the query, `+CREG: <n>,<stat>[,<lac>,<ci>
//! [,<AcT>]]`, and the unsolicited report enabled by `<n>`=1/2, `+CREG: <stat>[,<lac>,<ci>
//! [,<AcT>]]`. The engine tells them apart by whether a command with that prefix is in
//! flight; [`parse_unsolicited`] also recognises a late query answer by its shape.

use super::find;
use crate::{Command, InfoLine, ParseError, params};

/// Which registration: circuit-switched (SMS over CS, calls), GPRS, or EPS (LTE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// `+CREG`.
    CircuitSwitched,
    /// `+CGREG`.
    Gprs,
    /// `+CEREG`.
    Eps,
}

impl Domain {
    /// The command's prefix, e.g. `+CEREG`.
    pub fn prefix(self) -> &'static str {
        match self {
            Domain::CircuitSwitched => "+CREG",
            Domain::Gprs => "+CGREG",
            Domain::Eps => "+CEREG",
        }
    }
}

/// `<stat>` (TS 27.007 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown (e.g. out of coverage).
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// 6: registered for "SMS only", home network.
    HomeSmsOnly,
    /// 7: registered for "SMS only", roaming.
    RoamingSmsOnly,
    /// 8: attached for emergency bearer services only.
    EmergencyOnly,
    /// 9: registered for "CSFB not preferred", home network.
    HomeCsfbNotPreferred,
    /// 10: registered for "CSFB not preferred", roaming.
    RoamingCsfbNotPreferred,
    /// Any other value, kept as reported.
    Other(u8),
}

impl RegistrationStatus {
    /// Maps a `<stat>` number.
    pub fn from_number(stat: u8) -> RegistrationStatus {
        match stat {
            0 => RegistrationStatus::NotRegistered,
            1 => RegistrationStatus::Home,
            2 => RegistrationStatus::Searching,
            3 => RegistrationStatus::Denied,
            4 => RegistrationStatus::Unknown,
            5 => RegistrationStatus::Roaming,
            6 => RegistrationStatus::HomeSmsOnly,
            7 => RegistrationStatus::RoamingSmsOnly,
            8 => RegistrationStatus::EmergencyOnly,
            9 => RegistrationStatus::HomeCsfbNotPreferred,
            10 => RegistrationStatus::RoamingCsfbNotPreferred,
            other => RegistrationStatus::Other(other),
        }
    }

    /// Whether the modem is registered (home or roaming, any flavour), so SMS can flow.
    pub fn is_registered(self) -> bool {
        matches!(
            self,
            RegistrationStatus::Home
                | RegistrationStatus::Roaming
                | RegistrationStatus::HomeSmsOnly
                | RegistrationStatus::RoamingSmsOnly
                | RegistrationStatus::HomeCsfbNotPreferred
                | RegistrationStatus::RoamingCsfbNotPreferred
        )
    }
}

/// A registration state, from a query answer or an unsolicited report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// Which registration this is.
    pub domain: Domain,
    /// `<n>`, the reporting mode; only query answers carry it.
    pub reporting: Option<u8>,
    /// `<stat>`.
    pub status: RegistrationStatus,
    /// `<lac>` (CS, GPRS) or `<tac>` (EPS), from hex; present with `<n>`=2.
    pub area: Option<u32>,
    /// `<ci>`, the cell id, from hex; present with `<n>`=2.
    pub cell: Option<u32>,
    /// `<AcT>`, the access technology (0 GSM, 2 UTRAN, 7 E-UTRAN, …).
    pub act: Option<u8>,
}

/// `AT+CREG?` (or `+CGREG?`, `+CEREG?`).
pub fn query(domain: Domain) -> Command {
    Command::trusted(format!("AT{}?", domain.prefix()))
}

/// `AT+CREG=<n>`: 0 disables the unsolicited report, 1 reports `<stat>`, 2 adds location.
pub fn set_reporting(domain: Domain, n: u8) -> Command {
    Command::trusted(format!("AT{}={n}", domain.prefix()))
}

/// Parses the query answer `+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]`.
pub fn parse_query(domain: Domain, lines: &[InfoLine]) -> Result<Registration, ParseError> {
    let (line, rest) = find(lines, domain.prefix())?;
    parse_items(domain, &line.text, &params::split(rest), true)
}

/// Parses an unsolicited `+CREG: <stat>[,<lac>,<ci>[,<AcT>]]` line (the whole line,
/// prefix included). A query answer that arrived late (`+CREG: 0,1`: a second parameter
/// that is a bare number of at most two digits, where a report would have a quoted hex
/// `<lac>`) is read as one.
pub fn parse_unsolicited(domain: Domain, line: &str) -> Result<Registration, ParseError> {
    let rest = params::after_prefix(line, domain.prefix()).ok_or(ParseError::MissingLine {
        expected: domain.prefix(),
    })?;
    let items = params::split(rest);
    let solicited_shape = items
        .get(1)
        .is_some_and(|s| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()));
    parse_items(domain, line, &items, solicited_shape)
}

fn parse_items(
    domain: Domain,
    line: &str,
    items: &[&str],
    with_reporting: bool,
) -> Result<Registration, ParseError> {
    let (reporting, items) = if with_reporting {
        (
            Some(params::number(items.first(), line, "<n>")?),
            items.get(1..).unwrap_or_default(),
        )
    } else {
        (None, items)
    };
    let stat: u8 = params::number(items.first(), line, "<stat>")?;
    Ok(Registration {
        domain,
        reporting,
        status: RegistrationStatus::from_number(stat),
        area: hex(items.get(1), line, "<lac>")?,
        cell: hex(items.get(2), line, "<ci>")?,
        act: params::optional_number(items.get(3), line, "<AcT>")?,
    })
}

fn hex(item: Option<&&str>, line: &str, field: &'static str) -> Result<Option<u32>, ParseError> {
    let Some(raw) = item.map(|s| params::unquote(s)).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    u32::from_str_radix(raw, 16)
        .map(Some)
        .map_err(|_| ParseError::InvalidField {
            line: line.to_owned(),
            field,
            value: raw.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_use_the_domain_prefix() {
        assert_eq!(query(Domain::CircuitSwitched).line(), "AT+CREG?");
        assert_eq!(query(Domain::Eps).line(), "AT+CEREG?");
        assert_eq!(set_reporting(Domain::Gprs, 2).line(), "AT+CGREG=2");
    }

    #[test]
    fn query_answers_parse_in_the_n_0_1_and_2_forms() {
        let parse = |text: &str| parse_query(Domain::CircuitSwitched, &[InfoLine::new(text)]);
        let home = parse("+CREG: 0,1");
        assert_eq!(
            home.map(|r| (r.reporting, r.status)),
            Ok((Some(0), RegistrationStatus::Home))
        );
        assert_eq!(
            parse("+CREG: 1,5").map(|r| r.status.is_registered()),
            Ok(true)
        );
        assert_eq!(
            parse("+CREG: 2,1,\"00C3\",\"0000A1B2\",7"),
            Ok(Registration {
                domain: Domain::CircuitSwitched,
                reporting: Some(2),
                status: RegistrationStatus::Home,
                area: Some(0xC3),
                cell: Some(0xA1B2),
                act: Some(7),
            })
        );
        assert_eq!(
            parse("+CREG: 2,2").map(|r| (r.status, r.area)),
            Ok((RegistrationStatus::Searching, None))
        );
    }

    #[test]
    fn every_stat_maps_to_its_meaning() {
        let parse = |text: &str| parse_query(Domain::Eps, &[InfoLine::new(text)]).map(|r| r.status);
        assert_eq!(parse("+CEREG: 0,0"), Ok(RegistrationStatus::NotRegistered));
        assert_eq!(parse("+CEREG: 0,3"), Ok(RegistrationStatus::Denied));
        assert_eq!(parse("+CEREG: 0,4"), Ok(RegistrationStatus::Unknown));
        assert_eq!(parse("+CEREG: 0,42"), Ok(RegistrationStatus::Other(42)));
        assert!(!RegistrationStatus::Searching.is_registered());
    }

    #[test]
    fn unsolicited_reports_parse_and_late_query_answers_are_recognised() {
        let parse = |text: &str| parse_unsolicited(Domain::CircuitSwitched, text);
        assert_eq!(
            parse("+CREG: 5").map(|r| (r.reporting, r.status)),
            Ok((None, RegistrationStatus::Roaming))
        );
        assert_eq!(
            parse("+CREG: 1,\"00C3\",\"A1B2\",7").map(|r| (r.status, r.area, r.cell, r.act)),
            Ok((RegistrationStatus::Home, Some(0xC3), Some(0xA1B2), Some(7)))
        );
        assert_eq!(
            parse("+CREG: 0,1").map(|r| (r.reporting, r.status)),
            Ok((Some(0), RegistrationStatus::Home))
        );
        assert_eq!(
            parse_unsolicited(Domain::Gprs, "+CGREG: 1,00C3,A1B2").map(|r| r.area),
            Ok(Some(0xC3))
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(matches!(
            parse_unsolicited(Domain::CircuitSwitched, "+CREG: x"),
            Err(ParseError::InvalidField {
                field: "<stat>",
                ..
            })
        ));
        assert!(matches!(
            parse_unsolicited(Domain::CircuitSwitched, "+CREG: 1,\"ZZ\",\"1\""),
            Err(ParseError::InvalidField { field: "<lac>", .. })
        ));
        assert!(parse_unsolicited(Domain::Eps, "+CREG: 1").is_err());
        assert!(parse_query(Domain::Eps, &[InfoLine::new("+CEREG: 1")]).is_err());
    }
}
