//! The sending policy's vocabulary and its pure rules: recipient normalisation, opt-out
//! keywords, part estimates, and the settings the claim applies ([`ClaimPolicy`]).
//!
//! Why here, beside the store: the claim decides in one transaction whether a queued row goes
//! out, waits (a limit, quiet hours, its modem) or ends (`failed`, `blocked`, `expired`), and
//! the CLI and the API apply the same number and size rules before a row exists, so every
//! writer's rows get the same answer (issue 11). Nothing here reads a clock or a time zone:
//! the gateway turns quiet hours into an instant ([`ClaimPolicy::quiet_until`]).
//!
//! Limits count SMS *parts*, not messages: operators bill per part and their anti-spam
//! counters (the ones that block a SIM) count what goes on the air. Windows slide (the last
//! minute, hour, 24 hours; "month" is the last 30 days), so "when it frees" is exact: the
//! moment enough of the oldest usage leaves the window.

use std::collections::HashMap;
use std::time::Duration;

use conductor_sms::transliterate::{Gsm7Fit, fit_gsm7};
use jiff::Timestamp;
use serde::Serialize;

use crate::types::{MessageId, ModemId};

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// How recipients are normalised to international form (`numbers` in the config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NumberPolicy {
    /// The country code national numbers belong to (`+49`); None leaves national numbers as
    /// written (the network reads them in the SIM's home country).
    pub default_country_code: Option<String>,
    /// The national trunk prefix replaced by the country code (`0` in most of Europe).
    pub trunk_prefix: String,
    /// Short codes (3 to 6 digits, no `+`): service numbers, refused unless allowed.
    pub allow_short_codes: bool,
    /// Alphanumeric recipients (letters, up to 11 characters): refused unless allowed.
    pub allow_alphanumeric: bool,
}

impl Default for NumberPolicy {
    fn default() -> Self {
        Self {
            default_country_code: None,
            trunk_prefix: "0".to_owned(),
            allow_short_codes: false,
            allow_alphanumeric: false,
        }
    }
}

/// A recipient that cannot be a phone number under the policy, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{number:?} is not a phone number Conductor can send to: {reason}")]
pub struct BadNumber {
    /// The recipient as written.
    pub number: String,
    /// Why, and what to do.
    pub reason: String,
}

/// E.164: at most 15 digits after the `+`.
const MAX_DIGITS: usize = 15;
/// Below this many digits a number with a country code is not a subscriber number. Low on
/// purpose: E.164 sets no minimum, and test numbers (`+1555`) must keep working.
const MIN_INTERNATIONAL_DIGITS: usize = 4;

