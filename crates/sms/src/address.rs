//! Addresses: TP-OA, TP-DA and TP-RA (TS 23.040 §9.1.2.5) and the SMSC address that
//! TS 27.005 PDU mode puts in front of the TPDU (coded as RP-SC-Address, TS 24.011 §8.2.5.1).
//!
//! Two length conventions meet here and are easy to mix up: a TP address's length octet counts
//! the *semi-octets* of the value (digits, or for alphanumeric addresses the semi-octets the
//! packed septets use), while the SMSC address's length octet counts *octets*, the
//! type-of-address octet included. Both are handled by this module alone.
//!
//! Values: digits are BCD semi-octets, low nibble first, with an F filler after an odd count;
//! 0xA-0xE are `*`, `#`, `a`, `b`, `c`. An alphanumeric address (type of number 101) is GSM
//! 7-bit text packed into the semi-octets, decoded with the default tables. An international
//! number is written with a leading '+'; every other type as bare digits.

use std::fmt;

use crate::alphabet::{gsm7, packing};
use crate::cursor::Reader;
use crate::error::{AddressError, DecodeError, Field};

/// The most digits (semi-octets) an address value may have (TS 23.040 §9.1.2.5: the address
/// field is at most 12 octets, 10 of them for the value).
pub const MAX_ADDRESS_DIGITS: usize = 20;

/// The most septets an alphanumeric address holds (10 octets of packed septets).
pub const MAX_ALPHANUMERIC_SEPTETS: usize = 11;

/// Type of number, bits 6-4 of the type-of-address octet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TypeOfNumber {
    /// 000: the network decides from the digits.
    #[default]
    Unknown,
    /// 001: E.164 with country code; shown with a leading '+'.
    International,
    /// 010: national number without prefix.
    National,
    /// 011: administration/service number of the network.
    NetworkSpecific,
    /// 100: subscriber number.
    Subscriber,
    /// 101: GSM 7-bit text, e.g. a bank's sender name.
    Alphanumeric,
    /// 110: abbreviated number.
    Abbreviated,
    /// 111: reserved for extension.
    Reserved,
}

impl TypeOfNumber {
    /// From the three bits (higher bits ignored).
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0x07 {
            0 => Self::Unknown,
            1 => Self::International,
            2 => Self::National,
            3 => Self::NetworkSpecific,
            4 => Self::Subscriber,
            5 => Self::Alphanumeric,
            6 => Self::Abbreviated,
            _ => Self::Reserved,
        }
    }

    /// The three bits.
    pub fn bits(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::International => 1,
            Self::National => 2,
            Self::NetworkSpecific => 3,
            Self::Subscriber => 4,
            Self::Alphanumeric => 5,
            Self::Abbreviated => 6,
            Self::Reserved => 7,
        }
    }
}

/// Numbering plan identification, bits 3-0 of the type-of-address octet. A newtype rather than
/// an enum because half the values are reserved and must survive a round trip unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NumberingPlan(pub u8);

impl NumberingPlan {
    /// 0000: unknown.
    pub const UNKNOWN: Self = Self(0);
    /// 0001: ISDN/telephone (E.164/E.163), the usual one.
    pub const ISDN: Self = Self(1);
    /// 0011: data (X.121).
    pub const DATA: Self = Self(3);
    /// 0100: telex.
    pub const TELEX: Self = Self(4);
    /// 1000: national.
    pub const NATIONAL: Self = Self(8);
    /// 1001: private.
    pub const PRIVATE: Self = Self(9);
    /// 1010: ERMES.
    pub const ERMES: Self = Self(10);
}

/// An SMS address: who sent a message, who it goes to, or which SMSC relays it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// How to read [`Address::value`]; international numbers display with '+'.
    pub type_of_number: TypeOfNumber,
    /// The numbering plan, kept as received.
    pub numbering_plan: NumberingPlan,
    /// The digits (`0-9 * # a b c`, without '+'), or the text of an alphanumeric address.
    pub value: String,
}

impl Address {
    /// An international E.164 number (type-of-address 0x91); `digits` without '+'.
    pub fn international(digits: impl Into<String>) -> Self {
        Self {
            type_of_number: TypeOfNumber::International,
            numbering_plan: NumberingPlan::ISDN,
            value: digits.into(),
        }
    }

    /// A number of unknown type (type-of-address 0x81), which the network reads as dialled.
    pub fn unknown(digits: impl Into<String>) -> Self {
        Self {
            type_of_number: TypeOfNumber::Unknown,
            numbering_plan: NumberingPlan::ISDN,
            value: digits.into(),
        }
    }

