//! SMS-SUBMIT (TS 23.040 §9.2.2.2): a message from the phone to the service centre.
//!
//! Layout: first octet (MTI 01, RD, VPF, SRR, UDHI, RP), TP-MR, TP-DA, TP-PID, TP-DCS,
//! TP-VP (0, 1 or 7 octets by VPF), TP-UDL, TP-UD. Encoded by the gateway for `AT+CMGS`;
//! decoded by the virtual modem, and when a modem lists messages stored for sending.

use crate::address::{Address, read_tp_address, write_tp_address};
use crate::cursor::Reader;
use crate::dcs::DataCodingScheme;
use crate::error::{DecodeError, EncodeError, Field};
use crate::tpdu::{MTI_SUBMIT, TP_RD, TP_RP, TP_SRR, TP_UDHI, TP_VPF_MASK, read_timestamp};
use crate::user_data::UserData;
use crate::validity::ValidityPeriod;

/// An SMS-SUBMIT TPDU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Submit {
    /// TP-RD: the SC should reject a duplicate (same TP-MR and TP-DA) still in store.
    pub reject_duplicates: bool,
    /// TP-SRR: a status report is requested.
    pub status_report_request: bool,
    /// TP-RP: reply path requested.
    pub reply_path: bool,
    /// TP-MR; 0 lets the modem pick the reference (it reports it in `+CMGS: <mr>`).
    pub message_reference: u8,
    /// TP-DA: who the message goes to.
    pub destination: Address,
    /// TP-PID, kept raw.
    pub protocol_id: u8,
    /// TP-DCS.
    pub dcs: DataCodingScheme,
    /// TP-VP in the form TP-VPF names; `None` when VPF is 00.
    pub validity: Option<ValidityPeriod>,
    /// TP-UDL/TP-UD; TP-UDHI is set exactly when it has a header.
    pub user_data: UserData,
}

impl Submit {
    /// The first octet.
    pub fn first_octet(&self) -> u8 {
        let mut o = MTI_SUBMIT;
        if self.reject_duplicates {
            o |= TP_RD;
        }
        if let Some(vp) = &self.validity {
            o |= vp.format_bits();
        }
        if self.status_report_request {
            o |= TP_SRR;
        }
        if self.user_data.header.is_some() {
            o |= TP_UDHI;
        }
        if self.reply_path {
            o |= TP_RP;
        }
        o
    }

    /// Reads the fields after the first octet.
    pub(crate) fn read(first: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let message_reference = r.u8(Field::MessageReference)?;
        let destination = read_tp_address(r, Field::DestinationAddress)?;
        let protocol_id = r.u8(Field::ProtocolIdentifier)?;
        let dcs = DataCodingScheme(r.u8(Field::DataCodingScheme)?);
        let validity = match (first & TP_VPF_MASK) >> 3 {
            0b00 => None,
            0b10 => Some(ValidityPeriod::Relative(r.u8(Field::ValidityPeriod)?)),
            0b01 => Some(ValidityPeriod::Enhanced(
                r.array::<7>(Field::ValidityPeriod)?,
            )),
            _ => Some(ValidityPeriod::Absolute(read_timestamp(
                r,
                Field::ValidityPeriod,
            )?)),
        };
        let user_data = UserData::read(r, dcs, first & TP_UDHI != 0)?;
        Ok(Self {
            reject_duplicates: first & TP_RD != 0,
            status_report_request: first & TP_SRR != 0,
            reply_path: first & TP_RP != 0,
            message_reference,
            destination,
            protocol_id,
            dcs,
            validity,
            user_data,
        })
    }

    /// The TPDU's octets.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![self.first_octet(), self.message_reference];
        write_tp_address(&self.destination, &mut out)?;
        out.push(self.protocol_id);
        out.push(self.dcs.octet());
        match &self.validity {
            None => {}
            Some(ValidityPeriod::Relative(vp)) => out.push(*vp),
            Some(ValidityPeriod::Enhanced(octets)) => out.extend_from_slice(octets),
            Some(ValidityPeriod::Absolute(t)) => out.extend_from_slice(&t.to_octets()),
        }
        self.user_data.write(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{DecodedPdu, decode_pdu_hex};
    use crate::tpdu::Tpdu;

    fn submit(hex: &str) -> Submit {
        match decode_pdu_hex(hex) {
            Ok(DecodedPdu {
                tpdu: Tpdu::Submit(s),
                ..
            }) => s,
            other => panic!("not a submit: {other:?}"),
        }
    }

    #[test]
    fn an_absolute_validity_period_is_a_time_stamp() {
        // python-gsmmodem test_pdu.py: VPF 11, valid until 2013-07-10 13:39 +02:00.
        let s = submit(
            "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301",
        );
        let Some(ValidityPeriod::Absolute(t)) = s.validity else {
            panic!("not absolute: {:?}", s.validity);
        };
        assert_eq!(t.to_rfc3339(), "2013-07-10T13:39:00+02:00");
        assert_eq!(
            s.user_data.text().as_deref(),
            Some("Timestamp validity test")
        );
    }

    #[test]
    fn an_enhanced_validity_period_is_kept_raw_and_round_trips() {
        let hex = "0009000B916407281553F800004200000000000002E834";
        let s = submit(hex);
        assert_eq!(
            s.validity,
            Some(ValidityPeriod::Enhanced([0x42, 0, 0, 0, 0, 0, 0]))
        );
        let mut again = vec![0x00];
        again.extend(s.encode().expect("encodes"));
        assert_eq!(crate::hex::encode_hex(&again), hex);
    }

    #[test]
    fn first_octet_flags_decode_and_encode() {
        // RP | UDHI | SRR | VPF relative | RD | MTI 01 = 0xF5.
        let s = submit("00F5070B916407281553F80000AA08050003010201E834");
        assert!(s.reject_duplicates && s.status_report_request && s.reply_path);
        assert_eq!(s.message_reference, 7);
        assert_eq!(s.validity, Some(ValidityPeriod::Relative(0xAA)));
        assert_eq!(s.first_octet(), 0xF5);
        assert_eq!(s.user_data.text().as_deref(), Some("t"));
    }

    #[test]
    fn a_validity_period_cut_short_names_the_field() {
        let bytes = crate::hex::decode_hex("0009000B916407281553F8000042").expect("hex");
        assert!(matches!(
            crate::pdu::decode_pdu(&bytes),
            Err(DecodeError::Truncated {
                field: Field::ValidityPeriod,
                offset: 13,
                ..
            })
        ));
    }
}
