//! The user data header (TS 23.040 §9.2.3.24): information elements in front of the text.
//!
//! Elements are kept raw (identifier and octets) so unknown ones survive a round trip; typed
//! views read the ones Conductor acts on: concatenation with an 8-bit (IEI 0x00, §9.2.3.24.1)
//! or 16-bit reference (IEI 0x08, §9.2.3.24.8), application ports (IEI 0x04/0x05,
//! §9.2.3.24.3/4) and the national language single and locking shifts (IEI 0x24/0x25,
//! §9.2.3.24.15/16). An element whose length does not match its definition is kept but not
//! interpreted. Where an element occurs twice, the last occurrence counts (§9.2.3.24: "a
//! receiving entity ... shall use the last occurrence").

use crate::alphabet::gsm7::{NationalLanguage, ShiftTables};
use crate::error::{DecodeError, Field};

/// IEI of concatenation with an 8-bit reference.
pub const IEI_CONCAT_8: u8 = 0x00;
/// IEI of application ports with 8-bit addresses.
pub const IEI_PORTS_8: u8 = 0x04;
/// IEI of application ports with 16-bit addresses.
pub const IEI_PORTS_16: u8 = 0x05;
/// IEI of concatenation with a 16-bit reference.
pub const IEI_CONCAT_16: u8 = 0x08;
/// IEI of the national language single shift.
pub const IEI_SINGLE_SHIFT: u8 = 0x24;
/// IEI of the national language locking shift.
pub const IEI_LOCKING_SHIFT: u8 = 0x25;

/// One information element: identifier and data, as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InformationElement {
    /// The IEI.
    pub id: u8,
    /// The element's data (at most 255 octets; the header is shorter still).
    pub data: Vec<u8>,
}

impl InformationElement {
    /// The concatenation element for `concat` (IEI 0x00 or 0x08 by its reference width).
    pub fn concat(concat: Concat) -> Self {
        match concat.width {
            ReferenceWidth::Bits8 => Self {
                id: IEI_CONCAT_8,
                // An 8-bit reference keeps the low octet.
                data: vec![(concat.reference & 0xFF) as u8, concat.total, concat.seq],
            },
            ReferenceWidth::Bits16 => {
                let [hi, lo] = concat.reference.to_be_bytes();
                Self {
                    id: IEI_CONCAT_16,
                    data: vec![hi, lo, concat.total, concat.seq],
                }
            }
        }
    }
}

/// How wide a concatenation reference is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReferenceWidth {
    /// IEI 0x00: one octet; the UDH takes 6 octets, leaving 153 septets or 67 UCS-2 units.
    #[default]
    Bits8,
    /// IEI 0x08: two octets; the UDH takes 7 octets, leaving 152 septets or 66 UCS-2 units.
    Bits16,
}

impl ReferenceWidth {
    /// 8 or 16.
    pub fn bits(self) -> u8 {
        match self {
            Self::Bits8 => 8,
            Self::Bits16 => 16,
        }
    }

    /// Octets of a user data header that holds only this concatenation element, UDHL included.
    pub fn header_octets(self) -> usize {
        match self {
            Self::Bits8 => 6,
            Self::Bits16 => 7,
        }
    }
}

/// A concatenated message's part number (TS 23.040 §9.2.3.24.1 and .8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Concat {
    /// The reference shared by every part of one message (0..=255 for 8-bit references).
    pub reference: u16,
    /// Whether the reference took one octet or two.
    pub width: ReferenceWidth,
    /// How many parts the message has.
    pub total: u8,
    /// This part's number, from 1.
    pub seq: u8,
}

impl Concat {
    /// Whether the numbers make sense: at least one part and `1 <= seq <= total`. The spec
    /// says to ignore an element that does not (§9.2.3.24.1: "the receiving entity shall
    /// ignore the entire Information Element"), so reassembly treats such a part as a message
    /// of its own.
    pub fn is_valid(&self) -> bool {
        self.total > 0 && self.seq >= 1 && self.seq <= self.total
    }
}