/// The recipient in international form (`+49151…`), or as allowed (short code, alphanumeric).
///
/// Spaces, dashes, dots, slashes and brackets go; `00` becomes `+`; a national number (trunk
/// prefix first) gets the default country code. What is left must be `+` and 4 to 15 digits,
/// a national number when no country is configured, a short code or an alphanumeric name when
/// the policy allows them.
pub fn normalize_recipient(raw: &str, policy: &NumberPolicy) -> Result<String, BadNumber> {
    let bad = |reason: String| BadNumber {
        number: raw.to_owned(),
        reason,
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(bad("the recipient is empty".to_owned()));
    }
    let stripped: String = trimmed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')' | '\u{a0}' | '\t'))
        .collect();
    if stripped.chars().any(|c| c.is_alphabetic()) {
        let alphanumeric = trimmed.chars().count() <= 11
            && trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ');
        return match (alphanumeric, policy.allow_alphanumeric) {
            (true, true) => Ok(trimmed.to_owned()),
            (true, false) => Err(bad(
                "letters: an alphanumeric recipient, which numbers.allow_alphanumeric does not \
                 allow; write the phone number instead"
                    .to_owned(),
            )),
            (false, _) => Err(bad(
                "it contains letters; write the phone number in international form (+49151…)"
                    .to_owned(),
            )),
        };
    }
    let (international, digits) = if let Some(rest) = stripped.strip_prefix('+') {
        (true, rest.to_owned())
    } else if let Some(rest) = stripped.strip_prefix("00") {
        (true, rest.to_owned())
    } else {
        (false, stripped.clone())
    };
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(bad(format!(
            "{c:?} is not a digit; a phone number is + and digits (+49151…)"
        )));
    }
    if digits.is_empty() {
        return Err(bad("no digits".to_owned()));
    }
    let check_international = |digits: &str| -> Result<String, BadNumber> {
        if digits.starts_with('0') {
            return Err(bad(
                "a country code never starts with 0; write +<country code><number>".to_owned(),
            ));
        }
        if digits.len() > MAX_DIGITS {
            return Err(bad(format!(
                "{} digits; an international number has at most {MAX_DIGITS} (E.164)",
                digits.len()
            )));
        }
        if digits.len() < MIN_INTERNATIONAL_DIGITS {
            return Err(bad(format!(
                "only {} digits after the country prefix; too short for a phone number",
                digits.len()
            )));
        }
        Ok(format!("+{digits}"))
    };
    if international {
        return check_international(&digits);
    }
    let trunk = policy.trunk_prefix.as_str();
    if !trunk.is_empty()
        && let Some(national) = digits.strip_prefix(trunk)
        && digits.len() > 6
    {
        return match &policy.default_country_code {
            Some(code) => {
                let code = code.trim().trim_start_matches('+');
                check_international(&format!("{code}{national}"))
            }
            // No home country configured: the network reads it as national, as before.
            None => Ok(digits),
        };
    }
    if digits.len() <= 6 {
        return if policy.allow_short_codes && digits.len() >= 3 {
            Ok(digits)
        } else if digits.len() >= 3 {
            Err(bad(format!(
                "{} digits: a short code, which numbers.allow_short_codes does not allow",
                digits.len()
            )))
        } else {
            Err(bad(format!(
                "only {} digits; too short for a phone number",
                digits.len()
            )))
        };
    }
    if digits.len() > MAX_DIGITS {
        return Err(bad(format!(
            "{} digits; a phone number has at most {MAX_DIGITS} (E.164)",
            digits.len()
        )));
    }
    // Digits without a prefix: most often an international number without its `+`
    // (4915112345678); left as written, as the network reads it.
    Ok(digits)
}

// ---------------------------------------------------------------------------------------------
// Opt-out keywords
// ---------------------------------------------------------------------------------------------

/// Inbound texts that put their sender on the block list, by default: the usual English
/// words and their equivalents in the languages operators most often meet.
pub const DEFAULT_STOP_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPP",
    "STOPALL",
    "UNSUBSCRIBE",
    "ARRET",
    "ARRÊT",
    "BAJA",
    "ABMELDEN",
    "AFMELDEN",
    "STOPPA",
    "DESATIVAR",
];

/// Inbound texts that take their sender off the block list, by default.
pub const DEFAULT_START_KEYWORDS: &[&str] = &["START", "UNSTOP"];

