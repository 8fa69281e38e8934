//! Transliteration into the GSM 7-bit default alphabet, to keep a text in 7-bit when its only
//! non-GSM characters have close equivalents.
//!
//! Why: one character outside the default alphabet and its extension table switches the whole
//! message to UCS-2, which cuts a part from 160 to 70 characters (153 to 67 when
//! concatenated). The usual culprits are invisible to the person who wrote the text: a
//! typographic apostrophe pasted from a word processor, an en dash, a non-breaking space, an
//! `á` where the table only has `à`. Replacing those with their plain forms typically halves
//! (or better) the parts, and so the cost, of such a message.
//!
//! What is replaced: typographic quotes, dashes and spaces, invisible format characters
//! (removed), a few letters with an obvious Latin spelling (`ł`, `œ`, `ß` is already GSM),
//! and whatever Unicode's compatibility decomposition (NFKD) turns into GSM characters once its
//! accents are dropped (`á` → `a`, `ő` → `o`, `…` → `...`, `ﬁ` → `fi`, full-width forms). A
//! character that is already in the GSM alphabet is never touched (`é`, `ñ`, `Ä`, `€` stay).
//!
//! What is not: if any character has no close equivalent (emoji, Cyrillic, Greek small
//! letters, CJK), the text is left exactly as written, because a half-transliterated message
//! still needs UCS-2 and would only have lost information.

