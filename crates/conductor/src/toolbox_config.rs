//! The config of the operator toolbox (issue 12): `scripts` (with `scripts_concurrency` and
//! `scripts_queue_limit`) and `alerts.sms`, resolved into conductor-ops' settings, and the
//! daemon tasks that follow the events table for them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conductor_gateway::Clock;
use conductor_ops::alert_sms::{AlertSms, AlertSmsSettings};
use conductor_ops::scripts::{Script, ScriptRunner, ScriptSettings};
use conductor_store::{ModemId, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, Source};

/// One entry of `scripts`: a program run on events, never through a shell.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptSection {
    /// Its name in logs and `script_ran` events. Default: the program's file name.
    #[serde(default)]
    pub name: Option<String>,
    /// Events: received, sent, delivered, failed, call, modem_down, modem_up, alert_raised,
    /// alert_cleared.
    pub on: Vec<String>,
    /// Program and arguments, such as `["/usr/local/bin/on-sms", "--log"]`. The event comes as
    /// JSON on stdin and in `CONDUCTOR_*` environment variables.
    pub command: Vec<String>,
    /// Its process group is killed after this long. Default `30s`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::alerts_config::parse_duration"
    )]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `alerts.sms`: text alert episodes to admins.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSmsSection {
    /// Admin numbers, such as `["+4915112345678"]`.
    pub to: Vec<String>,
    /// At most one SMS per admin per this long; the next one summarises what was held back.
    /// Default `1h`.
    #[serde(
        default = "default_interval",
        deserialize_with = "crate::alerts_config::parse_duration"
    )]
    #[schemars(with = "String")]
    pub min_interval: Duration,
    /// Always send through this modem (its `id`). Default: a ready modem other than the one
    /// the alert is about.
    #[serde(default)]
    pub modem: Option<String>,
    /// Also text when an alert clears. Default true.
    #[serde(default = "yes")]
    pub on_clear: bool,
}

fn default_interval() -> Duration {
    Duration::from_secs(3600)
}

fn yes() -> bool {
    true
}

impl Config {
    fn toolbox_invalid(&self, field: String, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: match &self.source {
                Source::File(path) => path.clone(),
                Source::Defaults => PathBuf::from("(no config file)"),
            },
            field,
            message,
        }
    }

    /// The event scripts, checked.
    pub fn script_settings(&self) -> Result<ScriptSettings, ConfigError> {
        let file = &self.file;
        let settings = ScriptSettings {
            scripts: file
                .scripts
                .iter()
                .map(|s| Script {
                    name: s.name.clone().unwrap_or_else(|| {
                        s.command
                            .first()
                            .map(|p| {
                                std::path::Path::new(p)
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .unwrap_or_else(|| p.clone())
                            })
                            .unwrap_or_default()
                    }),
                    on: s.on.clone(),
                    command: s.command.clone(),
                    timeout: s.timeout,
                })
                .collect(),
            ..ScriptSettings::default()
        };
        let settings = ScriptSettings {
            concurrency: file.scripts_concurrency.unwrap_or(settings.concurrency),
            queue_limit: file.scripts_queue_limit.unwrap_or(settings.queue_limit),
            ..settings
        };
        settings.check().map_err(|e| {
            self.toolbox_invalid(format!("scripts[{}].{}", e.index, e.field), e.message)
        })?;
        if settings.concurrency == 0 && !settings.scripts.is_empty() {
            return Err(
                self.toolbox_invalid("scripts_concurrency".into(), "must be at least 1".into())
            );
        }
        Ok(settings)
    }

    /// `alerts.sms`, checked; None when not configured.
    pub fn alert_sms_settings(&self) -> Result<Option<AlertSmsSettings>, ConfigError> {
        let Some(section) = &self.file.alerts.sms else {
            return Ok(None);
        };
        if section.to.is_empty() {
            return Err(self.toolbox_invalid(
                "alerts.sms.to".into(),
                "give at least one admin number, such as [\"+4915112345678\"]".into(),
            ));
        }
        if let Some(modem) = &section.modem
            && !self.file.modems.iter().any(|m| &m.id == modem)
        {
            return Err(self.toolbox_invalid(
                "alerts.sms.modem".into(),
                format!("no modem has the id {modem:?}: use one of the `modems` ids"),
            ));
        }
        Ok(Some(AlertSmsSettings {
            to: section.to.clone(),
            min_interval: section.min_interval,
            modem: section.modem.as_deref().map(ModemId::from),
            on_clear: section.on_clear,
            ..AlertSmsSettings::default()
        }))
    }
}

/// Starts the event-script runner (when scripts are configured) and the alert SMS task (when
/// `alerts.sms` is); both stop on `shutdown`.
pub fn spawn_toolbox(
    config: &Config,
    store: &Store,
    clock: Arc<dyn Clock>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    let scripts = config.script_settings()?;
    if !scripts.scripts.is_empty() {
        tasks.push(
            ScriptRunner::new(store.clone(), Arc::clone(&clock), scripts).spawn(shutdown.clone()),
        );
    }
    if let Some(settings) = config.alert_sms_settings()? {
        tasks.push(AlertSms::new(store.clone(), clock, settings).spawn(shutdown.clone()));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use crate::config::tests::resolve_text;

    #[test]
    fn scripts_and_alert_sms_are_checked_with_their_paths() {
        let good = resolve_text(
            r#"{"scripts": [{"on": ["received"], "command": ["/bin/echo", "hi"]}],
                "alerts": {"sms": {"to": ["+4915100000001"]}}}"#,
        )
        .expect("valid");
        let scripts = good.script_settings().expect("scripts");
        assert_eq!(scripts.scripts[0].name, "echo");
        assert_eq!(scripts.scripts[0].timeout.as_secs(), 30);
        let sms = good.alert_sms_settings().expect("ok").expect("configured");
        assert_eq!(sms.min_interval.as_secs(), 3600);
        let bad = resolve_text(r#"{"scripts": [{"on": ["recieved"], "command": ["/bin/true"]}]}"#)
            .expect_err("typo")
            .to_string();
        assert!(bad.contains("scripts[0].on"), "{bad}");
        let bad = resolve_text(r#"{"alerts": {"sms": {"to": []}}}"#)
            .expect_err("nobody")
            .to_string();
        assert!(bad.contains("alerts.sms.to"), "{bad}");
    }
}
