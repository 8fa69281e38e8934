//! TP-UDL and TP-UD (TS 23.040 §9.2.3.16, §9.2.3.24): the header and the payload.
//!
//! The payload is kept in its wire form (unpacked septets, UTF-16BE octets, 8-bit octets or
//! compressed octets) so that a decoded TPDU re-encodes to the same octets; the text is read
//! from it on demand with the tables the header selects. Why the wire form rather than the
//! text: the alphabet module decodes with national language tables but encodes with the
//! default ones only, and the gateway's fingerprints hash what was received.
//!
//! Lengths: TP-UDL counts septets for uncompressed GSM 7-bit, octets otherwise. With a header
//! and GSM 7-bit, TP-UDL counts the header's septets too, and fill bits after the header put
//! the first character on a septet boundary (§9.2.3.24). A UDL that promises more than the
//! PDU holds, or a header longer than the user data, is a typed error, never a panic; octets
//! after the user data are ignored (some modems pad).

use crate::alphabet::gsm7;
use crate::alphabet::{packing, ucs2};
use crate::cursor::Reader;
use crate::dcs::{DataCodingScheme, Encoding};
use crate::error::{DecodeError, EncodeError, Field, LengthUnit};
use crate::udh::UserDataHeader;

/// The most octets TP-UD may take in a TPDU (TS 23.040 §9.2.3.24).
pub const MAX_USER_DATA_OCTETS: usize = 140;

/// The user data after the header, in wire form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    /// GSM 7-bit: unpacked septets (0..=127), escape codes included.
    Septets(Vec<u8>),
    /// UCS-2: UTF-16BE octets as received (an odd count is possible on bad input).
    Ucs2(Vec<u8>),
    /// 8-bit data: octets with no character meaning.
    Octets(Vec<u8>),
    /// Compressed user data (TS 23.042): kept raw, never decompressed.
    Compressed(Vec<u8>),
}

/// TP-UD with its optional header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserData {
    /// The user data header; `Some` exactly when TP-UDHI is set.
    pub header: Option<UserDataHeader>,
    /// The payload after the header.
    pub payload: Payload,
}

impl Default for UserData {
    /// Empty GSM 7-bit user data.
    fn default() -> Self {
        Self {
            header: None,
            payload: Payload::Septets(Vec::new()),
        }
    }
}

/// Fill bits after a header of `header_octets` octets (UDHL included) so that septets start
/// on a septet boundary, and the septets header plus fill take.
fn septet_alignment(header_octets: usize) -> (u8, usize) {
    let header_septets = (header_octets * 8).div_ceil(7);
    // 0..=6 by construction.
    let fill = (header_septets * 7 - header_octets * 8) as u8;
    (fill, header_septets)
}

impl UserData {
    /// GSM 7-bit user data for `text` with the default alphabet and extension table.
    pub fn gsm7(text: &str) -> Result<Self, EncodeError> {
        let septets = gsm7::encode(text).map_err(|e| EncodeError::Unencodable {
            character: e.character,
            index: e.index,
        })?;
        Ok(Self {
            header: None,
            payload: Payload::Septets(septets),
        })
    }

    /// UCS-2 (UTF-16BE) user data for `text`.
    pub fn ucs2(text: &str) -> Self {
        Self {
            header: None,
            payload: Payload::Ucs2(ucs2::encode(text)),
        }
    }

    /// 8-bit user data.
    pub fn octets(data: impl Into<Vec<u8>>) -> Self {
        Self {
            header: None,
            payload: Payload::Octets(data.into()),
        }
    }

    /// The same user data with `header` in front.
    pub fn with_header(mut self, header: UserDataHeader) -> Self {
        self.header = Some(header);
        self
    }

    /// The encoding the payload is in (compressed data reports 8-bit: it has no characters).
    pub fn encoding(&self) -> Encoding {
        match self.payload {
            Payload::Septets(_) => Encoding::Gsm7,
            Payload::Ucs2(_) => Encoding::Ucs2,
            Payload::Octets(_) | Payload::Compressed(_) => Encoding::EightBit,
        }
    }

    /// The text, for GSM 7-bit (with the header's shift tables) and UCS-2; `None` for 8-bit
    /// and compressed data, which have no characters to show.
    pub fn text(&self) -> Option<String> {
        match &self.payload {
            Payload::Septets(septets) => {
                let tables = self
                    .header
                    .as_ref()
                    .map(UserDataHeader::shift_tables)
                    .unwrap_or_default();
                Some(gsm7::decode(septets, tables))
            }
            Payload::Ucs2(octets) => Some(ucs2::decode(octets)),
            Payload::Octets(_) | Payload::Compressed(_) => None,
        }
    }