/// The keyword form of a text: without whitespace and trailing `.`/`!`, upper case.
fn keyword_form(text: &str) -> String {
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    squeezed
        .trim_end_matches(['.', '!'])
        .chars()
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether the whole of `text` is one of `keywords` (case- and space-insensitive: "Stop",
/// " s t o p ", "STOP!" match; "please stop" does not, so a conversation is never mistaken
/// for an opt-out).
pub fn matches_keyword(text: &str, keywords: &[String]) -> bool {
    let form = keyword_form(text);
    !form.is_empty() && keywords.iter().any(|k| keyword_form(k) == form)
}

// ---------------------------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------------------------

/// What a text costs: parts and encoding, after transliteration when it is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// SMS parts (what the operator bills).
    pub parts: u32,
    /// `gsm7` or `ucs2`.
    pub encoding: &'static str,
    /// Characters of the text as it would go out.
    pub characters: usize,
    /// The text as it would go out (transliterated, or as written).
    pub text: String,
    /// Characters transliteration replaced (0: sent as written).
    pub replaced: usize,
}

/// Parts and encoding of `text`, transliterated first when `transliterate` is on; an error
/// (for people) when it needs more parts than a concatenated message can have.
pub fn estimate(text: &str, transliterate: bool) -> Result<Estimate, String> {
    let (text, replaced) = match transliterate.then(|| fit_gsm7(text)) {
        Some(Gsm7Fit::Transliterated { text, replaced }) => (text, replaced),
        _ => (text.to_owned(), 0),
    };
    let split = conductor_sms::split_text(&text).map_err(|e| e.to_string())?;
    Ok(Estimate {
        parts: u32::try_from(split.parts.len()).unwrap_or(u32::MAX),
        encoding: split.encoding.name(),
        characters: text.chars().count(),
        text,
        replaced,
    })
}

/// The refusal of a text longer than `max_parts`, naming the part count.
pub fn too_many_parts(estimate: &Estimate, max_parts: u32) -> Option<String> {
    (estimate.parts > max_parts).then(|| {
        format!(
            "the text needs {} SMS parts ({} characters, {}); outbound.max_parts allows {max_parts}: \
             shorten it{}",
            estimate.parts,
            estimate.characters,
            estimate.encoding,
            if estimate.encoding == "ucs2" {
                " or avoid characters outside the GSM alphabet"
            } else {
                ""
            }
        )
    })
}

/// The rules a message must pass before it is queued (CLI `send`, the API), the same the
/// claim applies to rows written with SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRules {
    /// Recipient normalisation.
    pub numbers: NumberPolicy,
    /// Longer texts are refused.
    pub max_parts: Option<u32>,
    /// Parts are counted after transliteration.
    pub transliterate: bool,
}

impl Default for SendRules {
    /// The gateway's defaults: transliteration on, no part limit, no home country.
    fn default() -> Self {
        Self {
            numbers: NumberPolicy::default(),
            max_parts: None,
            transliterate: true,
        }
    }
}

/// Why [`SendRules::check`] refused a message: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The recipient.
    To(String),
    /// The text.
    Text(String),
}

impl SendRules {
    /// The recipient normalised and the text's cost, or why it cannot be sent.
    pub fn check(&self, to: &str, text: &str) -> Result<(String, Estimate), Refusal> {
        let to = normalize_recipient(to, &self.numbers).map_err(|e| Refusal::To(e.to_string()))?;
        let estimate = estimate(text, self.transliterate).map_err(Refusal::Text)?;
        if let Some(refusal) = self
            .max_parts
            .and_then(|max| too_many_parts(&estimate, max))
        {
            return Err(Refusal::Text(refusal));
        }
        Ok((to, estimate))
    }
}

// ---------------------------------------------------------------------------------------------
// Limits and routing
// ---------------------------------------------------------------------------------------------

/// One modem's sending limits, each optional, counted in SMS parts (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Parts in the last minute.
    pub per_minute: Option<u32>,
    /// Parts in the last hour.
    pub per_hour: Option<u32>,
    /// Parts in the last 24 hours.
    pub per_day: Option<u32>,
    /// Distinct recipients in the last 24 hours.
    pub recipients_per_day: Option<u32>,
    /// Distinct recipients in the last 30 days.
    pub recipients_per_month: Option<u32>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// The names of the limits, as `held_by`, metrics and `status` spell them.
