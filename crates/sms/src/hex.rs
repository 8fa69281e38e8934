//! Hex text as `AT+CMGL`, `AT+CMGR` and `+CDS` print PDUs (TS 27.005 §3.1: "hexadecimal format
//! ... two IRA characters per octet"), and as `AT+CMGS` takes them.
//!
//! Decoding accepts upper and lower case and ignores ASCII whitespace anywhere (a line's CR LF,
//! or a PDU pasted in groups); anything else is a typed [`DecodeError`] with the position.
//! Encoding writes upper case, which every modem accepts.

use crate::error::DecodeError;

/// Turns hex text into octets.
///
/// Errors: [`DecodeError::Empty`] for no digits, [`DecodeError::InvalidHex`] for a character
/// that is neither a hex digit nor whitespace, [`DecodeError::OddHexLength`] for a dangling
/// digit.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for (position, character) in text.chars().enumerate() {
        if character.is_ascii_whitespace() {
            continue;
        }
        let Some(value) = character.to_digit(16) else {
            return Err(DecodeError::InvalidHex {
                character,
                position,
                offset: digits / 2,
            });
        };
        // `to_digit(16)` is below 16, so the cast cannot truncate.
        let value = value as u8;
        digits += 1;
        match high.take() {
            None => high = Some(value),
            Some(h) => out.push((h << 4) | value),
        }
    }
    if high.is_some() {
        return Err(DecodeError::OddHexLength { digits });
    }
    if out.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(out)
}

/// Writes octets as upper-case hex with no separators.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_in_upper_case() {
        assert_eq!(decode_hex("00ff7a").as_deref(), Ok(&[0x00, 0xFF, 0x7A][..]));
        assert_eq!(encode_hex(&[0x00, 0xFF, 0x7A]), "00FF7A");
    }

    #[test]
    fn whitespace_anywhere_is_ignored() {
        assert_eq!(decode_hex(" 07 91\r\n").as_deref(), Ok(&[0x07, 0x91][..]));
    }

    #[test]
    fn odd_length_is_an_error_naming_the_digit_count() {
        assert_eq!(
            decode_hex("079"),
            Err(DecodeError::OddHexLength { digits: 3 })
        );
    }

    #[test]
    fn a_non_hex_character_reports_its_position_and_octet() {
        assert_eq!(
            decode_hex("0791Zz"),
            Err(DecodeError::InvalidHex {
                character: 'Z',
                position: 4,
                offset: 2
            })
        );
        assert!(matches!(
            decode_hex("07é1"),
            Err(DecodeError::InvalidHex { position: 2, .. })
        ));
    }

    #[test]
    fn empty_text_is_an_empty_pdu() {
        assert_eq!(decode_hex(" \n"), Err(DecodeError::Empty));
    }
}
