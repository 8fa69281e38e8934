//! The `alerts` section of the config file, its resolution into conductor-ops'
//! [`AlertSettings`], and the daemon's evaluator task.
//!
//! Kept beside `config.rs` rather than in it, so the alert thresholds read as one unit;
//! [`crate::config::Config::resolve`] calls [`Config::alert_settings`] so `config check`
//! reports a bad field by its path. The SIM threshold is `inbound.capacity_threshold_percent`
//! (the line at which the gateway starts freeing copies): one number, not two.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conductor_gateway::Clock;
use conductor_ops::alerts::{AlertEvaluator, AlertSettings};
use conductor_store::{ModemId, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, Database, Source};

/// `alerts`: conditions the daemon watches; each is logged once when raised and once when
/// cleared, shown by `health`, `doctor` and the API, and sent as `alert.raised` /
/// `alert.cleared` webhooks.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Evaluate alerts in the daemon at all. Default true.
    pub enabled: bool,
    /// How often the conditions are evaluated. Default `30s`.
    #[serde(serialize_with = "duration_text", deserialize_with = "parse_duration")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// A modem unusable (down, not registered, or its status no longer written) for longer
    /// than this raises `modem_down`. Default `2m`.
    #[serde(serialize_with = "duration_text", deserialize_with = "parse_duration")]
    #[schemars(with = "String")]
    pub modem_down_after: Duration,
    /// Due queued messages waiting longer than this while no send reaches an outcome raise
    /// `queue_stuck`. Default `10m`.
    #[serde(serialize_with = "duration_text", deserialize_with = "parse_duration")]
    #[schemars(with = "String")]
    pub queue_stuck_after: Duration,
    /// Failed and unknown sends at or above this percentage of the outcomes in
    /// `failure_window` raise `failure_rate`; 0 turns it off. Default 20.
    pub failure_rate_percent: u8,
    /// The window of the failure rate. Default `1h`.
    #[serde(serialize_with = "duration_text", deserialize_with = "parse_duration")]
    #[schemars(with = "String")]
    pub failure_window: Duration,
    /// Fewer outcomes than this in the window say nothing. Default 10.
    pub failure_min_messages: u64,
    /// Less free space than this percentage on the database's filesystem raises `disk_space`
    /// (Unix; not measured on Windows) when `disk_min_free_mib` agrees; 0 turns it off.
    /// Default 10.
    pub disk_min_free_percent: u8,
    /// ... and less than this many MiB free (both must be low: 10 % of a large disk is still
    /// plenty); 0 judges by the percentage alone. Default 2048.
    pub disk_min_free_mib: u64,
    /// Raise `backup_failed` while the newest backup failed. Default true.
    pub backup_failed: bool,
    /// Text alert episodes to admin numbers, rate-limited, through a modem not in trouble.
    pub sms: Option<crate::toolbox_config::AlertSmsSection>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        let defaults = AlertSettings::default();
        Self {
            enabled: true,
            interval: defaults.interval,
            modem_down_after: defaults.modem_down_after,
            queue_stuck_after: defaults.queue_stuck_after,
            failure_rate_percent: defaults.failure_rate_percent,
            failure_window: defaults.failure_window,
            failure_min_messages: defaults.failure_min_messages,
            disk_min_free_percent: defaults.disk_min_free_percent,
            disk_min_free_mib: defaults.disk_min_free_mib,
            backup_failed: defaults.backup_failed,
            sms: None,
        }
    }
}

fn duration_text<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// A humantime duration (`"30s"`, `"2m"`) from the config file; the alert and toolbox
/// sections share it so both word a bad value the same way.
pub(crate) fn parse_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{e}: expected a duration such as \"30s\", \"2m\", \"1h\""
        ))
    })
}

impl Config {
    /// The evaluator's settings, checked; None when `alerts.enabled` is false.
    pub fn alert_settings(&self) -> Result<Option<AlertSettings>, ConfigError> {
        let section = &self.file.alerts;
        let invalid = |field: &str, message: &str| ConfigError::Invalid {
            path: match &self.source {
                Source::File(path) => path.clone(),
                Source::Defaults => PathBuf::from("(no config file)"),
            },
            field: format!("alerts.{field}"),
            message: message.to_owned(),
        };
        if section.interval < Duration::from_secs(1) {
            return Err(invalid("interval", "must be at least 1s"));
        }
        if section.failure_rate_percent > 100 {
            return Err(invalid(
                "failure_rate_percent",
                "expected a percentage from 0 (off) to 100",
            ));
        }
        if section.disk_min_free_percent > 100 {
            return Err(invalid(
                "disk_min_free_percent",
                "expected a percentage from 0 (off) to 100",
            ));
        }
        if !section.enabled {
            return Ok(None);
        }
        Ok(Some(AlertSettings {
            interval: section.interval,
            modems: self
                .file
                .modems
                .iter()
                .map(|m| ModemId::from(m.id.as_str()))
                .collect(),
            status_stale_after: crate::commands::health::STALE_AFTER,
            modem_down_after: section.modem_down_after,
            sim_threshold_percent: self.file.inbound.capacity_threshold_percent,
            queue_stuck_after: section.queue_stuck_after,
            failure_rate_percent: section.failure_rate_percent,
            failure_window: section.failure_window,
            failure_min_messages: section.failure_min_messages,
            disk_min_free_percent: section.disk_min_free_percent,
            disk_min_free_mib: section.disk_min_free_mib,
            database_path: match &self.database {
                Database::Sqlite(path) => Some(path.clone()),
                Database::Postgres(_) => None,
            },
            backup_failed: section.backup_failed,
        }))
    }
}

/// Starts the alert evaluator (unless `alerts.enabled` is false); it stops on `shutdown`.
pub fn spawn_alerts(
    config: &Config,
    store: &Store,
    clock: Arc<dyn Clock>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(settings) = config.alert_settings()? else {
        tracing::info!("alerts are off (alerts.enabled is false)");
        return Ok(None);
    };
    Ok(Some(
        AlertEvaluator::new(store.clone(), clock, settings).spawn(shutdown.clone()),
    ))
}

#[cfg(test)]
mod tests {
    use crate::config::tests::resolve_text;

    #[test]
    fn alert_defaults_are_spelled_out_and_the_sim_threshold_is_the_inbound_one() {
        let config =
            resolve_text(r#"{"inbound": {"capacity_threshold_percent": 70}}"#).expect("valid");
        let settings = config.alert_settings().expect("valid").expect("enabled");
        assert_eq!(settings.interval.as_secs(), 30);
        assert_eq!(settings.modem_down_after.as_secs(), 120);
        assert_eq!(settings.queue_stuck_after.as_secs(), 600);
        assert_eq!(settings.failure_rate_percent, 20);
        assert_eq!(settings.disk_min_free_percent, 10);
        assert_eq!(settings.sim_threshold_percent, 70);
    }

    #[test]
    fn bad_alert_fields_are_named_by_their_path() {
        let error = resolve_text(r#"{"alerts": {"failure_rate_percent": 120}}"#)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("alerts.failure_rate_percent"), "{error}");
        let error = resolve_text(r#"{"alerts": {"interval": "soon"}}"#)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("alerts.interval"), "{error}");
        let off = resolve_text(r#"{"alerts": {"enabled": false}}"#).expect("valid");
        assert!(off.alert_settings().expect("valid").is_none());
    }
}
