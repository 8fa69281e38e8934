//! Building SMS-SUBMIT PDUs for `AT+CMGS` from a phone number and a text.
//!
//! The convention (fixed; test vectors compare byte for byte):
//! - SMSC length `00`: the modem uses the SMSC stored on the SIM;
//! - first octet: MTI 01, RD 0, VPF 10 only when a validity is given (else 00), SRR (bit 5)
//!   when a status report is requested, UDHI (bit 6) when the part has a header;
//! - TP-MR 00 (the modem assigns the reference and reports it in `+CMGS: <mr>`);
//! - TP-DA from [`Address::parse_phone_number`]: 0x91 with '+', 0x81 without;
//! - TP-PID 00; TP-DCS 0x00 GSM 7-bit, 0x08 UCS-2, 0x10 / 0x18 for class 0 ("flash");
//! - TP-VP relative, rounded up (see [`crate::validity`]);
//! - parts of a long text carry `05 00 03 ref total seq` (8-bit reference) or
//!   `06 08 04 refhi reflo total seq` (16-bit), and GSM 7-bit text after the header starts on
//!   a septet boundary (fill bits).
//!
//! Each part reports `tpdu_length`, the TPDU's octets without the SMSC part: the number
//! `AT+CMGS=<length>` expects (TS 27.005 §3.5.1).

use std::time::Duration;

use crate::address::Address;
use crate::dcs::{DataCodingScheme, Encoding, MessageClass};
use crate::error::EncodeError;
use crate::pdu::{EncodedPdu, encode_pdu};
use crate::split::split_text_with;
use crate::tpdu::{Submit, Tpdu};
use crate::udh::{Concat, ReferenceWidth, UserDataHeader};
use crate::user_data::UserData;
use crate::validity::ValidityPeriod;

/// How to send a text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubmitOptions {
    /// Ask for a status report (TP-SRR).
    pub status_report: bool,
    /// Send as class 0 ("flash"): shown at once, not stored by default.
    pub flash: bool,
    /// How long the SC should keep trying; `None` leaves it to the SC (VPF 00).
    pub validity: Option<Duration>,
    /// The concatenation reference shared by the parts of a long text; with 8-bit references
    /// only the low octet is used. The gateway picks a fresh one per message.
    pub concat_reference: u16,
    /// 8-bit references (the usual, 153 septets a part) or 16-bit (152).
    pub reference_width: ReferenceWidth,
}

/// One part of an encoded message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EncodedPart {
    /// The PDU-mode PDU and its `AT+CMGS` length.
    pub pdu: EncodedPdu,
    /// The text this part carries.
    pub text: String,
    /// Its concatenation element, for messages of more than one part.
    pub concat: Option<Concat>,
}

/// A text encoded into one or more SMS-SUBMIT PDUs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EncodedMessage {
    /// The encoding every part uses.
    pub encoding: Encoding,
    /// The parts in order.
    pub parts: Vec<EncodedPart>,
}

/// One part before encoding.
struct Planned {
    submit: Submit,
    text: String,
    concat: Option<Concat>,
}

/// The SMS-SUBMIT TPDUs for `text` to `to`, one per part, before encoding: for callers that
/// want to adjust a field (the virtual network, tests) before calling [`Submit::encode`].
pub fn build_submits(
    to: &str,
    text: &str,
    options: &SubmitOptions,
) -> Result<Vec<Submit>, EncodeError> {
    Ok(plan(to, text, options)?
        .1
        .into_iter()
        .map(|p| p.submit)
        .collect())
}

fn plan(
    to: &str,
    text: &str,
    options: &SubmitOptions,
) -> Result<(Encoding, Vec<Planned>), EncodeError> {
    let destination = Address::parse_phone_number(to)?;
    let split = split_text_with(text, options.reference_width)?;
    let total = split.parts.len();
    // split_text_with returns at most 255 parts.
    let total_u8 = u8::try_from(total).unwrap_or(u8::MAX);
    let reference = match options.reference_width {
        ReferenceWidth::Bits8 => options.concat_reference & 0xFF,
        ReferenceWidth::Bits16 => options.concat_reference,
    };
    let dcs = DataCodingScheme::new(
        split.encoding,
        options.flash.then_some(MessageClass::Class0),
    );
    let validity = options.validity.map(ValidityPeriod::relative);
    let mut submits = Vec::with_capacity(total);
    for (index, part) in split.parts.into_iter().enumerate() {
        let mut user_data = match split.encoding {
            Encoding::Gsm7 => UserData::gsm7(&part)?,
            Encoding::Ucs2 | Encoding::EightBit => UserData::ucs2(&part),
        };
        let concat = (total > 1).then(|| Concat {
            reference,
            width: options.reference_width,
            total: total_u8,
            seq: u8::try_from(index + 1).unwrap_or(u8::MAX),
        });
        if let Some(concat) = concat {
            user_data = user_data.with_header(UserDataHeader::with_concat(concat));
        }
        let submit = Submit {
            reject_duplicates: false,
            status_report_request: options.status_report,
            reply_path: false,
            message_reference: 0,
            destination: destination.clone(),
            protocol_id: 0,
            dcs,
            validity,
            user_data,
        };
        submits.push(Planned {
            submit,
            text: part,
            concat,
        });
    }
    Ok((split.encoding, submits))
}