    /// An alphanumeric sender name (type-of-address 0xD0).
    pub fn alphanumeric(text: impl Into<String>) -> Self {
        Self {
            type_of_number: TypeOfNumber::Alphanumeric,
            numbering_plan: NumberingPlan::UNKNOWN,
            value: text.into(),
        }
    }

    /// Parses a destination the way Conductor sends: "+" and digits is international (0x91),
    /// digits alone are of unknown type (0x81). Anything else (letters, spaces, separators,
    /// an empty string, more than 20 digits) is an [`AddressError`] naming the problem;
    /// normalising user input is the caller's job, so nothing is silently dropped here.
    pub fn parse_phone_number(number: &str) -> Result<Self, AddressError> {
        let (international, digits) = match number.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        if digits.is_empty() {
            return Err(AddressError::Empty);
        }
        let skip = usize::from(international);
        if let Some((i, c)) = digits
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(AddressError::InvalidCharacter {
                number: number.to_owned(),
                character: c,
                position: i + skip,
            });
        }
        if digits.len() > MAX_ADDRESS_DIGITS {
            return Err(AddressError::TooLong {
                digits: digits.len(),
                max: MAX_ADDRESS_DIGITS,
            });
        }
        Ok(if international {
            Self::international(digits)
        } else {
            Self::unknown(digits)
        })
    }

    /// The type-of-address octet: extension bit set, then TON and NPI.
    pub fn type_octet(&self) -> u8 {
        0x80 | (self.type_of_number.bits() << 4) | (self.numbering_plan.0 & 0x0F)
    }

    /// Whether this is an alphanumeric (text) address.
    pub fn is_alphanumeric(&self) -> bool {
        self.type_of_number == TypeOfNumber::Alphanumeric
    }

    /// The value as the wire carries it: semi-octets for digits, packed septets for text, and
    /// the count of semi-octets used (what a TP address's length octet says).
    fn encode_value(&self) -> Result<(Vec<u8>, usize), AddressError> {
        if self.is_alphanumeric() {
            let septets =
                gsm7::encode(&self.value).map_err(|e| AddressError::AlphanumericUnencodable {
                    character: e.character,
                })?;
            if septets.len() > MAX_ALPHANUMERIC_SEPTETS {
                return Err(AddressError::AlphanumericTooLong {
                    septets: septets.len(),
                    max: MAX_ALPHANUMERIC_SEPTETS,
                });
            }
            let packed = packing::pack(&septets, 0);
            // Semi-octets actually used by the septets' bits (TS 23.040 §9.1.2.5).
            let semi_octets = (septets.len() * 7).div_ceil(4);
            Ok((packed, semi_octets))
        } else {
            let mut nibbles = Vec::with_capacity(self.value.len());
            for c in self.value.chars() {
                nibbles.push(nibble_for(c).ok_or_else(|| AddressError::NotSemiOctet {
                    value: self.value.clone(),
                    character: c,
                })?);
            }
            if nibbles.len() > MAX_ADDRESS_DIGITS {
                return Err(AddressError::TooLong {
                    digits: nibbles.len(),
                    max: MAX_ADDRESS_DIGITS,
                });
            }
            let octets = nibbles
                .chunks(2)
                .map(|pair| match pair {
                    [low, high] => low | (high << 4),
                    [low] => low | 0xF0,
                    _ => 0xFF,
                })
                .collect();
            Ok((octets, nibbles.len()))
        }
    }
}

impl fmt::Display for Address {
    /// International numbers with '+', everything else as stored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.type_of_number == TypeOfNumber::International && !self.value.is_empty() {
            f.write_str("+")?;
        }
        f.write_str(&self.value)
    }
}

/// The character a BCD semi-octet stands for; `None` for the F filler.
fn digit_for(nibble: u8) -> Option<char> {
    match nibble {
        0..=9 => Some(char::from(b'0' + nibble)),
        0xA => Some('*'),
        0xB => Some('#'),
        0xC => Some('a'),
        0xD => Some('b'),
        0xE => Some('c'),
        _ => None,
    }
}

/// The semi-octet for an address character (upper-case A-C accepted too).
fn nibble_for(c: char) -> Option<u8> {
    match c {
        '0'..='9' => c.to_digit(10).and_then(|d| u8::try_from(d).ok()),
        '*' => Some(0xA),
        '#' => Some(0xB),
        'a' | 'A' => Some(0xC),
        'b' | 'B' => Some(0xD),
        'c' | 'C' => Some(0xE),
        _ => None,
    }
}

