//! The config file's sending-policy sections (issue 11): `numbers`, `modems[].limits`, and
//! the policy fields of `outbound`, with their conversion to the gateway's typed settings.
//!
//! Why a module of its own: `config.rs` keeps the file's overall shape; these sections carry
//! enough rules (time of day, routing rules) to deserve their own doc and tests.

use std::collections::HashMap;

use conductor_gateway::{Limits, NumberPolicy, PrefixRule, QuietHours, Routing, Strategy};
use conductor_store::ModemId;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// `numbers`: how recipients are normalised to international form.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NumbersSection {
    /// The country national numbers belong to, e.g. `"+49"`: `0151 234…` becomes
    /// `+49151234…`. Default: none (national numbers are sent as written).
    pub default_country_code: Option<String>,
    /// The national trunk prefix the country code replaces. Default `"0"`.
    pub trunk_prefix: String,
    /// Allow short codes (3 to 6 digits) as recipients. Default false.
    pub allow_short_codes: bool,
    /// Allow alphanumeric recipients (letters, up to 11 characters). Default false.
    pub allow_alphanumeric: bool,
}

impl Default for NumbersSection {
    /// The gateway's defaults, so a file without `numbers` means what the store's
    /// [`NumberPolicy::default`] means.
    fn default() -> Self {
        let NumberPolicy {
            default_country_code,
            trunk_prefix,
            allow_short_codes,
            allow_alphanumeric,
        } = NumberPolicy::default();
        Self {
            default_country_code,
            trunk_prefix,
            allow_short_codes,
            allow_alphanumeric,
        }
    }
}

impl NumbersSection {
    /// The gateway's number policy.
    pub fn policy(&self) -> NumberPolicy {
        NumberPolicy {
            default_country_code: self.default_country_code.clone(),
            trunk_prefix: self.trunk_prefix.clone(),
            allow_short_codes: self.allow_short_codes,
            allow_alphanumeric: self.allow_alphanumeric,
        }
    }
}

/// `modems[].limits`: each optional, counted in SMS parts (what operators bill and what their
/// anti-spam counters block SIMs for). Windows slide: the last minute, hour, 24 hours, 30 days.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Parts per minute.
    pub per_minute: Option<u32>,
    /// Parts per hour.
    pub per_hour: Option<u32>,
    /// Parts per 24 hours.
    pub per_day: Option<u32>,
    /// Distinct recipients per 24 hours.
    pub recipients_per_day: Option<u32>,
    /// Distinct recipients per 30 days.
    pub recipients_per_month: Option<u32>,
}

impl LimitsSection {
    /// The gateway's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            per_minute: self.per_minute,
            per_hour: self.per_hour,
            per_day: self.per_day,
            recipients_per_day: self.recipients_per_day,
            recipients_per_month: self.recipients_per_month,
        }
    }
}

/// `outbound.routing`: which modem sends a row that names none.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSection {
    /// `round_robin` (default) or `least_used` (fewest parts in the last 24 hours).
    pub strategy: StrategyName,
    /// Answer a number from the modem that last talked to it, so a conversation keeps its
    /// sender. Default false.
    pub sticky: bool,
    /// `[{"prefix": "+49", "modem": "sim1"}]`: the longest matching prefix wins.
    pub prefixes: Vec<PrefixSection>,
}

/// A routing strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyName {
    /// Each ready modem in turn.
    #[default]
    RoundRobin,
    /// The modem that sent the fewest parts in the last 24 hours.
    LeastUsed,
}

/// One prefix rule.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefixSection {
    /// The start of the number in international form, e.g. `"+49"`.
    pub prefix: String,
    /// A modem id from `modems`.
    pub modem: String,
}

impl RoutingSection {
    /// The gateway's routing.
    pub fn routing(&self) -> Routing {
        Routing {
            strategy: match self.strategy {
                StrategyName::RoundRobin => Strategy::RoundRobin,
                StrategyName::LeastUsed => Strategy::LeastUsed,
            },
            sticky: self.sticky,
            prefixes: self
                .prefixes
                .iter()
                .map(|p| PrefixRule {
                    prefix: p.prefix.clone(),
                    modem: ModemId(p.modem.clone()),
                })
                .collect(),
        }
    }
}

/// `outbound.quiet_hours`: `{"start": "21:00", "end": "08:00"}`, the host's local time.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursSection {
    /// When quiet starts, `HH:MM`.
    #[serde(deserialize_with = "time_of_day")]
    pub start: String,
    /// When it ends, `HH:MM` (before `start`: the next morning).
    #[serde(deserialize_with = "time_of_day")]
    pub end: String,
}

fn parse_time(text: &str) -> Option<jiff::civil::Time> {
    jiff::civil::Time::strptime("%H:%M", text.trim()).ok()
}

fn time_of_day<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    match parse_time(&text) {
        Some(_) => Ok(text),
        None => Err(serde::de::Error::custom(format!(
            "{text:?} is not a time of day; write it as HH:MM, e.g. \"21:00\""
        ))),
    }
}

impl QuietHoursSection {
    /// The gateway's quiet hours, in the host's time zone.
    pub fn quiet_hours(&self) -> Option<QuietHours> {
        Some(QuietHours::local(
            parse_time(&self.start)?,
            parse_time(&self.end)?,
        ))
    }
}

/// Per modem limits by id, for `status`.
pub fn limits_by_modem(modems: &[crate::config::ModemSection]) -> HashMap<ModemId, Limits> {
    modems
        .iter()
        .map(|m| {
            let mut limits = m.limits.limits();
            limits.per_minute = limits
                .per_minute
                .or(m.rate_limit_per_minute.filter(|&n| n > 0));
            (ModemId(m.id.clone()), limits)
        })
        .filter(|(_, l)| l.any())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_are_read_as_times_of_day() {
        let ok: QuietHoursSection =
            serde_json::from_str(r#"{"start": "21:00", "end": "08:00"}"#).expect("valid");
        assert!(ok.quiet_hours().is_some());
        let bad = serde_json::from_str::<QuietHoursSection>(r#"{"start": "9pm", "end": "8"}"#);
        assert!(bad.err().is_some_and(|e| e.to_string().contains("HH:MM")));
    }

    #[test]
    fn routing_rules_name_their_modem() {
        let routing: RoutingSection = serde_json::from_str(
            r#"{"strategy": "least_used", "sticky": true, "prefixes": [{"prefix": "+49", "modem": "m1"}]}"#,
        )
        .expect("valid");
        let routing = routing.routing();
        assert_eq!(routing.strategy, Strategy::LeastUsed);
        assert_eq!(routing.prefixes[0].modem.as_str(), "m1");
    }
}
