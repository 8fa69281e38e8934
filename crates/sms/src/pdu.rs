//! PDU-mode PDUs (TS 27.005 §3.1, `<pdu>`): the SMSC address, then the TPDU, as `AT+CMGL`,
//! `AT+CMGR` and `+CDS` print them and `AT+CMGS` takes them.
//!
//! The entry points of decoding live here. Every failure is a [`DecodeError`] whose offset
//! counts from the first octet of the whole PDU (the SMSC length octet), never a panic
//! (promise 5). Octets after the TPDU's last field are ignored: some modems pad.

use crate::address::{Address, read_smsc_address, write_smsc_address};
use crate::cursor::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::hex::{decode_hex, encode_hex};
use crate::tpdu::{Direction, Tpdu};
use crate::udh::Concat;

/// A decoded PDU-mode PDU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DecodedPdu {
    /// The SMSC address in front of the TPDU; `None` when its length octet is 00.
    pub smsc: Option<Address>,
    /// The TPDU.
    pub tpdu: Tpdu,
}

impl DecodedPdu {
    /// The text, for GSM 7-bit and UCS-2 user data.
    pub fn text(&self) -> Option<String> {
        self.tpdu.text()
    }

    /// The concatenation element, if any.
    pub fn concat(&self) -> Option<Concat> {
        self.tpdu.concat()
    }

    /// The other party: TP-OA of a DELIVER, TP-DA of a SUBMIT, TP-RA of a STATUS-REPORT.
    pub fn party(&self) -> &Address {
        match &self.tpdu {
            Tpdu::Deliver(d) => &d.originator,
            Tpdu::Submit(s) => &s.destination,
            Tpdu::StatusReport(s) => &s.recipient,
        }
    }

    /// Encodes it back into PDU-mode octets.
    pub fn encode(&self) -> Result<EncodedPdu, EncodeError> {
        encode_pdu(self.smsc.as_ref(), &self.tpdu)
    }
}

/// Decodes a PDU-mode PDU from hex as a modem prints it (whitespace ignored), reading TP-MTI
/// as [`Direction::Stored`].
pub fn decode_pdu_hex(hex: &str) -> Result<DecodedPdu, DecodeError> {
    decode_pdu(&decode_hex(hex)?)
}

/// As [`decode_pdu_hex`], with the direction named.
pub fn decode_pdu_hex_with(hex: &str, direction: Direction) -> Result<DecodedPdu, DecodeError> {
    decode_pdu_with(&decode_hex(hex)?, direction)
}

/// Decodes a PDU-mode PDU from octets, reading TP-MTI as [`Direction::Stored`].
pub fn decode_pdu(bytes: &[u8]) -> Result<DecodedPdu, DecodeError> {
    decode_pdu_with(bytes, Direction::Stored)
}

/// Decodes a PDU-mode PDU from octets with the direction named.
pub fn decode_pdu_with(bytes: &[u8], direction: Direction) -> Result<DecodedPdu, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut r = Reader::new(bytes);
    let smsc = read_smsc_address(&mut r)?;
    let tpdu = Tpdu::read(&mut r, direction)?;
    Ok(DecodedPdu { smsc, tpdu })
}

/// Decodes a PDU as listed with its `<length>` (`+CMGL: …,<length>`, `+CMGR: …,<length>`,
/// `+CDS: <length>`), which counts the TPDU's octets only (TS 27.005 §3.1). Some modems print
/// `+CDS` PDUs without the SMSC field; when the hex holds exactly `tpdu_length` octets there
/// is no SMSC field and the TPDU starts at once (`smsc` is `None` and offsets count from the
/// TPDU). Otherwise the PDU is read as usual.
pub fn decode_pdu_hex_with_length(
    hex: &str,
    tpdu_length: usize,
) -> Result<DecodedPdu, DecodeError> {
    let bytes = decode_hex(hex)?;
    if bytes.len() == tpdu_length {
        let tpdu = Tpdu::read(&mut Reader::new(&bytes), Direction::Stored)?;
        return Ok(DecodedPdu { smsc: None, tpdu });
    }
    decode_pdu(&bytes)
}

/// A PDU ready for the modem.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EncodedPdu {
    /// SMSC part then TPDU.
    pub bytes: Vec<u8>,
    /// Octets of the TPDU alone: the `<length>` of `AT+CMGS=<length>` (TS 27.005 §3.5.1),
    /// which does not count the SMSC part.
    pub tpdu_length: usize,
}

impl EncodedPdu {
    /// Upper-case hex, what to send after the `> ` prompt.
    pub fn to_hex(&self) -> String {
        encode_hex(&self.bytes)
    }
}