/// Turns the value octets into digits or text. `semi_octets` is how many semi-octets carry
/// the value (for an SMSC address, every one of its octets' two).
fn decode_value(ton: TypeOfNumber, octets: &[u8], semi_octets: usize) -> String {
    if ton == TypeOfNumber::Alphanumeric {
        let septets = semi_octets * 4 / 7;
        // `octets` holds ceil(semi_octets / 2) octets, enough bits for `septets`; fall back to
        // what fits should a caller ever pass fewer.
        let count = septets.min(octets.len() * 8 / 7);
        let unpacked = packing::unpack(octets, 0, count).unwrap_or_default();
        return gsm7::decode(&unpacked, gsm7::ShiftTables::default());
    }
    let mut value = String::with_capacity(semi_octets);
    for (i, octet) in octets.iter().enumerate() {
        for (j, nibble) in [octet & 0x0F, octet >> 4].into_iter().enumerate() {
            if i * 2 + j >= semi_octets {
                break;
            }
            // An F inside the count is a filler some equipment leaves in: skip it.
            if let Some(c) = digit_for(nibble) {
                value.push(c);
            }
        }
    }
    value
}

/// Reads a TP address (TP-OA, TP-DA, TP-RA): length in semi-octets, type, value.
pub(crate) fn read_tp_address(r: &mut Reader<'_>, field: Field) -> Result<Address, DecodeError> {
    let start = r.offset();
    let semi_octets = usize::from(r.u8(Field::AddressLength)?);
    let toa = r.u8(Field::TypeOfAddress)?;
    let needed = semi_octets.div_ceil(2);
    if r.remaining() < needed {
        return Err(DecodeError::Truncated {
            field,
            needed: needed + 2,
            remaining: r.remaining() + 2,
            offset: start,
        });
    }
    let octets = r.take(needed, field)?;
    let ton = TypeOfNumber::from_bits(toa >> 4);
    Ok(Address {
        type_of_number: ton,
        numbering_plan: NumberingPlan(toa & 0x0F),
        value: decode_value(ton, octets, semi_octets),
    })
}

/// Reads the SMSC address in front of a PDU-mode TPDU: length in octets (type included);
/// 0 means none (the modem uses its default SMSC).
pub(crate) fn read_smsc_address(r: &mut Reader<'_>) -> Result<Option<Address>, DecodeError> {
    let start = r.offset();
    let length = usize::from(r.u8(Field::SmscLength)?);
    if length == 0 {
        return Ok(None);
    }
    if r.remaining() < length {
        return Err(DecodeError::Truncated {
            field: Field::SmscAddress,
            needed: length + 1,
            remaining: r.remaining() + 1,
            offset: start,
        });
    }
    let toa = r.u8(Field::TypeOfAddress)?;
    let octets = r.take(length - 1, Field::SmscAddress)?;
    let ton = TypeOfNumber::from_bits(toa >> 4);
    Ok(Some(Address {
        type_of_number: ton,
        numbering_plan: NumberingPlan(toa & 0x0F),
        value: decode_value(ton, octets, octets.len() * 2),
    }))
}

/// Writes a TP address (length in semi-octets).
pub(crate) fn write_tp_address(address: &Address, out: &mut Vec<u8>) -> Result<(), AddressError> {
    let (octets, semi_octets) = address.encode_value()?;
    // At most 20 semi-octets, checked by `encode_value`.
    out.push(u8::try_from(semi_octets).unwrap_or(u8::MAX));
    out.push(address.type_octet());
    out.extend_from_slice(&octets);
    Ok(())
}

