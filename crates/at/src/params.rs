//! Splitting AT parameter lists: `"SM",3`, `,24`, `(0-2),(0,1)`, `("SM","ME"),("SM")`.
//!
//! Why: every `cmd/` parser starts by cutting the text after `+XXX: ` into parameters, and
//! commas inside quoted strings (`"Balance: 1,50"`) or parenthesised lists (`(0,2)`) must
//! not cut. V.250 §5.7.3 gives the shape of information text and §5.7.4 the range lists
//! that test commands (`=?`) answer with.
//!
//! Never panics and never fails on splitting: an unterminated quote or parenthesis just
//! runs to the end of the line. Typed failures come from the value parsers, which name the
//! line and field in a [`ParseError`].

use crate::ParseError;

/// Splits `text` at the commas that are outside double quotes and parentheses, trimming
/// spaces around each item. An empty input gives no items; `,5` gives `["", "5"]`.
pub fn split(text: &str) -> Vec<&str> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                items.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(text[start..].trim());
    items
}

/// Removes one pair of surrounding double quotes, if present.
pub fn unquote(item: &str) -> &str {
    let item = item.trim();
    item.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(item)
}

/// Removes one pair of surrounding parentheses, if present.
pub fn unparen(item: &str) -> &str {
    let item = item.trim();
    item.strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(item)
}

/// The text after `prefix:` on an information line (`+CSQ: 17,99` → `17,99`), or `None` if
/// the line has another prefix. The prefix compares case-insensitively; the space after the
/// colon is optional, as modems differ.
pub fn after_prefix<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    line[prefix.len()..]
        .trim_start()
        .strip_prefix(':')
        .map(str::trim)
}

/// Parses a range list such as `(0-2)`, `(0,2)`, `(0-2,4)`, `0-3` or `()` into its values,
/// in order and without duplicates. Ranges larger than 1024 values are refused (no modem
/// lists that many) so a hostile line cannot allocate without bound.
pub fn range_list(item: &str, line: &str, field: &'static str) -> Result<Vec<u32>, ParseError> {
    let invalid = || ParseError::InvalidField {
        line: line.to_owned(),
        field,
        value: item.to_owned(),
    };
    let mut values = Vec::new();
    for part in unparen(item).split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let (low, high) = match part.split_once('-') {
            Some((low, high)) => (low.trim(), high.trim()),
            None => (part, part),
        };
        let low: u32 = low.parse().map_err(|_| invalid())?;
        let high: u32 = high.parse().map_err(|_| invalid())?;
        if low > high || high - low > 1024 {
            return Err(invalid());
        }
        for value in low..=high {
            if !values.contains(&value) {
                values.push(value);
            }
        }
    }
    Ok(values)
}

/// Parses a mandatory decimal parameter.
pub fn number<T: std::str::FromStr>(
    item: Option<&&str>,
    line: &str,
    field: &'static str,
) -> Result<T, ParseError> {
    match optional_number(item, line, field)? {
        Some(value) => Ok(value),
        None => Err(ParseError::MissingField {
            line: line.to_owned(),
            field,
        }),
    }
}

/// Parses an optional decimal parameter: absent or empty gives `None`. Quotes around the
/// number are tolerated (some firmwares quote everything).
pub fn optional_number<T: std::str::FromStr>(
    item: Option<&&str>,
    line: &str,
    field: &'static str,
) -> Result<Option<T>, ParseError> {
    let Some(raw) = item.map(|s| unquote(s)).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    raw.parse().map(Some).map_err(|_| ParseError::InvalidField {
        line: line.to_owned(),
        field,
        value: raw.to_owned(),
    })
}

/// An optional string parameter: absent or empty (`,,` or `""`) gives `None`.
pub fn optional_string(item: Option<&&str>) -> Option<String> {
    item.map(|s| unquote(s))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Whether `text` is a non-empty run of hex digits: the shape of a PDU line.
pub fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_inside_quotes_and_parentheses_do_not_split() {
        assert_eq!(split(r#""SM",3"#), vec![r#""SM""#, "3"]);
        assert_eq!(
            split(r#"0,"Balance: 1,50 EUR",15"#),
            vec!["0", r#""Balance: 1,50 EUR""#, "15"]
        );
        assert_eq!(split("(0-2),(0,2), (1)"), vec!["(0-2)", "(0,2)", "(1)"]);
        assert_eq!(split(",24"), vec!["", "24"]);
        assert_eq!(split(""), Vec::<&str>::new());
    }

    #[test]
    fn unterminated_quotes_run_to_the_end_without_panicking() {
        assert_eq!(split(r#""abc,def"#), vec![r#""abc,def"#]);
        assert_eq!(unquote(r#""abc"#), r#""abc"#);
        assert_eq!(split("((,)"), vec!["((,)"]);
    }

    #[test]
    fn prefixes_match_case_insensitively_with_or_without_a_space() {
        assert_eq!(after_prefix("+CSQ: 17,99", "+CSQ"), Some("17,99"));
        assert_eq!(after_prefix("+csq:17,99", "+CSQ"), Some("17,99"));
        assert_eq!(after_prefix("+CSQN: 1", "+CSQ"), None);
        assert_eq!(after_prefix("+CS", "+CSQ"), None);
        assert_eq!(after_prefix("é+CSQ", "+CSQ"), None);
    }

    #[test]
    fn range_lists_expand_ranges_and_singles() {
        assert_eq!(range_list("(0-2)", "", "f"), Ok(vec![0, 1, 2]));
        assert_eq!(range_list("(0,2)", "", "f"), Ok(vec![0, 2]));
        assert_eq!(range_list("(0-1,3)", "", "f"), Ok(vec![0, 1, 3]));
        assert_eq!(range_list("()", "", "f"), Ok(Vec::<u32>::new()));
        assert!(range_list("(a-b)", "", "f").is_err());
        assert!(range_list("(3-1)", "", "f").is_err());
        assert!(range_list("(0-4000000000)", "", "f").is_err());
    }

    #[test]
    fn numbers_report_the_field_and_line_when_invalid() {
        let items = split("x,");
        assert_eq!(
            number::<u8>(items.first(), "+T: x,", "<a>"),
            Err(ParseError::InvalidField {
                line: "+T: x,".into(),
                field: "<a>",
                value: "x".into()
            })
        );
        assert_eq!(
            number::<u8>(items.get(1), "+T: x,", "<b>"),
            Err(ParseError::MissingField {
                line: "+T: x,".into(),
                field: "<b>"
            })
        );
        assert_eq!(
            optional_number::<u8>(Some(&"\"7\""), "", "<c>"),
            Ok(Some(7))
        );
    }
}