/// Encodes `text` to `to` as PDU-mode SMS-SUBMITs, split and concatenated as needed.
pub fn encode_submit(
    to: &str,
    text: &str,
    options: &SubmitOptions,
) -> Result<EncodedMessage, EncodeError> {
    let (encoding, planned) = plan(to, text, options)?;
    let mut parts = Vec::with_capacity(planned.len());
    for Planned {
        submit,
        text,
        concat,
    } in planned
    {
        let pdu = encode_pdu(None, &Tpdu::Submit(submit))?;
        parts.push(EncodedPart { pdu, text, concat });
    }
    Ok(EncodedMessage { encoding, parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AddressError;
    use crate::pdu::decode_pdu_hex;

    fn hexes(to: &str, text: &str, options: &SubmitOptions) -> Vec<(String, usize)> {
        encode_submit(to, text, options)
            .map(|m| {
                m.parts
                    .iter()
                    .map(|p| (p.pdu.to_hex(), p.pdu.tpdu_length))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_short_text_to_an_international_number() {
        // 00 | 01 00 | 0B 91 6407281553F8 | 00 00 | 02 E834
        assert_eq!(
            hexes("+46708251358", "hi", &SubmitOptions::default()),
            vec![("0001000B916407281553F8000002E834".to_owned(), 15)]
        );
    }

    #[test]
    fn a_number_without_plus_is_of_unknown_type() {
        let h = hexes("46708251358", "hi", &SubmitOptions::default());
        assert_eq!(h.first().and_then(|(h, _)| h.get(8..10)), Some("81"));
    }

    #[test]
    fn status_report_validity_and_flash_set_their_bits() {
        let options = SubmitOptions {
            status_report: true,
            flash: true,
            validity: Some(Duration::from_secs(24 * 3600)),
            ..SubmitOptions::default()
        };
        // First octet 0x31 = MTI 01 | VPF 10 | SRR; DCS 0x10; VP 0xA7 (24 h).
        assert_eq!(
            hexes("+46708251358", "hi", &options),
            vec![("0031000B916407281553F80010A702E834".to_owned(), 16)]
        );
    }

    #[test]
    fn ucs2_text_uses_dcs_08() {
        let h = hexes("+46708251358", "世", &SubmitOptions::default());
        assert_eq!(h, vec![("0001000B916407281553F80008024E16".to_owned(), 15)]);
    }

    #[test]
    fn long_text_parts_carry_an_8_bit_concatenation_header() {
        let options = SubmitOptions {
            concat_reference: 0x2A,
            ..SubmitOptions::default()
        };
        let message = encode_submit("+46708251358", &"a".repeat(200), &options).expect("encodes");
        assert_eq!(message.parts.len(), 2);
        let first = message.parts.first().expect("first part");
        let hex = first.pdu.to_hex();
        // UDHI set (0x41), UDL 160 (0xA0), header 05 00 03 2A 02 01.
        assert!(
            hex.starts_with("0041000B916407281553F80000A00500032A0201"),
            "{hex}"
        );
        assert_eq!(first.pdu.tpdu_length, 1 + 1 + 8 + 1 + 1 + 1 + 140);
        let decoded = decode_pdu_hex(&hex).expect("decodes");
        assert_eq!(decoded.text(), Some("a".repeat(153)));
    }

    #[test]
    fn sixteen_bit_references_use_iei_08() {
        let options = SubmitOptions {
            concat_reference: 0x1234,
            reference_width: ReferenceWidth::Bits16,
            ..SubmitOptions::default()
        };
        let message = encode_submit("+46708251358", &"a".repeat(200), &options).expect("encodes");
        let hex = message
            .parts
            .first()
            .map(|p| p.pdu.to_hex())
            .unwrap_or_default();
        assert!(
            hex.starts_with("0041000B916407281553F80000A0060804123402"),
            "{hex}"
        );
    }

    #[test]
    fn bad_destinations_are_typed_errors() {
        assert_eq!(
            encode_submit("", "hi", &SubmitOptions::default()),
            Err(EncodeError::Address(AddressError::Empty))
        );
        assert!(matches!(
            encode_submit("+12ab", "hi", &SubmitOptions::default()),
            Err(EncodeError::Address(AddressError::InvalidCharacter { .. }))
        ));
    }
}
