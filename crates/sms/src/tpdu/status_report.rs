//! SMS-STATUS-REPORT (TS 23.040 §9.2.2.3): what became of a message sent with TP-SRR.
//!
//! Layout: first octet (MTI 10, MMS, LP, SRQ, UDHI), TP-MR, TP-RA, TP-SCTS, TP-DT, TP-ST, and
//! optionally TP-PI followed by the TP-PID, TP-DCS and TP-UDL/TP-UD it announces (§9.2.3.27).
//!
//! TP-PI handling follows §9.2.3.27 and what real service centres send:
//! - the PDU may end after TP-ST: no optional parameters;
//! - further TP-PI octets (extension bit 7) are skipped, their bits are not defined;
//! - a TP-PI with reserved bits 3-6 set is not trusted and nothing after it is read (as
//!   Android does; some SCs fill the octet with garbage);
//! - TP-UDL announced without TP-DCS means TP-DCS 0x00 (GSM 7-bit), as the clause says;
//! - a PID or DCS announced but missing because the PDU ends is read as absent rather than
//!   lose the report; a TP-UDL that promises more than the PDU holds is still an error.

use crate::address::{Address, read_tp_address, write_tp_address};
use crate::cursor::Reader;
use crate::dcs::DataCodingScheme;
use crate::error::{DecodeError, EncodeError, Field};
use crate::status::Status;
use crate::timestamp::Timestamp;
use crate::tpdu::{MTI_STATUS_REPORT, TP_LP, TP_MMS, TP_SRQ, TP_UDHI, read_timestamp};
use crate::user_data::UserData;

const PI_PID: u8 = 0x01;
const PI_DCS: u8 = 0x02;
const PI_UDL: u8 = 0x04;
const PI_RESERVED: u8 = 0x78;
const PI_EXTENSION: u8 = 0x80;

/// An SMS-STATUS-REPORT TPDU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatusReport {
    /// TP-MMS inverted: `true` when more messages are waiting (the bit is 0 then).
    pub more_messages_waiting: bool,
    /// TP-LP.
    pub loop_prevention: bool,
    /// TP-SRQ: the report answers an SMS-COMMAND (true) or an SMS-SUBMIT (false).
    pub result_of_command: bool,
    /// TP-MR of the SUBMIT this reports on: with the recipient, how the gateway finds the row.
    pub message_reference: u8,
    /// TP-RA: the recipient of the original message.
    pub recipient: Address,
    /// TP-SCTS: when the SC received the original SUBMIT.
    pub service_centre_timestamp: Timestamp,
    /// TP-DT: when the status below came about (delivery, expiry, …).
    pub discharge_time: Timestamp,
    /// TP-ST.
    pub status: Status,
    /// Optional TP-PID.
    pub protocol_id: Option<u8>,
    /// Optional TP-DCS (absent with user data present means 0x00).
    pub dcs: Option<DataCodingScheme>,
    /// Optional TP-UDL/TP-UD.
    pub user_data: Option<UserData>,
}

impl StatusReport {
    /// A report with no optional parameters.
    pub fn new(
        message_reference: u8,
        recipient: Address,
        service_centre_timestamp: Timestamp,
        discharge_time: Timestamp,
        status: Status,
    ) -> Self {
        Self {
            more_messages_waiting: false,
            loop_prevention: false,
            result_of_command: false,
            message_reference,
            recipient,
            service_centre_timestamp,
            discharge_time,
            status,
            protocol_id: None,
            dcs: None,
            user_data: None,
        }
    }

    /// The first octet.
    pub fn first_octet(&self) -> u8 {
        let mut o = MTI_STATUS_REPORT;
        if !self.more_messages_waiting {
            o |= TP_MMS;
        }
        if self.loop_prevention {
            o |= TP_LP;
        }
        if self.result_of_command {
            o |= TP_SRQ;
        }
        if self.user_data.as_ref().is_some_and(|u| u.header.is_some()) {
            o |= TP_UDHI;
        }
        o
    }

    /// Reads the fields after the first octet.
    pub(crate) fn read(first: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let message_reference = r.u8(Field::MessageReference)?;
        let recipient = read_tp_address(r, Field::RecipientAddress)?;
        let service_centre_timestamp = read_timestamp(r, Field::ServiceCentreTimestamp)?;
        let discharge_time = read_timestamp(r, Field::DischargeTime)?;
        let status = Status(r.u8(Field::Status)?);
        let mut report = Self {
            more_messages_waiting: first & TP_MMS == 0,
            loop_prevention: first & TP_LP != 0,
            result_of_command: first & TP_SRQ != 0,
            message_reference,
            recipient,
            service_centre_timestamp,
            discharge_time,
            status,
            protocol_id: None,
            dcs: None,
            user_data: None,
        };
        if r.is_empty() {
            return Ok(report);
        }
        let pi = r.u8(Field::ParameterIndicator)?;
        let mut more = pi & PI_EXTENSION != 0;
        while more && !r.is_empty() {
            more = r.u8(Field::ParameterIndicator)? & PI_EXTENSION != 0;
        }
        if pi & PI_RESERVED != 0 {
            return Ok(report);
        }
        if pi & PI_PID != 0 {
            if r.is_empty() {
                return Ok(report);
            }
            report.protocol_id = Some(r.u8(Field::ProtocolIdentifier)?);
        }
        if pi & PI_DCS != 0 {
            if r.is_empty() {
                return Ok(report);
            }
            report.dcs = Some(DataCodingScheme(r.u8(Field::DataCodingScheme)?));
        }
        if pi & PI_UDL != 0 && !r.is_empty() {
            let dcs = report.dcs.unwrap_or(DataCodingScheme::GSM7);
            report.user_data = Some(UserData::read(r, dcs, first & TP_UDHI != 0)?);
        }
        Ok(report)
    }