    /// The payload's octets for 8-bit, UCS-2 and compressed data, or the unpacked septets.
    pub fn payload_bytes(&self) -> &[u8] {
        match &self.payload {
            Payload::Septets(b)
            | Payload::Ucs2(b)
            | Payload::Octets(b)
            | Payload::Compressed(b) => b,
        }
    }

    fn header_octets(&self) -> usize {
        self.header.as_ref().map_or(0, UserDataHeader::octet_len)
    }

    /// The TP-UDL value: septets (header included) for GSM 7-bit, octets otherwise. May exceed
    /// 255 for user data too long to encode.
    pub fn length(&self) -> usize {
        let header = self.header_octets();
        match &self.payload {
            Payload::Septets(s) => {
                let header_septets = if header == 0 {
                    0
                } else {
                    septet_alignment(header).1
                };
                header_septets + s.len()
            }
            Payload::Ucs2(b) | Payload::Octets(b) | Payload::Compressed(b) => header + b.len(),
        }
    }

    /// Octets TP-UD takes on the wire.
    pub fn octet_len(&self) -> usize {
        match &self.payload {
            Payload::Septets(_) => (self.length() * 7).div_ceil(8),
            _ => self.length(),
        }
    }

    /// Reads TP-UDL and TP-UD. `dcs` decides the unit and payload kind; `udhi` whether a
    /// header leads the data.
    pub(crate) fn read(
        r: &mut Reader<'_>,
        dcs: DataCodingScheme,
        udhi: bool,
    ) -> Result<Self, DecodeError> {
        let length = r.u8(Field::UserDataLength)?;
        let septets = dcs.encoding() == Encoding::Gsm7 && !dcs.is_compressed();
        let (unit, needed) = if septets {
            (LengthUnit::Septets, (usize::from(length) * 7).div_ceil(8))
        } else {
            (LengthUnit::Octets, usize::from(length))
        };
        let start = r.offset();
        if r.remaining() < needed {
            return Err(DecodeError::UserDataTruncated {
                length,
                unit,
                needed,
                remaining: r.remaining(),
                offset: start,
            });
        }
        let data = r.take(needed, Field::UserData)?;

        // The header, when flagged and when there is user data to hold it. TP-UDHI with
        // TP-UDL 0 carries no header; it is read as none rather than refused.
        let mut header = None;
        let mut body = data;
        let mut header_octets = 0;
        let flagged = if udhi { data.split_first() } else { None };
        if let Some((&udhl, rest)) = flagged {
            header_octets = 1 + usize::from(udhl);
            // Whole octets the user data holds: for septets, only the bits TP-UDL covers.
            let available = if septets {
                usize::from(length) * 7 / 8
            } else {
                data.len()
            };
            let elements = rest
                .get(..usize::from(udhl))
                .filter(|_| header_octets <= available);
            let Some(elements) = elements else {
                return Err(DecodeError::HeaderExceedsUserData {
                    header_length: udhl,
                    needed: header_octets,
                    available,
                    offset: start,
                });
            };
            header = Some(UserDataHeader::parse(elements, start)?);
            body = rest.get(usize::from(udhl)..).unwrap_or_default();
        }

        let payload = if septets {
            let (fill, header_septets) = if header_octets == 0 {
                (0, 0)
            } else {
                septet_alignment(header_octets)
            };
            // header_octets * 8 <= length * 7 was checked, so header_septets <= length.
            let count = usize::from(length).saturating_sub(header_septets);
            let unpacked =
                packing::unpack(body, fill, count).ok_or(DecodeError::UserDataTruncated {
                    length,
                    unit,
                    needed,
                    remaining: data.len(),
                    offset: start,
                })?;
            Payload::Septets(unpacked)
        } else if dcs.is_compressed() {
            Payload::Compressed(body.to_vec())
        } else if dcs.encoding() == Encoding::Ucs2 {
            Payload::Ucs2(body.to_vec())
        } else {
            Payload::Octets(body.to_vec())
        };
        Ok(Self { header, payload })
    }

