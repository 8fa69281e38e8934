//! A config reload (SIGHUP, `systemctl reload conductor`): read the config again and apply
//! what can change while the daemon runs.
//!
//! What changes live: the set of modems (added ones start, removed ones stop after finishing
//! the AT command in flight, and one whose settings changed is restarted that way), and the
//! log file, which is reopened at its path. Everything else the running tasks were built from
//! (database, HTTP, webhooks, inbound and outbound settings, …) is compared field by field and
//! each difference is logged as "restart needed for FIELD", naming only the field (values may
//! be secrets).
//!
//! An invalid new config (unreadable, a bad field, no modems, a device string that names no
//! device) is refused as a whole before anything changes: its error is logged and the running
//! config stays in force (promise 5: a broken config gets a clear answer, never a crash).

use crate::commands::run::gateway_config;
use crate::config::{Config, Database, Overrides};
use crate::logging;
use conductor_gateway::GatewayHandle;
use serde_json::Value;
use std::collections::BTreeMap;
use tracing::{error, info, warn};

/// The config a reload compares against: what the running daemon was built from.
#[derive(Debug)]
pub struct Reloader {
    /// `--config`, `--db`, `--modem` as given to `run`: a reload reads the same file and keeps
    /// the same overrides.
    overrides: Overrides,
    /// What runs: the modems as last applied, every other section as at start-up.
    current: Snapshot,
}

/// The comparable parts of a config.
#[derive(Debug)]
struct Snapshot {
    database: Database,
    /// Every section but `modems` and `database`, as JSON.
    sections: BTreeMap<String, Value>,
    /// Each modem's section as JSON, by id.
    modems: BTreeMap<String, Value>,
}

impl Snapshot {
    fn of(config: &Config) -> Self {
        let mut sections = match serde_json::to_value(&config.file) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        sections.remove("modems");
        sections.remove("database");
        let modems = config
            .file
            .modems
            .iter()
            .map(|m| (m.id.clone(), serde_json::to_value(m).unwrap_or(Value::Null)))
            .collect();
        Self {
            database: config.database.clone(),
            sections,
            modems,
        }
    }
}

/// What a reload did, for the status line and the tests' log checks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Modems started.
    pub added: Vec<String>,
    /// Modems stopped.
    pub removed: Vec<String>,
    /// Modems stopped and started again with new settings.
    pub restarted: Vec<String>,
    /// Fields whose new value waits for a restart.
    pub restart_needed: Vec<String>,
}

impl Reloader {
    /// Remembers the config the daemon started with.
    pub fn new(config: &Config, overrides: &Overrides) -> Self {
        Self {
            overrides: overrides.clone(),
            current: Snapshot::of(config),
        }
    }

