//! The `backup` and `retention` sections of the config file, and their resolution into
//! conductor-ops settings.
//!
//! Kept beside `config.rs` rather than in it, so the housekeeping settings read as one unit.
//! [`crate::config::Config::resolve`] calls [`BackupSection::resolve_paths`] and the two
//! `*_settings` checks below, so `config check` reports a bad field by its path like any
//! other.
//!
//! Defaults: daily backups at 03:00 local time into `backups/` beside the database, 7 kept.
//! Retention removes nothing until rules are written. Its exports go to `archive/` beside
//! the database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use conductor_ops::backup::BackupSettings;
use conductor_ops::retention::{RetentionSettings, RuleSpec};
use conductor_ops::schedule::DailyAt;
use conductor_store::{Direction, RetentionRule, Status};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{Config, ConfigError, Database, Source};

/// `backup`: the daemon's daily backup (`conductor backup` takes one by hand).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSection {
    /// Take a backup every day at `at`. Default true (SQLite databases only).
    pub enabled: bool,
    /// Folder for the `conductor-YYYYMMDDTHHMMSSZ.db.gz` files; relative to the config file.
    /// Default: `backups` beside the database file.
    pub dir: Option<PathBuf>,
    /// Time of day, `HH:MM` in the host's local time. Default `03:00`.
    pub at: String,
    /// Backups kept; older ones are deleted after each new one. Default 7.
    pub keep: usize,
}

impl Default for BackupSection {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            at: "03:00".into(),
            keep: 7,
        }
    }
}

/// `retention`: old messages exported to compressed JSON lines and removed, daily. With no
/// rules (the default) nothing is ever removed.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Time of day, `HH:MM` in the host's local time. Default `04:00`.
    pub at: String,
    /// Folder for the `conductor-export-YYYYMMDDTHHMMSSZ.jsonl.gz` files; relative to the
    /// config file. Default: `archive` beside the database file.
    pub export_dir: Option<PathBuf>,
    /// What to remove. Default: nothing.
    pub rules: Vec<RetentionRuleSection>,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            at: "04:00".into(),
            export_dir: None,
            rules: Vec::new(),
        }
    }
}

/// One retention rule: `direction` messages in one of `statuses`, created and last changed
/// more than `older_than` ago.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRuleSection {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Inbound: `read`. Outbound: any finished status (`sent`, `delivered`, `failed`,
    /// `duplicate`, `unknown`, `cancelled`, ...). Never `unread`, `queued` or `sending`.
    pub statuses: Vec<String>,
    /// Age, e.g. `"90d"`, `"30days"`, `"12weeks"`.
    #[serde(serialize_with = "age_text", deserialize_with = "parse_age")]
    #[schemars(with = "String")]
    pub older_than: Duration,
}

fn age_text<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn parse_age<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{e}: expected an age such as \"90d\", \"30days\" or \"12weeks\""
        ))
    })
}

impl BackupSection {
    /// Makes `dir` absolute against the config file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(dir) = &self.dir {
            self.dir = Some(base.join(dir));
        }
    }
}

impl RetentionSection {
    /// Makes `export_dir` absolute against the config file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(dir) = &self.export_dir {
            self.export_dir = Some(base.join(dir));
        }
    }
}

/// The daily backup, resolved.
#[derive(Clone, Debug)]
pub struct BackupPlan {
    /// Folder and count.
    pub settings: BackupSettings,
    /// When.
    pub at: DailyAt,
    /// Whether the daemon takes it daily.
    pub enabled: bool,
}

/// Retention, resolved.
#[derive(Clone, Debug)]
pub struct RetentionPlanConfig {
    /// Export folder and rules.
    pub settings: RetentionSettings,
    /// When.
    pub at: DailyAt,
}

fn config_path(config: &Config) -> PathBuf {
    match &config.source {
        Source::File(path) => path.clone(),
        Source::Defaults => PathBuf::from("(no config file)"),
    }
}

fn invalid(config: &Config, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: config_path(config),
        field: field.into(),
        message: message.into(),
    }
}

/// `name` beside the SQLite database, or in the working folder for other databases.
fn beside_database(config: &Config, name: &str) -> PathBuf {
    match &config.database {
        Database::Sqlite(path) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.join(name))
            .unwrap_or_else(|| PathBuf::from(name)),
        Database::Postgres(_) => PathBuf::from(name),
    }
}

impl Config {
    /// The backup settings, checked (`backup.*` fields named on error). `enabled` is false
    /// for a database that is not SQLite.
    pub fn backup_plan(&self) -> Result<BackupPlan, ConfigError> {
        let section = &self.file.backup;
        let at =
            DailyAt::parse(&section.at).map_err(|e| invalid(self, "backup.at", e.to_string()))?;
        if section.keep == 0 {
            return Err(invalid(
                self,
                "backup.keep",
                "must be at least 1; set backup.enabled to false to turn daily backups off",
            ));
        }
        let dir = section
            .dir
            .clone()
            .unwrap_or_else(|| beside_database(self, "backups"));
        Ok(BackupPlan {
            settings: BackupSettings {
                dir,
                keep: section.keep,
            },
            at,
            enabled: section.enabled && matches!(self.database, Database::Sqlite(_)),
        })
    }