    /// Writes TP-UDL and TP-UD. The caller sets TP-UDHI from `header.is_some()` and a TP-DCS
    /// that matches the payload kind.
    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let octets = self.octet_len();
        let length = self.length();
        if octets > MAX_USER_DATA_OCTETS || length > 255 {
            return Err(EncodeError::UserDataTooLong {
                octets,
                max: MAX_USER_DATA_OCTETS,
            });
        }
        let header_bytes = self
            .header
            .as_ref()
            .map(UserDataHeader::to_bytes)
            .unwrap_or_default();
        if header_bytes.len() > MAX_USER_DATA_OCTETS {
            return Err(EncodeError::HeaderTooLong {
                octets: header_bytes.len(),
                max: MAX_USER_DATA_OCTETS,
            });
        }
        // Checked above: length <= 255.
        out.push(u8::try_from(length).unwrap_or(u8::MAX));
        out.extend_from_slice(&header_bytes);
        match &self.payload {
            Payload::Septets(septets) => {
                let fill = if header_bytes.is_empty() {
                    0
                } else {
                    septet_alignment(header_bytes.len()).0
                };
                let masked: Vec<u8> = septets.iter().map(|s| s & 0x7F).collect();
                out.extend_from_slice(&packing::pack(&masked, fill));
            }
            Payload::Ucs2(b) | Payload::Octets(b) | Payload::Compressed(b) => {
                out.extend_from_slice(b)
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::decode_hex;
    use crate::udh::{Concat, ReferenceWidth};

    fn read(hex: &str, dcs: u8, udhi: bool) -> Result<UserData, DecodeError> {
        let bytes = decode_hex(hex).unwrap_or_default();
        UserData::read(&mut Reader::new(&bytes), DataCodingScheme(dcs), udhi)
    }

    #[test]
    fn fill_bits_align_septets_after_the_header() {
        assert_eq!(septet_alignment(6), (1, 7));
        assert_eq!(septet_alignment(7), (0, 8));
        assert_eq!(septet_alignment(1), (6, 2));
    }

    #[test]
    fn hellohello_is_ten_septets() {
        let ud = read("0AE8329BFD4697D9EC37", 0x00, false);
        assert_eq!(ud.as_ref().map(UserData::length), Ok(10));
        assert_eq!(ud.map(|u| u.text()), Ok(Some("hellohello".to_owned())));
    }

    #[test]
    fn a_udl_beyond_the_data_reads_like_a_sentence() {
        let e = read("A0E8329BFD4697D9EC37E8329B", 0x00, false);
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err(
                "user data length 160 septets needs 140 octets but only 12 remain (at octet 1)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_header_beyond_the_user_data_is_refused() {
        assert!(matches!(
            read("0408050003", 0x04, true),
            Err(DecodeError::HeaderExceedsUserData {
                header_length: 8,
                needed: 9,
                available: 4,
                ..
            })
        ));
        // Six septets hold 42 bits: not enough for a 6-octet header.
        assert!(matches!(
            read("06050003010201", 0x00, true),
            Err(DecodeError::HeaderExceedsUserData { .. })
        ));
    }

    #[test]
    fn udhi_with_no_user_data_means_no_header() {
        assert_eq!(read("00", 0x00, true).map(|u| u.header), Ok(None));
    }

    #[test]
    fn octets_after_the_user_data_are_ignored() {
        assert_eq!(
            read("0241420000", 0x04, false).map(|u| u.payload),
            Ok(Payload::Octets(vec![0x41, 0x42]))
        );
    }

    #[test]
    fn eight_bit_with_header_keeps_the_body_as_bytes() {
        let ud = read("08050003070201FFEE", 0xF4, true);
        assert_eq!(
            ud.as_ref().map(|u| u.payload.clone()),
            Ok(Payload::Octets(vec![0xFF, 0xEE]))
        );
        assert_eq!(ud.as_ref().map(|u| u.text()), Ok(None));
        assert_eq!(
            ud.ok().and_then(|u| u.header).and_then(|h| h.concat()),
            Some(Concat {
                reference: 7,
                width: ReferenceWidth::Bits8,
                total: 2,
                seq: 1
            })
        );
    }

    #[test]
    fn compressed_data_is_kept_raw_with_octet_length() {
        assert_eq!(
            read("03010203", 0x20, false).map(|u| u.payload),
            Ok(Payload::Compressed(vec![1, 2, 3]))
        );
    }

    #[test]
    fn too_long_user_data_does_not_encode() {
        let ud = UserData::octets(vec![0; 141]);
        assert_eq!(
            ud.write(&mut Vec::new()),
            Err(EncodeError::UserDataTooLong {
                octets: 141,
                max: 140
            })
        );
    }

    #[test]
    fn gsm7_with_header_writes_udl_in_septets_including_the_header() {
        let concat = Concat {
            reference: 1,
            width: ReferenceWidth::Bits8,
            total: 2,
            seq: 1,
        };
        let ud = UserData {
            header: Some(UserDataHeader::with_concat(concat)),
            payload: Payload::Septets(vec![0x41; 153]),
        };
        assert_eq!(ud.length(), 160);
        assert_eq!(ud.octet_len(), 140);
    }
}