    /// Reads the config again and applies it (see the module doc). Returns `None` when the
    /// new config was refused.
    pub async fn reload(&mut self, gateway: &GatewayHandle) -> Option<Outcome> {
        info!("reloading the config (SIGHUP)");
        match logging::reopen() {
            Ok(Some(path)) => info!("log file {} reopened", path.display()),
            Ok(None) => {}
            Err(e) => {
                error!("cannot reopen the log file: {e:#}; still writing to the one already open")
            }
        }
        let config = match Config::load(&self.overrides) {
            Ok(config) => config,
            Err(e) => {
                error!(
                    "config reload refused: {e}; the running config stays in force (fix the \
                     file, then reload again)"
                );
                return None;
            }
        };
        if config.file.modems.is_empty() {
            error!(
                "config reload refused: the new config has no modems; the running config stays \
                 in force (a gateway without modems would only stop)"
            );
            return None;
        }
        let new = Snapshot::of(&config);
        let settings: BTreeMap<String, conductor_gateway::ModemSettings> = gateway_config(&config)
            .modems
            .into_iter()
            .map(|m| (m.id.clone(), m))
            .collect();
        let mut outcome = Outcome::default();
        for (id, section) in &new.modems {
            match self.current.modems.get(id) {
                None => outcome.added.push(id.clone()),
                Some(old) if old != section => outcome.restarted.push(id.clone()),
                Some(_) => {}
            }
        }
        outcome.removed = self
            .current
            .modems
            .keys()
            .filter(|id| !new.modems.contains_key(*id))
            .cloned()
            .collect();
        // Refuse before changing anything when a new device string names no device.
        for id in outcome.added.iter().chain(&outcome.restarted) {
            if let Some(modem) = settings.get(id)
                && let Err(e) = conductor_modem::Device::parse(&modem.modem.device)
            {
                error!("config reload refused: modem {id}: {e}; the running config stays in force");
                return None;
            }
        }
        outcome.restart_needed = restart_needed(&self.current, &new);
        for field in &outcome.restart_needed {
            warn!(
                "restart needed for {field}: its new value takes effect at the next start \
                 (`systemctl restart conductor`)"
            );
        }

        let mut running = self.current.modems.clone();
        for id in outcome.removed.iter().chain(&outcome.restarted) {
            match gateway.remove_modem(id).await {
                Ok(()) => {
                    running.remove(id);
                }
                Err(e) => error!("could not stop modem {id}: {e}"),
            }
        }
        for id in outcome.added.iter().chain(&outcome.restarted) {
            let Some(modem) = settings.get(id) else {
                continue;
            };
            match gateway.add_modem(modem.clone()).await {
                Ok(()) => {
                    if let Some(section) = new.modems.get(id) {
                        running.insert(id.clone(), section.clone());
                    }
                }
                // Not recorded as running: the next reload tries it again.
                Err(e) => error!("could not start modem {id}: {e}"),
            }
        }
        if !(outcome.added.is_empty() && outcome.removed.is_empty()) {
            warn!(
                "restart needed for the HTTP API's list of modems: `modem` fields and \
                 /api/v1/modems know the modems the daemon started with"
            );
        }
        info!(
            added = ?outcome.added,
            removed = ?outcome.removed,
            restarted = ?outcome.restarted,
            "config reloaded"
        );
        // What runs now: the modems as changed, everything else as the daemon started (so a
        // change still waiting for a restart is reported again, and one undone is not).
        self.current.modems = running;
        Some(outcome)
    }
}

/// The fields, other than modems, whose value changed: `database`, then `section.field` for
/// each changed field of an object section, or the section's name.
fn restart_needed(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let mut fields = Vec::new();
    if old.database != new.database {
        fields.push("database".to_owned());
    }
    let names: std::collections::BTreeSet<&String> =
        old.sections.keys().chain(new.sections.keys()).collect();
    for name in names {
        let (before, after) = (old.sections.get(name), new.sections.get(name));
        if before == after {
            continue;
        }
        match (before, after) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    if a.get(key) != b.get(key) {
                        fields.push(format!("{name}.{key}"));
                    }
                }
            }
            _ => fields.push(name.clone()),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn snapshot(sections: Value) -> Snapshot {
        Snapshot {
            database: Database::Sqlite(PathBuf::from("/a.db")),
            sections: match sections {
                Value::Object(map) => map.into_iter().collect(),
                _ => BTreeMap::new(),
            },
            modems: BTreeMap::new(),
        }
    }

    #[test]
    fn changed_fields_are_named_without_their_values() {
        let old =
            snapshot(json!({"logging": {"level": "info", "file": null}, "http": {"listen": "a"}}));
        let mut new = snapshot(
            json!({"logging": {"level": "debug", "file": null}, "http": {"listen": "a"}, "backup": {"dir": "x"}}),
        );
        new.database = Database::Sqlite(PathBuf::from("/b.db"));
        assert_eq!(
            restart_needed(&old, &new),
            vec!["database", "backup", "logging.level"]
        );
        assert!(restart_needed(&old, &old).is_empty());
    }
}