pub mod limit {
    /// Parts per minute, per modem.
    pub const PER_MINUTE: &str = "per_minute";
    /// Parts per hour, per modem.
    pub const PER_HOUR: &str = "per_hour";
    /// Parts per day, per modem.
    pub const PER_DAY: &str = "per_day";
    /// Distinct recipients per day, per modem.
    pub const RECIPIENTS_PER_DAY: &str = "recipients_per_day";
    /// Distinct recipients per month, per modem.
    pub const RECIPIENTS_PER_MONTH: &str = "recipients_per_month";
    /// Parts per hour to one recipient, over every modem.
    pub const RECIPIENT_PER_HOUR: &str = "recipient_per_hour";
    /// Quiet hours (not a limit, but holds rows the same way).
    pub const QUIET_HOURS: &str = "quiet_hours";
    /// The row's modem cannot send now.
    pub const MODEM_NOT_READY: &str = "modem_not_ready";
    /// Every hold reason, for metrics that list each even at zero.
    pub const ALL: [&str; 8] = [
        PER_MINUTE,
        PER_HOUR,
        PER_DAY,
        RECIPIENTS_PER_DAY,
        RECIPIENTS_PER_MONTH,
        RECIPIENT_PER_HOUR,
        QUIET_HOURS,
        MODEM_NOT_READY,
    ];
}

/// How a row that names no modem gets one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each ready modem in turn.
    #[default]
    RoundRobin,
    /// The modem that sent the fewest parts in the last 24 hours.
    LeastUsed,
}

/// A number prefix sent through one modem (`{prefix: "+49", modem: "m1"}`): the SIM with the
/// national tariff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrefixRule {
    /// Matched against the normalised number; the longest matching prefix wins.
    pub prefix: String,
    /// The modem.
    pub modem: ModemId,
}

/// Routing of rows that name no modem. Precedence: sticky, then prefix rules, then the
/// strategy; a chosen modem that is down, unregistered or at a limit is skipped for the next.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Routing {
    /// Among the modems left.
    pub strategy: Strategy,
    /// The modem that last talked to the number (sent to it or received from it), so a
    /// conversation keeps its sender number.
    pub sticky: bool,
    /// By number prefix.
    pub prefixes: Vec<PrefixRule>,
}

/// What the claim applies besides duplicate detection (see [`crate::ClaimRequest`]).
#[derive(Clone, Debug, Default)]
pub struct ClaimPolicy {
    /// Recipient normalisation; rows it refuses become `failed` with the reason. None checks
    /// nothing (the store on its own); the gateway always sets it.
    pub numbers: Option<NumberPolicy>,
    /// Per modem; a modem missing here has no limits.
    pub limits: HashMap<ModemId, Limits>,
    /// Parts per hour to one recipient over every modem.
    pub recipient_per_hour: Option<u32>,
    /// Rows that name no modem.
    pub routing: Routing,
    /// Jobs each ready modem takes in this claim; a ready modem missing here takes up to the
    /// request's `limit`.
    pub room: HashMap<ModemId, usize>,
    /// Set while quiet hours last: the instant they end. Non-transactional rows wait.
    pub quiet_until: Option<Timestamp>,
    /// A queued row with no `expires_at` expires this long after it became due.
    pub default_ttl: Option<Duration>,
    /// Longer texts are refused (`failed`, with the part count).
    pub max_parts: Option<u32>,
    /// Count parts after GSM 7-bit transliteration (the worker sends the same text).
    pub transliterate: bool,
}

/// A row the claim left `queued`, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Held {
    /// The row.
    pub id: MessageId,
    /// What holds it (one of [`limit::ALL`]).
    pub held_by: String,
    /// When it may go (None: when its modem is back).
    #[serde(serialize_with = "serialize_instant")]
    pub until: Option<Timestamp>,
    /// The row's reason.
    pub reason: String,
}

fn serialize_instant<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// How much of one limit a modem (or the busiest recipient) has used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitUsage {
    /// The modem, None for the per-recipient limit.
    pub modem: Option<ModemId>,
    /// One of [`limit::ALL`].
    pub limit: String,
    /// Used inside the window now.
    pub used: u64,
    /// The limit.
    pub max: u32,
}

