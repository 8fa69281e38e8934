//! Unsolicited result codes: the table that recognises them and the typed [`Urc`].
//!
//! Why a table: URCs can arrive at any time, also in the middle of a command's answer
//! (DESIGN layer "modem": "URCs are demultiplexed from command responses, also when they
//! arrive in the middle of one"). The engine asks this table about every line that does not
//! carry the prefix of the command in flight; a match leaves at once as an event and never
//! mixes into a response. A line with the in-flight command's prefix is that command's
//! answer (so `+CREG: 0,1` answers `AT+CREG?` and is a URC otherwise).
//!
//! Spec: TS 27.005 §3.4.1 (`+CMTI`, `+CMT`, `+CDS`, `+CDSI`, `+CBM`, the indications chosen
//! by `AT+CNMI`); TS 27.007 §6.2 (`RING`/`+CRING`), §7.6 (`+CLIP`), §7.2/§10.1.20/§10.1.22
//! (`+CREG`/`+CGREG`/`+CEREG`), §7.15 (`+CUSD`), §8.3 (`+CPIN`). The rest is vendor noise
//! seen on Huawei (`^RSSI`, `^BOOT`, `^MODE`, `^HCSQ`, `^SIMST` …), Quectel (`RDY`,
//! `+QIND`), SIMCom (`Call Ready`, `SMS Ready`, `+CFUN: 1`, `PB DONE`, `+PACSP`) and
//! Cinterion (`^SYSSTART`).

use crate::cmd::cpin::PinStatus;
use crate::cmd::creg::{self, Domain, Registration};
use crate::{ParseError, params};

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urc {
    /// `+CMTI: <mem>,<index>`: a message was stored (`AT+CNMI` `<mt>`=1). The gateway reads
    /// it at once.
    MessageStored {
        /// The memory, unquoted (`SM`, `ME`, `MT`, …).
        storage: String,
        /// The slot.
        index: u32,
    },
    /// `+CDSI: <mem>,<index>`: a status report was stored (`<ds>`=2).
    StatusReportStored {
        /// The memory, unquoted (often `SR`).
        storage: String,
        /// The slot.
        index: u32,
    },
    /// `+CMT: [<alpha>],<length>` and its PDU line: a message routed to the terminal
    /// (`<mt>`=2, which Conductor does not select, but a modem may still send).
    Message {
        /// Phonebook name of the sender, if the modem adds it.
        alpha: Option<String>,
        /// TPDU length in octets.
        length: u32,
        /// The PDU (hex); `None` if the line after the header was not hex.
        pdu: Option<String>,
    },
    /// `+CDS: <length>` and its PDU line: a status report routed to the terminal (`<ds>`=1).
    StatusReport {
        /// TPDU length in octets.
        length: u32,
        /// The PDU (hex); `None` if the line after the header was not hex.
        pdu: Option<String>,
    },
    /// `+CBM: <length>` and its PDU line: a cell broadcast message.
    CellBroadcast {
        /// PDU length in octets.
        length: u32,
        /// The PDU (hex); `None` if the line after the header was not hex.
        pdu: Option<String>,
    },
    /// `RING` or `+CRING: <type>`: an incoming call.
    Ring,
    /// `+CLIP: <number>,<type>,…`: the caller's number.
    CallerId {
        /// The number, unquoted.
        number: String,
        /// Its type of address (145 international, 129 unknown).
        type_of_address: Option<u8>,
    },
    /// `+CREG`/`+CGREG`/`+CEREG` report (registration changed).
    Registration(Registration),
    /// `+CUSD: <m>[,<str>,<dcs>]`: a USSD answer or network-initiated USSD.
    Ussd {
        /// `<m>`: 0 no further action, 1 further action required, 2 terminated, …
        status: u8,
        /// `<str>`, unquoted, as the modem printed it (its encoding follows `<dcs>`/`+CSCS`).
        text: Option<String>,
        /// `<dcs>`, the data coding scheme.
        dcs: Option<u16>,
    },
    /// `+CPIN: <code>` outside an `AT+CPIN?`: the SIM changed state (ready after boot,
    /// removed, swapped).
    SimStatus(PinStatus),
    /// A modem start-up notice: the modem (re)booted or (re)enabled its radio, so the
    /// driver should rerun init (promise 6).
    Startup(Startup),
    /// Recognised vendor noise (`^RSSI: 17`, `^BOOT: …`, `+QIND: …`): safe to ignore, kept
    /// for logs and health.
    Vendor {
        /// The prefix from the table, e.g. `^RSSI`.
        name: String,
        /// The rest of the line after the prefix and colon.
        params: String,
    },
    /// `NO CARRIER` while no dial command runs: a call ended.
    NoCarrier,
    /// A line with a known URC prefix whose parameters do not parse. The gateway can still
    /// react to it (a malformed `+CMTI` is a reason to sweep).
    Malformed {
        /// The line as received.
        line: String,
        /// The PDU line that followed it, for two-line URCs.
        pdu: Option<String>,
        /// What was wrong.
        error: ParseError,
    },
    /// A line outside any command that is not in the table.
    Unknown(String),
}