/// Encodes an SMSC address (or `00` for none) and a TPDU into PDU-mode octets.
pub fn encode_pdu(smsc: Option<&Address>, tpdu: &Tpdu) -> Result<EncodedPdu, EncodeError> {
    let mut bytes = Vec::new();
    write_smsc_address(smsc, &mut bytes)?;
    let tpdu = tpdu.encode()?;
    let tpdu_length = tpdu.len();
    bytes.extend_from_slice(&tpdu);
    Ok(EncodedPdu { bytes, tpdu_length })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::TypeOfNumber;
    use crate::error::Field;

    const HELLOHELLO: &str =
        "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";

    #[test]
    fn the_classic_deliver_decodes_its_fields() {
        let pdu = decode_pdu_hex(HELLOHELLO);
        let Ok(DecodedPdu {
            smsc,
            tpdu: Tpdu::Deliver(d),
        }) = pdu
        else {
            panic!("not a deliver: {pdu:?}");
        };
        assert_eq!(smsc.map(|a| a.to_string()).as_deref(), Some("+27381000015"));
        assert_eq!(d.originator.to_string(), "27838890001");
        assert_eq!(d.originator.type_of_number, TypeOfNumber::Subscriber);
        assert_eq!(d.timestamp.to_rfc3339(), "1999-03-29T15:16:59+02:00");
        assert_eq!(d.protocol_id, 0);
        assert!(!d.more_messages_waiting);
        assert_eq!(d.user_data.length(), 10);
    }

    #[test]
    fn decoding_then_encoding_gives_the_same_octets() {
        let pdu = decode_pdu_hex(HELLOHELLO);
        let encoded = pdu.as_ref().ok().and_then(|p| p.encode().ok());
        assert_eq!(
            encoded.as_ref().map(EncodedPdu::to_hex).as_deref(),
            Some(HELLOHELLO)
        );
        assert_eq!(encoded.map(|e| e.tpdu_length), Some(28));
    }

    #[test]
    fn every_truncation_of_a_real_pdu_is_a_typed_error() {
        let bytes = decode_hex(HELLOHELLO).unwrap_or_default();
        for end in 0..bytes.len() {
            let prefix = bytes.get(..end).unwrap_or_default();
            assert!(
                decode_pdu(prefix).is_err(),
                "prefix of {end} octets decoded"
            );
        }
    }

    #[test]
    fn a_lying_udl_names_lengths_and_offset() {
        // UDL A0 (160 septets) where 9 octets remain.
        let e = decode_pdu_hex(
            "07917283010010F5040BC87238880900F1000099309251619580A0E8329BFD4697D9EC37",
        );
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err(
                "user data length 160 septets needs 140 octets but only 9 remain (at octet 27)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn reserved_mti_is_an_error_at_the_first_octet() {
        assert_eq!(
            decode_pdu_hex("0003"),
            Err(DecodeError::ReservedMessageType { offset: 1 })
        );
    }

    #[test]
    fn direction_decides_what_mti_means() {
        assert_eq!(
            decode_pdu_hex_with(HELLOHELLO, Direction::MsToSc),
            Err(DecodeError::UnsupportedMessageType {
                name: "SMS-DELIVER-REPORT",
                offset: 8
            })
        );
        assert!(decode_pdu_hex_with(HELLOHELLO, Direction::ScToMs).is_ok());
        assert!(matches!(
            decode_pdu_hex_with("0001000B911234567890F0000000", Direction::ScToMs),
            Err(DecodeError::UnsupportedMessageType {
                name: "SMS-SUBMIT-REPORT",
                ..
            })
        ));
    }

    #[test]
    fn a_submit_with_relative_validity_decodes() {
        // 00 | 11 (VPF relative) 00 | DA 0B 91 ... | PID 00 | DCS 00 | VP AA | UDL 02 | "hi"
        let pdu = decode_pdu_hex("0011000B916407281553F80000AA02E834");
        let Ok(DecodedPdu {
            smsc: None,
            tpdu: Tpdu::Submit(s),
        }) = &pdu
        else {
            panic!("not a submit: {pdu:?}");
        };
        assert_eq!(s.destination.to_string(), "+46708251358");
        assert_eq!(
            s.validity,
            Some(crate::validity::ValidityPeriod::Relative(0xAA))
        );
        assert_eq!(
            pdu.as_ref().ok().and_then(DecodedPdu::text).as_deref(),
            Some("hi")
        );
    }

    #[test]
    fn a_cds_without_smsc_field_decodes_with_its_length() {
        // amro.blogspot.com 2007: "+CDS: 25" followed by a TPDU with no SMSC field.
        let tpdu = "06000B910221815716F2709021510121807090215101718000";
        let hex_len = tpdu.len() / 2;
        let with_length = decode_pdu_hex_with_length(tpdu, hex_len);
        assert!(matches!(
            with_length,
            Ok(DecodedPdu {
                smsc: None,
                tpdu: Tpdu::StatusReport(_)
            })
        ));
        // The same octets with an SMSC length octet in front decode alike either way.
        let full = format!("00{tpdu}");
        assert_eq!(decode_pdu_hex_with_length(&full, hex_len), with_length);
        assert_eq!(decode_pdu_hex(&full), with_length);
    }

    #[test]
    fn offsets_count_the_smsc_part() {
        // No SMSC, DELIVER, OA length 0x14 (20 digits, 10 octets) but only 2 octets follow.
        assert_eq!(
            decode_pdu_hex("0004149121"),
            Err(DecodeError::Truncated {
                field: Field::OriginatingAddress,
                needed: 12,
                remaining: 3,
                offset: 2
            })
        );
    }
}