use crate::alphabet::gsm7::septets_for;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Whether and how a text fits the GSM 7-bit default alphabet (with its extension table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gsm7Fit {
    /// Every character is already in the default alphabet or its extension: send as written.
    Already,
    /// The text with close equivalents substituted; every character of `text` fits.
    Transliterated {
        /// The 7-bit text to send instead.
        text: String,
        /// How many characters of the original were replaced or removed.
        replaced: usize,
    },
    /// `character` has no close equivalent, so the text needs UCS-2 as written.
    NeedsUcs2 {
        /// The first character that cannot be represented.
        character: char,
    },
}

/// Tells whether `text` fits GSM 7-bit, after transliteration if need be (see the module docs
/// for what is replaced).
///
/// ```
/// use conductor_sms::transliterate::{fit_gsm7, Gsm7Fit};
/// assert_eq!(fit_gsm7("Café à 5 €"), Gsm7Fit::Already);
/// assert_eq!(
///     fit_gsm7("It’s ready – at José’s"), // é is GSM: it stays
///     Gsm7Fit::Transliterated { text: "It's ready - at José's".into(), replaced: 3 }
/// );
/// assert_eq!(fit_gsm7("Привет"), Gsm7Fit::NeedsUcs2 { character: 'П' });
/// ```
pub fn fit_gsm7(text: &str) -> Gsm7Fit {
    if text.chars().all(is_gsm7) {
        return Gsm7Fit::Already;
    }
    // NFC first, so that a letter typed as base + combining accent (`e` + U+0301) becomes the
    // precomposed `é` that the GSM table has, instead of losing its accent below.
    let composed: String = text.nfc().collect();
    let mut out = String::with_capacity(composed.len());
    let mut replaced = 0;
    for character in composed.chars() {
        if is_gsm7(character) {
            out.push(character);
            continue;
        }
        match equivalent(character) {
            Some(plain) => {
                out.push_str(&plain);
                replaced += 1;
            }
            None => return Gsm7Fit::NeedsUcs2 { character },
        }
    }
    // NFC alone may have made the text fit (`e` + U+0301 → `é`): count what it merged.
    replaced += text
        .chars()
        .count()
        .saturating_sub(composed.chars().count());
    Gsm7Fit::Transliterated {
        text: out,
        replaced,
    }
}

/// Whether `c` is in the default alphabet or its extension table.
fn is_gsm7(c: char) -> bool {
    septets_for(c).is_some()
}

/// The GSM spelling of a character outside the alphabet, or `None` when there is no close one.
fn equivalent(character: char) -> Option<String> {
    if let Some(plain) = typographic(character) {
        return Some(plain.to_owned());
    }
    // Compatibility decomposition, accents dropped; each piece must then be GSM (possibly
    // through the typographic table: NFKD of U+2033 is two U+2032 primes).
    let mut plain = String::new();
    for piece in std::iter::once(character).nfkd() {
        if is_combining_mark(piece) {
            continue;
        }
        if is_gsm7(piece) {
            plain.push(piece);
        } else if let Some(p) = typographic(piece) {
            plain.push_str(p);
        } else {
            return None;
        }
    }
    // A character that decomposes to nothing but marks (a lone combining accent) is dropped.
    Some(plain)
}

/// Characters that Unicode does not decompose but that have an obvious plain form; `""` for
/// invisible format characters, which are removed.
fn typographic(c: char) -> Option<&'static str> {
    Some(match c {
        // Apostrophes, single quotes, primes and the backtick (not in the GSM table).
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{00B4}' | '`' => "'",
        // Double quotes, guillemets and double primes.
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
        | '\u{00BB}' => "\"",
        '\u{2039}' => "<",
        '\u{203A}' => ">",
        // Hyphens, dashes and the minus sign.
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' => "-",
        '\u{2022}' | '\u{2023}' | '\u{2043}' => "*",
        '\u{00B7}' => ".",
        '\u{00D7}' => "x",
        // Tab and other spaces that NFKD keeps as they are.
        '\t' | '\u{3000}' => " ",
        // Invisible: zero-width space/joiners, word joiner, byte-order mark, soft hyphen.
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => "",
        // Letters without a decomposition.
        'ł' => "l",
        'Ł' => "L",
        'đ' => "d",
        'Đ' => "D",
        'ı' => "i",
        'œ' => "oe",
        'Œ' => "OE",
        'þ' => "th",
        'Þ' => "Th",
        'ð' => "d",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::split_text;

    fn transliterated(text: &str) -> String {
        match fit_gsm7(text) {
            Gsm7Fit::Transliterated { text, .. } => text,
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn gsm_text_is_left_alone_including_its_accents_and_the_extension_table() {
        for text in [
            "Grüße aus Köln",
            "Ça coûte 5 € [promo]",
            "año, señor",
            "ÆØÅ æøå ΔΦΓ",
            "",
        ] {
            // `û` is not GSM: the French one must be transliterated, the rest not.
            let fit = fit_gsm7(text);
            if text.contains('û') {
                assert_eq!(transliterated(text), "Ça coute 5 € [promo]");
            } else {
                assert_eq!(fit, Gsm7Fit::Already, "{text:?}");
            }
        }
    }

    #[test]
    fn typographic_punctuation_and_spaces_become_plain() {
        assert_eq!(
            transliterated("“Quote” ‘single’ – dash — long … done\u{00A0}ok\u{200B}"),
            "\"Quote\" 'single' - dash - long ... done ok"
        );
        assert_eq!(
            transliterated("5\u{202F}000 × 2 ‹a› «b»"),
            "5 000 x 2 <a> \"b\""
        );
    }

    #[test]
    fn accented_letters_outside_the_table_lose_their_accent_only_when_needed() {
        assert_eq!(
            transliterated("á é í ó ú â ê õ ő ű ç"),
            "a é i o u a e o o u c"
        );
        assert_eq!(
            transliterated("Łódź Œuvre ﬁne ＡＢＣ"),
            "Lodz OEuvre fine ABC"
        );
        // A decomposed é (e + combining acute) is composed back, not stripped.
        assert_eq!(transliterated("cafe\u{301}"), "café");
    }

    #[test]
    fn one_character_without_an_equivalent_keeps_the_text_as_written() {
        assert_eq!(
            fit_gsm7("It’s fine 👍"),
            Gsm7Fit::NeedsUcs2 { character: '👍' }
        );
        assert_eq!(fit_gsm7("ok α"), Gsm7Fit::NeedsUcs2 { character: 'α' });
    }

    #[test]
    fn every_transliteration_is_pure_gsm() {
        let samples = [
            "Don’t forget: the meeting’s at 10–11 a.m. “Room B” …",
            "Straße, Gdańsk, São Paulo, Zürich, Ærø, Dvořák, Øresund",
        ];
        for text in samples {
            let out = transliterated(text);
            assert!(out.chars().all(is_gsm7), "{out:?}");
        }
    }

    #[test]
    fn a_typical_text_with_one_curly_apostrophe_needs_a_third_of_the_parts() {
        // 147 characters: one GSM part (160), three UCS-2 parts (67 each once concatenated).
        let text = "Hello Anna, your appointment at the clinic is confirmed for Tuesday at \
                    10:30. Please bring your insurance card. If you can’t make it, reply CANCEL.";
        let as_written = split_text(text).expect("splits").parts.len();
        let plain = split_text(&transliterated(text))
            .expect("splits")
            .parts
            .len();
        assert_eq!((as_written, plain), (3, 1));
    }

    proptest::proptest! {
        #[test]
        fn any_text_either_stays_or_becomes_pure_gsm(text in "\\PC{0,40}") {
            match fit_gsm7(&text) {
                Gsm7Fit::Already => proptest::prop_assert!(text.chars().all(is_gsm7)),
                Gsm7Fit::Transliterated { text: out, .. } => {
                    proptest::prop_assert!(out.chars().all(is_gsm7), "{:?}", out);
                }
                Gsm7Fit::NeedsUcs2 { character } => {
                    proptest::prop_assert!(text.contains(character) || !is_gsm7(character));
                }
            }
        }
    }
}
