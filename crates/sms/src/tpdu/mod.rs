//! Transfer-layer PDUs (TS 23.040 §9.2): SMS-DELIVER, SMS-SUBMIT, SMS-STATUS-REPORT.
//!
//! TP-MTI (bits 1-0 of the first octet, §9.2.3.1) alone does not name a TPDU: 00 is
//! SMS-DELIVER from SC to MS but SMS-DELIVER-REPORT from MS to SC, 01 SMS-SUBMIT-REPORT or
//! SMS-SUBMIT, 10 SMS-STATUS-REPORT or SMS-COMMAND. [`Direction`] says which reading applies;
//! a PDU that a modem lists from its storage ([`Direction::Stored`], the default) is one the
//! phone received (DELIVER, STATUS-REPORT) or keeps for sending (SUBMIT). 11 is reserved.

pub mod deliver;
pub mod status_report;
pub mod submit;

pub use deliver::Deliver;
pub use status_report::StatusReport;
pub use submit::Submit;

use crate::cursor::Reader;
use crate::dcs::DataCodingScheme;
use crate::error::{DecodeError, EncodeError, Field};
use crate::timestamp::Timestamp;
use crate::udh::Concat;
use crate::user_data::UserData;

pub(crate) const MTI_MASK: u8 = 0x03;
pub(crate) const MTI_DELIVER: u8 = 0x00;
pub(crate) const MTI_SUBMIT: u8 = 0x01;
pub(crate) const MTI_STATUS_REPORT: u8 = 0x02;
/// DELIVER, STATUS-REPORT: TP-More-Messages-to-Send (0 = more waiting).
pub(crate) const TP_MMS: u8 = 0x04;
/// SUBMIT: TP-Reject-Duplicates.
pub(crate) const TP_RD: u8 = 0x04;
/// DELIVER, STATUS-REPORT: TP-Loop-Prevention.
pub(crate) const TP_LP: u8 = 0x08;
/// SUBMIT: TP-Validity-Period-Format, two bits.
pub(crate) const TP_VPF_MASK: u8 = 0x18;
/// DELIVER: TP-Status-Report-Indication.
pub(crate) const TP_SRI: u8 = 0x20;
/// SUBMIT: TP-Status-Report-Request.
pub(crate) const TP_SRR: u8 = 0x20;
/// STATUS-REPORT: TP-Status-Report-Qualifier.
pub(crate) const TP_SRQ: u8 = 0x20;
/// TP-User-Data-Header-Indicator.
pub(crate) const TP_UDHI: u8 = 0x40;
/// DELIVER, SUBMIT: TP-Reply-Path.
pub(crate) const TP_RP: u8 = 0x80;

/// Which way the TPDU travels, which decides what TP-MTI means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Listed from a modem's storage (`AT+CMGL`/`AT+CMGR`) or reported by `+CDS`: MTI 00 is
    /// SMS-DELIVER, 01 SMS-SUBMIT, 10 SMS-STATUS-REPORT.
    #[default]
    Stored,
    /// Service centre to phone: 00 SMS-DELIVER, 01 SMS-SUBMIT-REPORT (not supported),
    /// 10 SMS-STATUS-REPORT.
    ScToMs,
    /// Phone to service centre, e.g. what a virtual modem receives with `AT+CMGS`: 00
    /// SMS-DELIVER-REPORT (not supported), 01 SMS-SUBMIT, 10 SMS-COMMAND (not supported).
    MsToSc,
}

/// One of the TPDUs the codec handles.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tpdu {
    /// SMS-DELIVER.
    Deliver(Deliver),
    /// SMS-SUBMIT.
    Submit(Submit),
    /// SMS-STATUS-REPORT.
    StatusReport(StatusReport),
}

impl Tpdu {
    /// Decodes a TPDU on its own (no SMSC address in front); offsets count from its first
    /// octet.
    pub fn decode(bytes: &[u8], direction: Direction) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        Self::read(&mut Reader::new(bytes), direction)
    }

    pub(crate) fn read(r: &mut Reader<'_>, direction: Direction) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let first = r.u8(Field::FirstOctet)?;
        let unsupported = |name| Err(DecodeError::UnsupportedMessageType { name, offset });
        match (first & MTI_MASK, direction) {
            (0b11, _) => Err(DecodeError::ReservedMessageType { offset }),
            (MTI_DELIVER, Direction::MsToSc) => unsupported("SMS-DELIVER-REPORT"),
            (MTI_SUBMIT, Direction::ScToMs) => unsupported("SMS-SUBMIT-REPORT"),
            (MTI_STATUS_REPORT, Direction::MsToSc) => unsupported("SMS-COMMAND"),
            (MTI_DELIVER, _) => Deliver::read(first, r).map(Tpdu::Deliver),
            (MTI_SUBMIT, _) => Submit::read(first, r).map(Tpdu::Submit),
            _ => StatusReport::read(first, r).map(Tpdu::StatusReport),
        }
    }

    /// The TPDU's octets (the length `AT+CMGS=<length>` wants is their count).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self {
            Tpdu::Deliver(d) => d.encode(),
            Tpdu::Submit(s) => s.encode(),
            Tpdu::StatusReport(s) => s.encode(),
        }
    }

    /// `deliver`, `submit` or `status_report`, the spelling fixtures and the CLI's JSON use.
    pub fn kind(&self) -> &'static str {
        match self {
            Tpdu::Deliver(_) => "deliver",
            Tpdu::Submit(_) => "submit",
            Tpdu::StatusReport(_) => "status_report",
        }
    }

    /// The user data, if the TPDU has any.
    pub fn user_data(&self) -> Option<&UserData> {
        match self {
            Tpdu::Deliver(d) => Some(&d.user_data),
            Tpdu::Submit(s) => Some(&s.user_data),
            Tpdu::StatusReport(s) => s.user_data.as_ref(),
        }
    }

    /// TP-DCS, if present (a status report without one but with user data reads as 0x00).
    pub fn dcs(&self) -> Option<DataCodingScheme> {
        match self {
            Tpdu::Deliver(d) => Some(d.dcs),
            Tpdu::Submit(s) => Some(s.dcs),
            Tpdu::StatusReport(s) => s
                .dcs
                .or(s.user_data.as_ref().map(|_| DataCodingScheme::GSM7)),
        }
    }

    /// The text of the user data, for GSM 7-bit and UCS-2.
    pub fn text(&self) -> Option<String> {
        self.user_data().and_then(UserData::text)
    }

    /// The concatenation element, if any (not checked for sense; see [`Concat::is_valid`]).
    pub fn concat(&self) -> Option<Concat> {
        self.user_data()
            .and_then(|u| u.header.as_ref())
            .and_then(|h| h.concat())
    }
}

/// Reads a 7-octet time stamp, naming the field and its offset when it is invalid.
pub(crate) fn read_timestamp(r: &mut Reader<'_>, field: Field) -> Result<Timestamp, DecodeError> {
    let offset = r.offset();
    let octets = r.array::<7>(field)?;
    Timestamp::from_octets(octets).map_err(|reason| DecodeError::InvalidTimestamp {
        field,
        reason,
        offset,
    })
}
