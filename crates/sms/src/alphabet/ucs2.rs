//! UCS-2 user data, read as UTF-16BE so surrogate pairs (emoji) survive (TS 23.038 §6.2.3).
//!
//! Why UTF-16 and not strict UCS-2: TS 23.038 names UCS-2, but every handset since long ago
//! sends characters outside the BMP as surrogate pairs, and a concatenated message may split a
//! pair across two parts (so [`decode`] of one part alone sees a lone surrogate). Decoding is
//! lossy but total (promise 5): a message with one bad unit is stored with U+FFFD in its
//! place rather than rejected. Encoding is exact: every `char` has a UTF-16 form.

/// Decodes UTF-16BE; a lone surrogate or an odd trailing byte becomes U+FFFD, never an error,
/// because a message with one bad character must still be stored.
pub fn decode(bytes: &[u8]) -> String {
    let pairs = bytes.chunks_exact(2);
    let odd_byte = !pairs.remainder().is_empty();
    let units = pairs.map(|pair| match *pair {
        [high, low] => u16::from_be_bytes([high, low]),
        // `chunks_exact(2)` only yields two-byte chunks.
        _ => 0xFFFD,
    });
    let mut text: String = char::decode_utf16(units)
        .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if odd_byte {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

/// Encodes text as UTF-16BE.
pub fn encode(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// UTF-16 code units `c` takes: 1, or 2 for a surrogate pair.
pub fn units_for(c: char) -> usize {
    c.len_utf16()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bmp_characters_take_one_unit_each() {
        assert_eq!(encode("A€ж"), vec![0x00, 0x41, 0x20, 0xAC, 0x04, 0x36]);
        assert_eq!(decode(&[0x00, 0x41, 0x20, 0xAC, 0x04, 0x36]), "A€ж");
        assert_eq!(units_for('A'), 1);
        assert_eq!(units_for('€'), 1);
    }

    #[test]
    fn an_emoji_is_a_surrogate_pair() {
        assert_eq!(encode("😀"), vec![0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(decode(&[0xD8, 0x3D, 0xDE, 0x00]), "😀");
        assert_eq!(units_for('😀'), 2);
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        // A high surrogate followed by a BMP character, as when a pair is split across parts.
        assert_eq!(decode(&[0xD8, 0x3D, 0x00, 0x41]), "\u{FFFD}A");
        // A high surrogate at the end.
        assert_eq!(decode(&[0x00, 0x41, 0xD8, 0x3D]), "A\u{FFFD}");
        // A low surrogate with no high one before it.
        assert_eq!(decode(&[0xDE, 0x00, 0x00, 0x42]), "\u{FFFD}B");
        // Two high surrogates, then a low one: the first is lone, the second pairs.
        assert_eq!(decode(&[0xD8, 0x3D, 0xD8, 0x3D, 0xDE, 0x00]), "\u{FFFD}😀");
    }

    #[test]
    fn an_odd_trailing_byte_becomes_a_replacement_character() {
        assert_eq!(decode(&[0x00, 0x41, 0x00]), "A\u{FFFD}");
        assert_eq!(decode(&[0x41]), "\u{FFFD}");
        assert_eq!(decode(&[]), "");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_text_round_trips(text in any::<String>()) {
            let bytes = encode(&text);
            let units: usize = text.chars().map(units_for).sum();
            prop_assert_eq!(bytes.len(), 2 * units);
            prop_assert_eq!(decode(&bytes), text);
        }

        #[test]
        fn decode_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = decode(&bytes);
            // At most one char per code unit, plus one for an odd byte.
            prop_assert!(text.chars().count() <= bytes.len().div_ceil(2));
        }
    }
}