    /// The retention settings, checked (`retention.*` fields named on error).
    pub fn retention_plan(&self) -> Result<RetentionPlanConfig, ConfigError> {
        let section = &self.file.retention;
        let at = DailyAt::parse(&section.at)
            .map_err(|e| invalid(self, "retention.at", e.to_string()))?;
        let mut rules = Vec::new();
        for (i, rule) in section.rules.iter().enumerate() {
            let direction = match rule.direction.as_str() {
                "inbound" => Direction::Inbound,
                "outbound" => Direction::Outbound,
                other => {
                    return Err(invalid(
                        self,
                        format!("retention.rules[{i}].direction"),
                        format!("{other:?} is not a direction: use \"inbound\" or \"outbound\""),
                    ));
                }
            };
            let statuses = rule
                .statuses
                .iter()
                .map(|s| s.parse::<Status>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    invalid(
                        self,
                        format!("retention.rules[{i}].statuses"),
                        e.to_string(),
                    )
                })?;
            if rule.older_than.is_zero() {
                return Err(invalid(
                    self,
                    format!("retention.rules[{i}].older_than"),
                    "must be more than 0s, e.g. \"90d\"",
                ));
            }
            let spec = RuleSpec {
                direction,
                statuses,
                older_than: rule.older_than,
            };
            // Checks protected and impossible statuses now, not at 04:00.
            RetentionRule::new(
                direction,
                spec.statuses.clone(),
                jiff::Timestamp::UNIX_EPOCH,
            )
            .map_err(|e| {
                let message = e.to_string();
                let message = message
                    .strip_prefix("invalid statuses: ")
                    .unwrap_or(&message)
                    .to_owned();
                invalid(self, format!("retention.rules[{i}].statuses"), message)
            })?;
            rules.push(spec);
        }
        let export_dir = section
            .export_dir
            .clone()
            .unwrap_or_else(|| beside_database(self, "archive"));
        Ok(RetentionPlanConfig {
            settings: RetentionSettings { export_dir, rules },
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::resolve_text;
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn backups_default_to_daily_at_three_beside_the_database_and_retention_removes_nothing() {
        let config = resolve_text(r#"{"database": {"path": "data/gw.db"}}"#).expect("valid");
        let backup = config.backup_plan().expect("backup");
        assert!(backup.enabled);
        assert_eq!(backup.settings.dir, PathBuf::from("/etc/gw/data/backups"));
        assert_eq!(backup.settings.keep, 7);
        assert_eq!(backup.at.to_string(), "03:00");
        let retention = config.retention_plan().expect("retention");
        assert!(retention.settings.rules.is_empty());
        assert_eq!(
            retention.settings.export_dir,
            PathBuf::from("/etc/gw/data/archive")
        );
        assert_eq!(retention.at.to_string(), "04:00");
    }

    #[test]
    fn relative_folders_are_relative_to_the_config_file_and_rules_resolve() {
        let config = resolve_text(
            r#"{"backup": {"dir": "bk", "at": "02:15", "keep": 3},
                "retention": {"export_dir": "/srv/archive", "rules": [
                    {"direction": "outbound", "statuses": ["delivered", "failed"], "older_than": "90d"}]}}"#,
        )
        .expect("valid");
        let backup = config.backup_plan().expect("backup");
        assert_eq!(backup.settings.dir, PathBuf::from("/etc/gw/bk"));
        assert_eq!(backup.settings.keep, 3);
        let retention = config.retention_plan().expect("retention");
        assert_eq!(retention.settings.export_dir, PathBuf::from("/srv/archive"));
        assert_eq!(
            retention.settings.rules[0].older_than,
            Duration::from_secs(90 * 86_400)
        );
    }

    #[test]
    fn bad_values_are_named_by_their_path() {
        for (text, field) in [
            (r#"{"backup": {"at": "3am"}}"#, "backup.at"),
            (r#"{"backup": {"keep": 0}}"#, "backup.keep"),
            (r#"{"retention": {"at": "25:00"}}"#, "retention.at"),
            (
                r#"{"retention": {"rules": [{"direction": "in", "statuses": ["read"], "older_than": "1d"}]}}"#,
                "retention.rules[0].direction",
            ),
            (
                r#"{"retention": {"rules": [{"direction": "inbound", "statuses": ["unread"], "older_than": "1d"}]}}"#,
                "retention.rules[0].statuses",
            ),
            (
                r#"{"retention": {"rules": [{"direction": "outbound", "statuses": ["queued"], "older_than": "1d"}]}}"#,
                "retention.rules[0].statuses",
            ),
            (
                r#"{"retention": {"rules": [{"direction": "outbound", "statuses": ["gone"], "older_than": "1d"}]}}"#,
                "retention.rules[0].statuses",
            ),
            (
                r#"{"retention": {"rules": [{"direction": "outbound", "statuses": ["sent"], "older_than": "soon"}]}}"#,
                "retention.rules[0].older_than",
            ),
        ] {
            let error = resolve_text(text).expect_err(text).to_string();
            assert!(error.contains(field), "{text}: {error}");
        }
    }
}