/// Writes the SMSC part of a PDU-mode PDU: `00` for none, else length in octets, type, value.
pub(crate) fn write_smsc_address(
    address: Option<&Address>,
    out: &mut Vec<u8>,
) -> Result<(), AddressError> {
    match address {
        None => out.push(0),
        Some(address) => {
            let (octets, _) = address.encode_value()?;
            // At most 10 value octets, checked by `encode_value`.
            out.push(u8::try_from(octets.len() + 1).unwrap_or(u8::MAX));
            out.push(address.type_octet());
            out.extend_from_slice(&octets);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::decode_hex;

    fn tp(hex: &str) -> Result<Address, DecodeError> {
        let bytes = decode_hex(hex).unwrap_or_default();
        read_tp_address(&mut Reader::new(&bytes), Field::OriginatingAddress)
    }

    fn encoded(address: &Address) -> Vec<u8> {
        let mut out = Vec::new();
        write_tp_address(address, &mut out).ok();
        out
    }

    #[test]
    fn international_numbers_show_a_plus_and_drop_the_filler() {
        let a = tp("0B914483254668F4").ok();
        let a = a.as_ref();
        assert_eq!(a.map(|a| a.to_string()).as_deref(), Some("+44385264864"));
        assert_eq!(a.map(|a| a.type_octet()), Some(0x91));
    }

    #[test]
    fn other_types_are_bare_digits() {
        // The classic "hellohello" sender: TON 100 (subscriber), NPI 1000 (national).
        let a = tp("0BC87238880900F1").ok();
        assert_eq!(
            a.as_ref().map(|a| a.to_string()).as_deref(),
            Some("27838890001")
        );
        assert_eq!(a.map(|a| a.type_of_number), Some(TypeOfNumber::Subscriber));
    }

    #[test]
    fn semi_octets_a_to_e_are_star_hash_and_abc() {
        let a = tp("0681BADC0E").ok();
        assert_eq!(a.map(|a| a.value).as_deref(), Some("*#abc0"));
        assert_eq!(
            encoded(&Address::unknown("*#abc0")),
            decode_hex("0681BADC0E").unwrap_or_default()
        );
    }

    #[test]
    fn an_address_longer_than_the_pdu_is_a_truncation_at_its_length_octet() {
        assert_eq!(
            tp("0B9144"),
            Err(DecodeError::Truncated {
                field: Field::OriginatingAddress,
                needed: 8,
                remaining: 3,
                offset: 0
            })
        );
        assert!(tp("0B").is_err());
        assert!(tp("").is_err());
    }

    #[test]
    fn smsc_length_counts_octets_and_zero_means_none() {
        let bytes = decode_hex("07917283010010F5").unwrap_or_default();
        let a = read_smsc_address(&mut Reader::new(&bytes));
        assert_eq!(
            a.ok().flatten().map(|a| a.to_string()).as_deref(),
            Some("+27381000015")
        );
        assert_eq!(read_smsc_address(&mut Reader::new(&[0])), Ok(None));
        let mut out = Vec::new();
        assert!(write_smsc_address(Some(&Address::international("27381000015")), &mut out).is_ok());
        assert_eq!(out, bytes);
    }

    #[test]
    fn smsc_length_beyond_the_pdu_is_an_error() {
        assert!(matches!(
            read_smsc_address(&mut Reader::new(&[0x07, 0x91, 0x72])),
            Err(DecodeError::Truncated {
                field: Field::SmscAddress,
                offset: 0,
                ..
            })
        ));
    }

    #[test]
    fn odd_digit_counts_get_an_f_filler() {
        assert_eq!(
            encoded(&Address::international("123")),
            vec![0x03, 0x91, 0x21, 0xF3]
        );
    }

    #[test]
    fn destinations_parse_into_international_or_unknown() {
        assert_eq!(
            Address::parse_phone_number("+4915112345678").map(|a| a.type_octet()),
            Ok(0x91)
        );
        assert_eq!(
            Address::parse_phone_number("015112345678").map(|a| a.type_octet()),
            Ok(0x81)
        );
    }

    #[test]
    fn bad_destinations_say_what_is_wrong() {
        assert_eq!(Address::parse_phone_number(""), Err(AddressError::Empty));
        assert_eq!(Address::parse_phone_number("+"), Err(AddressError::Empty));
        assert_eq!(
            Address::parse_phone_number("+49 151"),
            Err(AddressError::InvalidCharacter {
                number: "+49 151".into(),
                character: ' ',
                position: 3
            })
        );
        assert!(matches!(
            Address::parse_phone_number("12+3"),
            Err(AddressError::InvalidCharacter {
                character: '+',
                position: 2,
                ..
            })
        ));
        assert!(matches!(
            Address::parse_phone_number("CALLME"),
            Err(AddressError::InvalidCharacter {
                character: 'C',
                position: 0,
                ..
            })
        ));
        assert_eq!(
            Address::parse_phone_number("123456789012345678901"),
            Err(AddressError::TooLong {
                digits: 21,
                max: 20
            })
        );
        assert!(Address::parse_phone_number("12345678901234567890").is_ok());
    }

    #[test]
    fn alphanumeric_senders_decode_with_the_default_alphabet() {
        // TS 23.040 style example: "Design@Home" in 20 semi-octets, type 0xD0.
        let a = tp("14D0C4F23C7D760390EF7619").ok();
        assert_eq!(a.as_ref().map(|a| a.value.as_str()), Some("Design@Home"));
        assert_eq!(
            a.as_ref().map(|a| a.type_of_number),
            Some(TypeOfNumber::Alphanumeric)
        );
        assert_eq!(
            encoded(&Address::alphanumeric("Design@Home")),
            decode_hex("14D0C4F23C7D760390EF7619").unwrap_or_default()
        );
    }

    #[test]
    fn alphanumeric_addresses_longer_than_eleven_septets_are_refused() {
        let mut out = Vec::new();
        assert_eq!(
            write_tp_address(&Address::alphanumeric("ABCDEFGHIJKL"), &mut out),
            Err(AddressError::AlphanumericTooLong {
                septets: 12,
                max: 11
            })
        );
    }
}