/// Start-up notices, all meaning "the modem just (re)started".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Startup {
    /// `RDY` (Quectel): the UART is ready after boot.
    Ready,
    /// `Call Ready` (SIMCom).
    CallReady,
    /// `SMS Ready` (SIMCom): SMS commands work from now on.
    SmsReady,
    /// `PB DONE` (SIMCom): phonebook loaded.
    PhonebookDone,
    /// `+CFUN: 1` (SIMCom): full functionality reached.
    FullFunctionality,
    /// `^SYSSTART` (Cinterion).
    SysStart,
}

/// What the table says a line is, before its parameters are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrcKind {
    MessageStored,
    StatusReportStored,
    Message,
    StatusReport,
    CellBroadcast,
    Ring,
    CallerId,
    Registration(Domain),
    Ussd,
    SimStatus,
    Startup(Startup),
    Functionality,
    Vendor,
    NoCarrier,
}

impl UrcKind {
    /// Whether a PDU line follows the header (TS 27.005 §3.4.1, PDU mode).
    pub(crate) fn takes_pdu(self) -> bool {
        matches!(
            self,
            UrcKind::Message | UrcKind::StatusReport | UrcKind::CellBroadcast
        )
    }
}

/// How a table entry matches a line.
enum Pattern {
    /// The line starts with this prefix, followed by `:`, a space, a digit or the end
    /// (so `+CMT` does not match `+CMTI`, and `+PACSP0` matches `+PACSP`).
    Prefix(&'static str),
    /// The whole line, case-insensitively.
    Exact(&'static str),
}

const TABLE: &[(Pattern, UrcKind)] = &[
    (Pattern::Prefix("+CMTI"), UrcKind::MessageStored),
    (Pattern::Prefix("+CDSI"), UrcKind::StatusReportStored),
    (Pattern::Prefix("+CMT"), UrcKind::Message),
    (Pattern::Prefix("+CDS"), UrcKind::StatusReport),
    (Pattern::Prefix("+CBM"), UrcKind::CellBroadcast),
    (Pattern::Exact("RING"), UrcKind::Ring),
    (Pattern::Prefix("+CRING"), UrcKind::Ring),
    (Pattern::Prefix("+CLIP"), UrcKind::CallerId),
    (
        Pattern::Prefix("+CREG"),
        UrcKind::Registration(Domain::CircuitSwitched),
    ),
    (
        Pattern::Prefix("+CGREG"),
        UrcKind::Registration(Domain::Gprs),
    ),
    (
        Pattern::Prefix("+CEREG"),
        UrcKind::Registration(Domain::Eps),
    ),
    (Pattern::Prefix("+CUSD"), UrcKind::Ussd),
    (Pattern::Prefix("+CPIN"), UrcKind::SimStatus),
    (Pattern::Exact("RDY"), UrcKind::Startup(Startup::Ready)),
    (
        Pattern::Exact("Call Ready"),
        UrcKind::Startup(Startup::CallReady),
    ),
    (
        Pattern::Exact("SMS Ready"),
        UrcKind::Startup(Startup::SmsReady),
    ),
    (
        Pattern::Exact("PB DONE"),
        UrcKind::Startup(Startup::PhonebookDone),
    ),
    (
        Pattern::Prefix("^SYSSTART"),
        UrcKind::Startup(Startup::SysStart),
    ),
    (Pattern::Prefix("+CFUN"), UrcKind::Functionality),
    (Pattern::Exact("NO CARRIER"), UrcKind::NoCarrier),
    // Vendor noise.
    (Pattern::Prefix("^RSSI"), UrcKind::Vendor),
    (Pattern::Prefix("^BOOT"), UrcKind::Vendor),
    (Pattern::Prefix("^MODE"), UrcKind::Vendor),
    (Pattern::Prefix("^HCSQ"), UrcKind::Vendor),
    (Pattern::Prefix("^SIMST"), UrcKind::Vendor),
    (Pattern::Prefix("^SRVST"), UrcKind::Vendor),
    (Pattern::Prefix("^DSFLOWRPT"), UrcKind::Vendor),
    (Pattern::Prefix("^NDISSTAT"), UrcKind::Vendor),
    (Pattern::Prefix("^NWTIME"), UrcKind::Vendor),
    (Pattern::Prefix("^CEND"), UrcKind::Vendor),
    (Pattern::Prefix("^ORIG"), UrcKind::Vendor),
    (Pattern::Prefix("^CONF"), UrcKind::Vendor),
    (Pattern::Prefix("^CONN"), UrcKind::Vendor),
    (Pattern::Prefix("^STIN"), UrcKind::Vendor),
    (Pattern::Prefix("+QIND"), UrcKind::Vendor),
    (Pattern::Prefix("+QUSIM"), UrcKind::Vendor),
    (Pattern::Prefix("+QNITZ"), UrcKind::Vendor),
    (Pattern::Prefix("+PACSP"), UrcKind::Vendor),
    (Pattern::Prefix("+CSMINS"), UrcKind::Vendor),
    (Pattern::Prefix("*PSUTTZ"), UrcKind::Vendor),
    (Pattern::Prefix("+CTZV"), UrcKind::Vendor),
    (Pattern::Prefix("+CTZE"), UrcKind::Vendor),
    (Pattern::Prefix("+CIEV"), UrcKind::Vendor),
    (Pattern::Prefix("+CGEV"), UrcKind::Vendor),
    (Pattern::Prefix("+NITZ"), UrcKind::Vendor),
];

/// Looks a line up in the URC table.
pub(crate) fn classify(line: &str) -> Option<(UrcKind, &'static str)> {
    TABLE.iter().find_map(|(pattern, kind)| match pattern {
        Pattern::Prefix(prefix) => {
            let head = line.get(..prefix.len())?;
            let next = line[prefix.len()..].bytes().next();
            let boundary = matches!(next, None | Some(b':' | b' ' | b'0'..=b'9'));
            (head.eq_ignore_ascii_case(prefix) && boundary).then_some((*kind, *prefix))
        }
        Pattern::Exact(word) => line.eq_ignore_ascii_case(word).then_some((*kind, *word)),
    })
}

/// Builds the typed URC from a classified line (and its PDU line for two-line URCs).
pub(crate) fn build(kind: UrcKind, name: &'static str, line: &str, pdu: Option<String>) -> Urc {
    let rest = line
        .get(name.len()..)
        .unwrap_or_default()
        .trim_start()
        .trim_start_matches(':')
        .trim();
    let items = params::split(rest);
    let parsed = match kind {
        UrcKind::MessageStored | UrcKind::StatusReportStored => {
            stored(&items, line).map(|(storage, index)| match kind {
                UrcKind::MessageStored => Urc::MessageStored { storage, index },
                _ => Urc::StatusReportStored { storage, index },
            })
        }
        UrcKind::Message => {
            // `+CMT: [<alpha>],<length>`: the length is the last parameter.
            let alpha = match items.len() {
                0 | 1 => None,
                _ => params::optional_string(items.first()),
            };
            params::number(items.last(), line, "<length>").map(|length| Urc::Message {
                alpha,
                length,
                pdu: pdu.clone(),
            })
        }
        UrcKind::StatusReport => {
            params::number(items.first(), line, "<length>").map(|length| Urc::StatusReport {
                length,
                pdu: pdu.clone(),
            })
        }
        UrcKind::CellBroadcast => {
            params::number(items.first(), line, "<length>").map(|length| Urc::CellBroadcast {
                length,
                pdu: pdu.clone(),
            })
        }
        UrcKind::Ring => Ok(Urc::Ring),
        UrcKind::CallerId => match items.first().map(|s| params::unquote(s)) {
            Some(number) => {
                params::optional_number(items.get(1), line, "<type>").map(|type_of_address| {
                    Urc::CallerId {
                        number: number.to_owned(),
                        type_of_address,
                    }
                })
            }
            None => Err(ParseError::MissingField {
                line: line.to_owned(),
                field: "<number>",
            }),
        },
        UrcKind::Registration(domain) => {
            creg::parse_unsolicited(domain, line).map(Urc::Registration)
        }
        UrcKind::Ussd => ussd(&items, line),
        UrcKind::SimStatus if rest.is_empty() => Err(ParseError::MissingField {
            line: line.to_owned(),
            field: "<code>",
        }),
        UrcKind::SimStatus => Ok(Urc::SimStatus(PinStatus::from_code(rest))),
        UrcKind::Startup(startup) => Ok(Urc::Startup(startup)),
        UrcKind::Functionality if rest == "1" => Ok(Urc::Startup(Startup::FullFunctionality)),
        UrcKind::Functionality | UrcKind::Vendor => Ok(Urc::Vendor {
            name: name.to_owned(),
            params: rest.to_owned(),
        }),
        UrcKind::NoCarrier => Ok(Urc::NoCarrier),
    };
    parsed.unwrap_or_else(|error| Urc::Malformed {
        line: line.to_owned(),
        pdu,
        error,
    })
}

fn stored(items: &[&str], line: &str) -> Result<(String, u32), ParseError> {
    let storage = params::unquote(items.first().copied().unwrap_or_default()).to_owned();
    let index = params::number(items.get(1), line, "<index>")?;
    Ok((storage, index))
}

fn ussd(items: &[&str], line: &str) -> Result<Urc, ParseError> {
    Ok(Urc::Ussd {
        status: params::number(items.first(), line, "<m>")?,
        text: items.get(1).map(|s| params::unquote(s).to_owned()),
        dcs: params::optional_number(items.get(2), line, "<dcs>")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::creg::RegistrationStatus;

    fn urc(line: &str) -> Option<Urc> {
        classify(line).map(|(kind, name)| build(kind, name, line, None))
    }

    #[test]
    fn new_message_indications_parse() {
        assert_eq!(
            urc("+CMTI: \"SM\",3"),
            Some(Urc::MessageStored {
                storage: "SM".into(),
                index: 3
            })
        );
        assert_eq!(
            urc("+CDSI: \"SR\",12"),
            Some(Urc::StatusReportStored {
                storage: "SR".into(),
                index: 12
            })
        );
    }

    #[test]
    fn two_line_headers_are_recognised_and_take_a_pdu() {
        let (kind, name) = classify("+CMT: ,24").expect("in the table");
        assert!(kind.takes_pdu());
        assert_eq!(
            build(kind, name, "+CMT: ,24", Some("00".into())),
            Urc::Message {
                alpha: None,
                length: 24,
                pdu: Some("00".into())
            }
        );
        assert_eq!(
            urc("+CMT: \"Mum\",30"),
            Some(Urc::Message {
                alpha: Some("Mum".into()),
                length: 30,
                pdu: None
            })
        );
        assert_eq!(
            urc("+CDS: 25"),
            Some(Urc::StatusReport {
                length: 25,
                pdu: None
            })
        );
        assert!(classify("+CMTI: \"SM\",1").is_some_and(|(k, _)| !k.takes_pdu()));
    }

    #[test]
    fn calls_registration_ussd_and_sim_reports_parse() {
        assert_eq!(urc("RING"), Some(Urc::Ring));
        assert_eq!(urc("+CRING: VOICE"), Some(Urc::Ring));
        assert_eq!(
            urc("+CLIP: \"+441234567890\",145,\"\",,\"\",0"),
            Some(Urc::CallerId {
                number: "+441234567890".into(),
                type_of_address: Some(145)
            })
        );
        assert!(matches!(
            urc("+CEREG: 5"),
            Some(Urc::Registration(Registration {
                domain: Domain::Eps,
                status: RegistrationStatus::Roaming,
                ..
            }))
        ));
        assert_eq!(
            urc("+CUSD: 0,\"Balance: 1,50\",15"),
            Some(Urc::Ussd {
                status: 0,
                text: Some("Balance: 1,50".into()),
                dcs: Some(15)
            })
        );
        assert_eq!(urc("+CPIN: READY"), Some(Urc::SimStatus(PinStatus::Ready)));
        assert_eq!(urc("NO CARRIER"), Some(Urc::NoCarrier));
    }

    #[test]
    fn startup_notices_and_vendor_noise_are_recognised() {
        assert_eq!(urc("RDY"), Some(Urc::Startup(Startup::Ready)));
        assert_eq!(urc("Call Ready"), Some(Urc::Startup(Startup::CallReady)));
        assert_eq!(urc("SMS Ready"), Some(Urc::Startup(Startup::SmsReady)));
        assert_eq!(urc("PB DONE"), Some(Urc::Startup(Startup::PhonebookDone)));
        assert_eq!(
            urc("+CFUN: 1"),
            Some(Urc::Startup(Startup::FullFunctionality))
        );
        assert_eq!(
            urc("+CFUN: 0"),
            Some(Urc::Vendor {
                name: "+CFUN".into(),
                params: "0".into()
            })
        );
        assert_eq!(
            urc("^RSSI: 17"),
            Some(Urc::Vendor {
                name: "^RSSI".into(),
                params: "17".into()
            })
        );
        assert_eq!(
            urc("+PACSP0"),
            Some(Urc::Vendor {
                name: "+PACSP".into(),
                params: "0".into()
            })
        );
        for line in [
            "^BOOT:1,0,0,0,0",
            "^MODE: 5,4",
            "^HCSQ: \"LTE\",50,40,120,20",
            "^SIMST: 1",
            "+QIND: SMS DONE",
        ] {
            assert!(matches!(urc(line), Some(Urc::Vendor { .. })), "{line}");
        }
    }

    #[test]
    fn prefixes_need_a_boundary() {
        assert_eq!(classify("+CMTX: 1"), None);
        assert_eq!(classify("RINGING"), None);
        assert_eq!(classify("+CSQ: 1,2"), None);
        assert_eq!(classify("OK"), None);
    }

    #[test]
    fn malformed_parameters_keep_the_line_and_say_why() {
        assert!(matches!(
            urc("+CMTI: \"SM\",x"),
            Some(Urc::Malformed {
                error: ParseError::InvalidField {
                    field: "<index>",
                    ..
                },
                ..
            })
        ));
        assert!(matches!(urc("+CMT: ,"), Some(Urc::Malformed { .. })));
        assert!(matches!(urc("+CPIN:"), Some(Urc::Malformed { .. })));
    }
}
