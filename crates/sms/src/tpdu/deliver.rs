//! SMS-DELIVER (TS 23.040 §9.2.2.1): a message from the service centre to the phone.
//!
//! Layout: first octet (MTI 00, MMS, LP, SRI, UDHI, RP), TP-OA, TP-PID, TP-DCS, TP-SCTS,
//! TP-UDL, TP-UD. Decoded by the gateway for every inbound message; encoded by the virtual
//! network when it hands a message to a virtual modem.

use crate::address::{Address, read_tp_address, write_tp_address};
use crate::cursor::Reader;
use crate::dcs::DataCodingScheme;
use crate::error::{DecodeError, EncodeError, Field};
use crate::timestamp::Timestamp;
use crate::tpdu::{MTI_DELIVER, TP_LP, TP_MMS, TP_RP, TP_SRI, TP_UDHI, read_timestamp};
use crate::user_data::UserData;

/// An SMS-DELIVER TPDU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Deliver {
    /// TP-MMS inverted: `true` when the SC has more messages waiting for this phone (the bit
    /// is 0 then). The default, `false`, sets the bit, as nearly every DELIVER does.
    pub more_messages_waiting: bool,
    /// TP-LP: the message was forwarded or is a spawned message (loop prevention).
    pub loop_prevention: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-RP: a reply path is set; the reply may go through the same SC.
    pub reply_path: bool,
    /// TP-OA: who sent it.
    pub originator: Address,
    /// TP-PID, kept raw (0x00 for plain SMS; 0x40 "short message type 0", 0x41-0x47 replace).
    pub protocol_id: u8,
    /// TP-DCS.
    pub dcs: DataCodingScheme,
    /// TP-SCTS: when the SC received the message.
    pub timestamp: Timestamp,
    /// TP-UDL/TP-UD; TP-UDHI is set exactly when it has a header.
    pub user_data: UserData,
}

impl Deliver {
    /// A DELIVER carrying what a SUBMIT carried, as a network hands it on: same PID, DCS
    /// and user data; `originator` and the SC's `timestamp` added.
    pub fn from_submit(
        submit: &crate::tpdu::Submit,
        originator: Address,
        timestamp: Timestamp,
    ) -> Self {
        Self {
            more_messages_waiting: false,
            loop_prevention: false,
            status_report_indication: submit.status_report_request,
            reply_path: submit.reply_path,
            originator,
            protocol_id: submit.protocol_id,
            dcs: submit.dcs,
            timestamp,
            user_data: submit.user_data.clone(),
        }
    }

    /// The first octet.
    pub fn first_octet(&self) -> u8 {
        let mut o = MTI_DELIVER;
        if !self.more_messages_waiting {
            o |= TP_MMS;
        }
        if self.loop_prevention {
            o |= TP_LP;
        }
        if self.status_report_indication {
            o |= TP_SRI;
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
        let originator = read_tp_address(r, Field::OriginatingAddress)?;
        let protocol_id = r.u8(Field::ProtocolIdentifier)?;
        let dcs = DataCodingScheme(r.u8(Field::DataCodingScheme)?);
        let timestamp = read_timestamp(r, Field::ServiceCentreTimestamp)?;
        let user_data = UserData::read(r, dcs, first & TP_UDHI != 0)?;
        Ok(Self {
            more_messages_waiting: first & TP_MMS == 0,
            loop_prevention: first & TP_LP != 0,
            status_report_indication: first & TP_SRI != 0,
            reply_path: first & TP_RP != 0,
            originator,
            protocol_id,
            dcs,
            timestamp,
            user_data,
        })
    }

    /// The TPDU's octets.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![self.first_octet()];
        write_tp_address(&self.originator, &mut out)?;
        out.push(self.protocol_id);
        out.push(self.dcs.octet());
        out.extend_from_slice(&self.timestamp.to_octets());
        self.user_data.write(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcs::Encoding;
    use crate::pdu::{DecodedPdu, decode_pdu_hex};
    use crate::tpdu::{Direction, Tpdu};

    fn deliver(hex: &str) -> Deliver {
        match decode_pdu_hex(hex) {
            Ok(DecodedPdu {
                tpdu: Tpdu::Deliver(d),
                ..
            }) => d,
            other => panic!("not a deliver: {other:?}"),
        }
    }

    #[test]
    fn the_classic_hellohello_deliver() {
        let d = deliver("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37");
        assert_eq!(d.user_data.text().as_deref(), Some("hellohello"));
        assert_eq!(d.first_octet(), 0x04);
        assert!(!d.more_messages_waiting && !d.reply_path && !d.status_report_indication);
        assert_eq!(d.dcs.encoding(), Encoding::Gsm7);
    }

    #[test]
    fn first_octet_flags_decode() {
        // RP | SRI | LP, MMS clear (more waiting): 0xA8.
        let d = deliver("00A80B916407281553F800001230402143654002E834");
        assert!(d.reply_path && d.status_report_indication && d.loop_prevention);
        assert!(d.more_messages_waiting);
        assert_eq!(d.first_octet(), 0xA8);
    }

    #[test]
    fn a_deliver_made_from_a_submit_carries_its_user_data() {
        let message = crate::encode::encode_submit(
            "+4915112345678",
            &"x".repeat(170),
            &crate::encode::SubmitOptions::default(),
        )
        .expect("encodes");
        let part = message.parts.first().expect("a part");
        let Ok(DecodedPdu {
            tpdu: Tpdu::Submit(submit),
            ..
        }) = crate::pdu::decode_pdu_hex(&part.pdu.to_hex())
        else {
            panic!("not a submit");
        };
        let timestamp = Timestamp::from_unix_seconds(1_614_857_696, 4).expect("valid");
        let d = Deliver::from_submit(&submit, Address::international("4930123456"), timestamp);
        let bytes = d.encode().expect("encodes");
        assert_eq!(bytes.first(), Some(&0x44), "UDHI and no more messages");
        let back = Tpdu::decode(&bytes, Direction::ScToMs).expect("decodes");
        assert_eq!(back.text(), Some("x".repeat(153)));
        assert_eq!(back.concat(), part.concat);
    }
}
