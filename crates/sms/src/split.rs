//! Splitting a text into SMS parts (TS 23.040 §9.2.3.24.1 concatenation; TS 23.038 for the
//! character counts).
//!
//! GSM 7-bit when every character is in the default alphabet or its extension table
//! (extension characters cost two septets, escape included), UCS-2 otherwise. One part holds
//! 160 septets or 70 UCS-2 units; once concatenation is needed its header takes room and each
//! part holds 153 septets / 67 units with an 8-bit reference, 152 / 66 with a 16-bit one.
//! Parts are cut between characters only, so an escape pair or a surrogate pair never
//! straddles two parts, and each part decodes on its own. National language tables are not
//! used for sending: every phone reads the default alphabet.

use crate::alphabet::{gsm7, ucs2};
use crate::dcs::Encoding;
use crate::error::SplitError;
use crate::udh::ReferenceWidth;

/// The most parts a concatenated message can have (the part count is one octet).
pub const MAX_PARTS: usize = 255;

/// A text cut into parts, each small enough for one SMS.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Split {
    /// The encoding every part uses.
    pub encoding: Encoding,
    /// The parts' texts, in order; one (possibly empty) part at least.
    pub parts: Vec<String>,
}

/// Characters (septets or UTF-16 units) one part holds, for `encoding`, depending on whether
/// the message needs concatenation and how wide its reference is.
pub fn part_capacity(encoding: Encoding, concatenated: bool, width: ReferenceWidth) -> usize {
    let header = if concatenated {
        width.header_octets()
    } else {
        0
    };
    match encoding {
        // Septets: the header and its fill bits take whole septets.
        Encoding::Gsm7 => (140 * 8 - (header * 8).div_ceil(7) * 7) / 7,
        Encoding::Ucs2 => (140 - header) / 2,
        Encoding::EightBit => 140 - header,
    }
}

/// Splits `text` with 8-bit concatenation references.
pub fn split_text(text: &str) -> Result<Split, SplitError> {
    split_text_with(text, ReferenceWidth::Bits8)
}

/// Splits `text` for concatenation references of `width`.
pub fn split_text_with(text: &str, width: ReferenceWidth) -> Result<Split, SplitError> {
    let gsm7_costs: Option<Vec<usize>> = text.chars().map(gsm7::septets_for).collect();
    let (encoding, costs) = match gsm7_costs {
        Some(costs) => (Encoding::Gsm7, costs),
        None => (Encoding::Ucs2, text.chars().map(ucs2::units_for).collect()),
    };
    let total: usize = costs.iter().sum();
    if total <= part_capacity(encoding, false, width) {
        return Ok(Split {
            encoding,
            parts: vec![text.to_owned()],
        });
    }
    let limit = part_capacity(encoding, true, width);
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for (c, cost) in text.chars().zip(costs) {
        if used + cost > limit {
            parts.push(std::mem::take(&mut current));
            used = 0;
            if parts.len() >= MAX_PARTS {
                // Greedy cutting needs at least ceil(total / limit) parts; the exact count is
                // not worth finishing the cut for.
                return Err(SplitError::TooManyParts {
                    parts: total.div_ceil(limit).max(MAX_PARTS + 1),
                    max: MAX_PARTS,
                });
            }
        }
        current.push(c);
        used += cost;
    }
    parts.push(current);
    Ok(Split { encoding, parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_follow_the_header_size() {
        use ReferenceWidth::{Bits8, Bits16};
        assert_eq!(part_capacity(Encoding::Gsm7, false, Bits8), 160);
        assert_eq!(part_capacity(Encoding::Gsm7, true, Bits8), 153);
        assert_eq!(part_capacity(Encoding::Gsm7, true, Bits16), 152);
        assert_eq!(part_capacity(Encoding::Ucs2, false, Bits8), 70);
        assert_eq!(part_capacity(Encoding::Ucs2, true, Bits8), 67);
        assert_eq!(part_capacity(Encoding::Ucs2, true, Bits16), 66);
        assert_eq!(part_capacity(Encoding::EightBit, true, Bits8), 134);
    }

    #[test]
    fn empty_text_is_one_empty_part() {
        assert_eq!(
            split_text(""),
            Ok(Split {
                encoding: Encoding::Gsm7,
                parts: vec![String::new()]
            })
        );
    }

    #[test]
    fn a_160_character_text_is_one_part_and_161_is_two() {
        let s = split_text(&"a".repeat(160));
        assert_eq!(s.as_ref().map(|s| s.parts.len()), Ok(1));
        let s = split_text(&"a".repeat(161));
        assert_eq!(
            s.map(|s| s.parts.iter().map(|p| p.len()).collect::<Vec<_>>()),
            Ok(vec![153, 8])
        );
    }

    #[test]
    fn extension_characters_count_two_and_are_never_cut() {
        // 152 plain characters then a euro sign: 154 septets, so the euro moves to part two.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let s = split_text(&text).expect("splits");
        assert_eq!(s.encoding, Encoding::Gsm7);
        assert_eq!(s.parts.first().map(|p| p.chars().count()), Some(152));
        assert!(s.parts.get(1).is_some_and(|p| p.starts_with('€')));
        // 80 euro signs = 160 septets: still one part.
        assert_eq!(split_text(&"€".repeat(80)).map(|s| s.parts.len()), Ok(1));
    }

    #[test]
    fn one_character_outside_gsm7_makes_everything_ucs2() {
        let s = split_text("hello 世界").expect("splits");
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(s.parts, vec!["hello 世界".to_owned()]);
        let s = split_text(&"世".repeat(71)).expect("splits");
        assert_eq!(
            s.parts
                .iter()
                .map(|p| p.chars().count())
                .collect::<Vec<_>>(),
            vec![67, 4]
        );
    }

    #[test]
    fn surrogate_pairs_are_never_cut() {
        // 66 units of CJK then an emoji (2 units): 68 > 67, so the emoji starts part two.
        let text = format!("{}😀{}", "世".repeat(66), "世".repeat(10));
        let s = split_text(&text).expect("splits");
        assert_eq!(s.parts.first().map(|p| p.chars().count()), Some(66));
        assert!(s.parts.get(1).is_some_and(|p| p.starts_with('😀')));
    }

    #[test]
    fn sixteen_bit_references_leave_one_less_character() {
        let s = split_text_with(&"a".repeat(161), ReferenceWidth::Bits16);
        assert_eq!(s.map(|s| s.parts.first().map(String::len)), Ok(Some(152)));
    }

    #[test]
    fn more_than_255_parts_is_an_error() {
        assert!(split_text(&"a".repeat(153 * 255)).is_ok());
        assert_eq!(
            split_text(&"a".repeat(153 * 255 + 1)),
            Err(SplitError::TooManyParts {
                parts: 256,
                max: 255
            })
        );
        assert!(matches!(
            split_text(&"a".repeat(153 * 1000)),
            Err(SplitError::TooManyParts { parts: 1000, .. })
        ));
    }
}