/// Application port addressing (TS 23.040 §9.2.3.24.3 and .4), e.g. WAP push on 2948.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ports {
    /// Destination port.
    pub destination: u16,
    /// Originator port.
    pub origin: u16,
    /// Whether the element used 16-bit ports (IEI 0x05) or 8-bit ones (IEI 0x04).
    pub wide: bool,
}

/// A parsed user data header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UserDataHeader {
    /// The elements in order.
    pub elements: Vec<InformationElement>,
}

impl UserDataHeader {
    /// A header with just a concatenation element, as the splitter's parts carry.
    pub fn with_concat(concat: Concat) -> Self {
        Self {
            elements: vec![InformationElement::concat(concat)],
        }
    }

    fn last(&self, id: u8, len: usize) -> Option<&[u8]> {
        self.elements
            .iter()
            .rev()
            .find(|e| e.id == id && e.data.len() == len)
            .map(|e| e.data.as_slice())
    }

    /// The concatenation element, 8- or 16-bit, whichever comes last. Not checked for sense:
    /// see [`Concat::is_valid`].
    pub fn concat(&self) -> Option<Concat> {
        self.elements
            .iter()
            .rev()
            .find_map(|e| match (e.id, e.data.as_slice()) {
                (IEI_CONCAT_8, &[reference, total, seq]) => Some(Concat {
                    reference: u16::from(reference),
                    width: ReferenceWidth::Bits8,
                    total,
                    seq,
                }),
                (IEI_CONCAT_16, &[hi, lo, total, seq]) => Some(Concat {
                    reference: u16::from_be_bytes([hi, lo]),
                    width: ReferenceWidth::Bits16,
                    total,
                    seq,
                }),
                _ => None,
            })
    }

    /// Application ports, if present.
    pub fn ports(&self) -> Option<Ports> {
        self.elements
            .iter()
            .rev()
            .find_map(|e| match (e.id, e.data.as_slice()) {
                (IEI_PORTS_8, &[destination, origin]) => Some(Ports {
                    destination: u16::from(destination),
                    origin: u16::from(origin),
                    wide: false,
                }),
                (IEI_PORTS_16, &[d1, d2, o1, o2]) => Some(Ports {
                    destination: u16::from_be_bytes([d1, d2]),
                    origin: u16::from_be_bytes([o1, o2]),
                    wide: true,
                }),
                _ => None,
            })
    }

    /// The GSM 7-bit tables the national language shift elements select (default tables when
    /// absent).
    pub fn shift_tables(&self) -> ShiftTables {
        let pick = |id| match self.last(id, 1) {
            Some(&[language]) => NationalLanguage(language),
            _ => NationalLanguage::DEFAULT,
        };
        ShiftTables {
            locking: pick(IEI_LOCKING_SHIFT),
            single: pick(IEI_SINGLE_SHIFT),
        }
    }

    /// Octets of the header on the wire, UDHL included.
    pub fn octet_len(&self) -> usize {
        1 + self
            .elements
            .iter()
            .map(|e| 2 + e.data.len())
            .sum::<usize>()
    }