/// A number on the block list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockedNumber {
    /// Normalised.
    pub number: String,
    /// `inbound`, `cli`, `api`, `sql`.
    pub source: String,
    /// The keyword or the operator's note.
    pub reason: Option<String>,
    /// The inbound message that asked for it.
    pub message_id: Option<MessageId>,
    /// When.
    pub created_at: crate::types::SqlTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn germany() -> NumberPolicy {
        NumberPolicy {
            default_country_code: Some("+49".into()),
            ..NumberPolicy::default()
        }
    }

    #[test]
    fn numbers_normalise_to_international_form() {
        let p = germany();
        let table = [
            ("0151 2345 6789", "+4915123456789"),
            ("0151-2345/6789", "+4915123456789"),
            ("(0151) 2345.6789", "+4915123456789"),
            ("+49 151 23456789", "+4915123456789"),
            ("0049 151 23456789", "+4915123456789"),
            ("004915123456789", "+4915123456789"),
            ("+44 7700 900123", "+447700900123"),
            (" +1 (555) 765-4321 ", "+15557654321"),
        ];
        for (raw, want) in table {
            assert_eq!(normalize_recipient(raw, &p).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn what_cannot_be_a_number_is_refused_with_the_reason() {
        let p = germany();
        let table = [
            ("", "empty"),
            ("   ", "empty"),
            ("hello there", "letters"),
            ("+49 151 x234", "letters"),
            ("+49#1512345", "not a digit"),
            ("+0151234567", "never starts with 0"),
            ("+1234567890123456", "at most 15"),
            ("+491", "too short"),
            ("12345", "short code"),
            ("12", "too short"),
            ("Shop", "alphanumeric"),
            ("+", "no digits"),
        ];
        for (raw, why) in table {
            match normalize_recipient(raw, &p) {
                Ok(n) => panic!("{raw:?} was accepted as {n}"),
                Err(e) => assert!(e.reason.contains(why), "{raw:?}: {e}"),
            }
        }
    }

    #[test]
    fn short_codes_and_names_pass_only_where_allowed() {
        let p = NumberPolicy {
            allow_short_codes: true,
            allow_alphanumeric: true,
            ..germany()
        };
        assert_eq!(normalize_recipient("8 2 2 2", &p).as_deref(), Ok("8222"));
        assert_eq!(normalize_recipient("MyShop", &p).as_deref(), Ok("MyShop"));
        assert!(normalize_recipient("A name far too long", &p).is_err());
    }

    #[test]
    fn without_a_country_national_numbers_stay_as_written() {
        let p = NumberPolicy::default();
        assert_eq!(
            normalize_recipient("0151 2345 6789", &p).as_deref(),
            Ok("015123456789")
        );
        assert_eq!(
            normalize_recipient("00 44 7700 900123", &p).as_deref(),
            Ok("+447700900123")
        );
    }

    #[test]
    fn keywords_match_the_whole_message_whatever_the_case_and_spaces() {
        let keys: Vec<String> = DEFAULT_STOP_KEYWORDS
            .iter()
            .map(|s| s.to_string())
            .collect();
        for text in [
            "STOP", "stop", " Stop ", "S T O P", "stop!", "Arrêt", "baja",
        ] {
            assert!(matches_keyword(text, &keys), "{text}");
        }
        for text in ["please stop", "stopped", "", "STOP it"] {
            assert!(!matches_keyword(text, &keys), "{text}");
        }
    }

    #[test]
    fn transliteration_halves_the_parts_of_a_text_with_typographic_quotes() {
        let text = "We’re open today – see you soon! ".repeat(4);
        let plain = estimate(&text, false).expect("fits");
        let fitted = estimate(&text, true).expect("fits");
        assert_eq!((plain.encoding, fitted.encoding), ("ucs2", "gsm7"));
        assert!(fitted.parts * 2 <= plain.parts, "{plain:?} {fitted:?}");
        let refusal = too_many_parts(&plain, 1).expect("refused");
        assert!(
            refusal.contains(&format!("{} SMS parts", plain.parts)),
            "{refusal}"
        );
    }
}