    /// The TPDU's octets; TP-PI is written only when an optional parameter is present.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![self.first_octet(), self.message_reference];
        write_tp_address(&self.recipient, &mut out)?;
        out.extend_from_slice(&self.service_centre_timestamp.to_octets());
        out.extend_from_slice(&self.discharge_time.to_octets());
        out.push(self.status.0);
        let mut pi = 0;
        if self.protocol_id.is_some() {
            pi |= PI_PID;
        }
        if self.dcs.is_some() {
            pi |= PI_DCS;
        }
        if self.user_data.is_some() {
            pi |= PI_UDL;
        }
        if pi != 0 {
            out.push(pi);
            if let Some(pid) = self.protocol_id {
                out.push(pid);
            }
            if let Some(dcs) = self.dcs {
                out.push(dcs.octet());
            }
            if let Some(ud) = &self.user_data {
                ud.write(&mut out)?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LengthUnit;
    use crate::pdu::{DecodedPdu, decode_pdu_hex};
    use crate::status::StatusCategory;
    use crate::tpdu::Tpdu;

    /// "sr-failed-60" from the fixtures: no SMSC, MR 42, status 0x60, zone +05:45.
    const BASE: &str = "00062A0D91945111325476F8322113329595324210100000103260";

    fn report(hex: &str) -> Result<StatusReport, DecodeError> {
        match decode_pdu_hex(hex)? {
            DecodedPdu {
                tpdu: Tpdu::StatusReport(r),
                ..
            } => Ok(r),
            other => panic!("not a status report: {other:?}"),
        }
    }

    #[test]
    fn a_real_cds_report_decodes_every_field() {
        // python-gsmmodem issue #44: +CDS with SMSC, delivered.
        let r = report("079119890400202306400C91197909913764511090718384225110907183252200")
            .expect("decodes");
        assert_eq!(r.message_reference, 64);
        assert_eq!(r.recipient.to_string(), "+919790197346");
        assert_eq!(
            r.service_centre_timestamp.to_rfc3339(),
            "2015-01-09T17:38:48+05:30"
        );
        assert_eq!(r.discharge_time.to_rfc3339(), "2015-01-09T17:38:52+05:30");
        assert_eq!(r.status, Status::RECEIVED);
        assert_eq!(r.status.category(), StatusCategory::Delivered);
        assert!(r.status.is_final());
        assert!(!r.more_messages_waiting);
        assert!(!r.result_of_command);
        assert_eq!(
            (r.protocol_id, r.dcs, r.user_data.as_ref()),
            (None, None, None)
        );
    }

    #[test]
    fn optional_parameters_follow_the_parameter_indicator() {
        let r = report(&format!("{BASE}0703000401020304")).expect("decodes");
        assert_eq!(r.protocol_id, Some(3));
        assert_eq!(r.dcs, Some(DataCodingScheme::GSM7));
        assert_eq!(
            r.user_data.map(|u| u.payload),
            Some(crate::user_data::Payload::Septets(vec![1, 4, 12, 32]))
        );
    }

    #[test]
    fn user_data_without_dcs_is_gsm7() {
        let r = report(&format!("{BASE}0402E834")).expect("decodes");
        assert_eq!(r.dcs, None);
        assert_eq!(r.user_data.and_then(|u| u.text()).as_deref(), Some("hi"));
    }

    #[test]
    fn a_parameter_indicator_with_reserved_bits_is_not_trusted() {
        let r = report(&format!("{BASE}7FFFFF")).expect("decodes");
        assert_eq!((r.protocol_id, r.dcs, r.user_data), (None, None, None));
    }

    #[test]
    fn extension_octets_of_the_parameter_indicator_are_skipped() {
        let r = report(&format!("{BASE}810003")).expect("decodes");
        assert_eq!(r.protocol_id, Some(3));
    }

    #[test]
    fn announced_parameters_cut_off_by_the_end_are_absent() {
        let r = report(&format!("{BASE}07")).expect("decodes");
        assert_eq!((r.protocol_id, r.dcs, r.user_data), (None, None, None));
        let r = report(&format!("{BASE}0703")).expect("decodes");
        assert_eq!((r.protocol_id, r.dcs), (Some(3), None));
    }

    #[test]
    fn user_data_longer_than_the_pdu_is_still_an_error() {
        assert_eq!(
            report(&format!("{BASE}04100102")),
            Err(DecodeError::UserDataTruncated {
                length: 16,
                unit: LengthUnit::Septets,
                needed: 14,
                remaining: 2,
                offset: 29
            })
        );
    }

    #[test]
    fn a_report_with_optional_user_data_round_trips() {
        let base = report(BASE).expect("decodes");
        let mut r = StatusReport::new(
            7,
            crate::address::Address::international("4915112345678"),
            base.service_centre_timestamp,
            base.discharge_time,
            Status(0x46),
        );
        r.protocol_id = Some(0);
        r.user_data = Some(UserData::ucs2("ok"));
        r.dcs = Some(DataCodingScheme::UCS2);
        let bytes = r.encode().expect("encodes");
        assert_eq!(bytes.first(), Some(&0x06));
        let back = Tpdu::decode(&bytes, crate::tpdu::Direction::ScToMs);
        assert_eq!(back, Ok(Tpdu::StatusReport(r)));
    }

    #[test]
    fn a_report_without_optional_parameters_has_no_parameter_indicator() {
        let r = report(BASE).expect("decodes");
        assert_eq!(r.encode().map(|b| b.len()), Ok(26));
    }
}