    /// The header on the wire, UDHL first. Element lengths above 255 are cut to 255 octets
    /// (the user data could not carry them anyway; encoding reports the size).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for e in &self.elements {
            let data = e.data.get(..255).unwrap_or(&e.data);
            body.push(e.id);
            body.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
            body.extend_from_slice(data);
        }
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(u8::try_from(body.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&body);
        out
    }

    /// Parses the elements of a header whose UDHL octet sits at PDU offset `offset` and whose
    /// element octets are `body` (exactly UDHL of them).
    pub(crate) fn parse(body: &[u8], offset: usize) -> Result<Self, DecodeError> {
        let mut elements = Vec::new();
        let mut rest = body;
        // Offset of the first octet of `rest` in the PDU.
        let mut at = offset + 1;
        while let Some((&id, after_id)) = rest.split_first() {
            let Some((&length, after_len)) = after_id.split_first() else {
                return Err(DecodeError::Truncated {
                    field: Field::UserDataHeader,
                    needed: 2,
                    remaining: 1,
                    offset: at,
                });
            };
            let Some((data, next)) = after_len.split_at_checked(usize::from(length)) else {
                return Err(DecodeError::ElementExceedsHeader {
                    id,
                    length,
                    remaining: after_len.len(),
                    offset: at,
                });
            };
            elements.push(InformationElement {
                id,
                data: data.to_vec(),
            });
            at += 2 + data.len();
            rest = next;
        }
        Ok(Self { elements })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_8_bit_concatenation_header_parses() {
        let h = UserDataHeader::parse(&[0x00, 0x03, 0x2A, 0x03, 0x02], 10);
        assert_eq!(
            h.map(|h| h.concat()),
            Ok(Some(Concat {
                reference: 42,
                width: ReferenceWidth::Bits8,
                total: 3,
                seq: 2
            }))
        );
    }

    #[test]
    fn a_16_bit_concatenation_header_round_trips() {
        let c = Concat {
            reference: 0xBEEF,
            width: ReferenceWidth::Bits16,
            total: 2,
            seq: 1,
        };
        let bytes = UserDataHeader::with_concat(c).to_bytes();
        assert_eq!(bytes, vec![0x06, 0x08, 0x04, 0xBE, 0xEF, 0x02, 0x01]);
        let parsed = bytes
            .split_first()
            .map(|(_, body)| UserDataHeader::parse(body, 0));
        assert_eq!(
            parsed.and_then(|p| p.ok()).and_then(|h| h.concat()),
            Some(c)
        );
    }

    #[test]
    fn the_8_bit_header_is_05_00_03() {
        let c = Concat {
            reference: 7,
            width: ReferenceWidth::Bits8,
            total: 2,
            seq: 2,
        };
        assert_eq!(
            UserDataHeader::with_concat(c).to_bytes(),
            vec![0x05, 0x00, 0x03, 0x07, 0x02, 0x02]
        );
    }

    #[test]
    fn an_element_longer_than_the_header_is_an_error_with_its_offset() {
        assert_eq!(
            UserDataHeader::parse(&[0x00, 0x03, 0x2A, 0x03, 0x01, 0x24, 0x05, 0x01], 30),
            Err(DecodeError::ElementExceedsHeader {
                id: 0x24,
                length: 5,
                remaining: 1,
                offset: 36
            })
        );
        assert!(UserDataHeader::parse(&[0x00], 0).is_err());
    }

    #[test]
    fn wrong_length_elements_are_kept_but_not_read() {
        let h = UserDataHeader::parse(&[0x00, 0x02, 0x01, 0x02], 0);
        assert_eq!(h.as_ref().map(|h| h.concat()), Ok(None));
        assert_eq!(h.map(|h| h.elements.len()), Ok(1));
    }

    #[test]
    fn the_last_concatenation_element_wins() {
        let h = UserDataHeader::parse(&[0x00, 0x03, 1, 2, 1, 0x00, 0x03, 9, 2, 2], 0);
        assert_eq!(
            h.ok()
                .and_then(|h| h.concat())
                .map(|c| (c.reference, c.seq)),
            Some((9, 2))
        );
    }

    #[test]
    fn invalid_concatenation_numbers_are_flagged() {
        let c = |total, seq| Concat {
            reference: 1,
            width: ReferenceWidth::Bits8,
            total,
            seq,
        };
        assert!(c(2, 1).is_valid());
        assert!(!c(2, 0).is_valid());
        assert!(!c(2, 3).is_valid());
        assert!(!c(0, 0).is_valid());
    }

    #[test]
    fn shift_tables_and_ports_are_read() {
        let h = UserDataHeader::parse(
            &[
                0x24, 0x01, 0x01, 0x25, 0x01, 0x03, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0,
            ],
            0,
        );
        let h = h.unwrap_or_default();
        assert_eq!(
            h.shift_tables(),
            ShiftTables {
                locking: NationalLanguage::PORTUGUESE,
                single: NationalLanguage::TURKISH
            }
        );
        assert_eq!(
            h.ports(),
            Some(Ports {
                destination: 2948,
                origin: 9200,
                wide: true
            })
        );
        assert_eq!(h.octet_len(), 13);
    }
}
