//! `conductor health`: each check with its state; exit 0 only when the database takes writes
//! and every configured modem is ready (DESIGN.md "Decisions: Health").
//!
//! It reads what the daemon records (`modem_status` rows and the time they were written) and
//! never opens a modem port: a row older than [`STALE_AFTER`] means the daemon is not
//! running or is stuck, which is itself unhealthy.

use crate::commands::messages::open_store;
use crate::config::Config;
use anyhow::{Result, bail};
use conductor_store::ModemState;
use jiff::Timestamp;
use serde::Serialize;
use std::time::Duration;

/// The daemon rewrites each status row at least every 15 s; four missed rewrites make it stale.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

/// Runs the checks, prints them, and fails (exit 1) when any is not ok.
pub async fn health(config: &Config, as_json: bool) -> Result<()> {
    let mut checks = Vec::new();
    let mut nodes = Vec::new();
    let store = match open_store(config).await {
        Ok(store) => Some(store),
        Err(error) => {
            checks.push(Check {
                name: "database".into(),
                ok: false,
                detail: format!("{error:#}"),
            });
            None
        }
    };
    if let Some(store) = &store {
        checks.push(match store.check_writable().await {
            Ok(()) => Check {
                name: "database".into(),
                ok: true,
                detail: format!("{} takes writes", config.database),
            },
            Err(error) => Check {
                name: "database".into(),
                ok: false,
                detail: error.to_string(),
            },
        });
        let rows = store.modem_statuses().await.unwrap_or_default();
        let mut expected: Vec<String> = config.file.modems.iter().map(|m| m.id.clone()).collect();
        if expected.is_empty() {
            // No config at hand (e.g. only --db): judge the modems the daemon recorded.
            expected = rows.iter().map(|r| r.modem_id.0.clone()).collect();
        }
        if expected.is_empty() {
            checks.push(Check {
                name: "modems".into(),
                ok: false,
                detail: "no modem configured or recorded; is `conductor run` running with modems?"
                    .into(),
            });
        }
        let now = Timestamp::now();
        // Several nodes on PostgreSQL: which node drives each modem (none on SQLite).
        let leases = store.leases().await.unwrap_or_default();
        nodes = conductor_store::by_node(&leases, now);
        let driven_by = |id: &str| {
            leases
                .iter()
                .find(|l| l.modem.0 == id && l.is_live(now))
                .map(|l| format!(" (node {})", l.node))
                .unwrap_or_default()
        };
        for id in expected {
            let name = format!("modem {id}");
            let Some(row) = rows.iter().find(|r| r.modem_id.0 == id) else {
                checks.push(Check {
                    name,
                    ok: false,
                    detail: "no status recorded: the daemon has not started this modem".into(),
                });
                continue;
            };
            let age = row.age(now);
            let check = if age > STALE_AFTER {
                Check {
                    name,
                    ok: false,
                    detail: format!(
                        "status last written {} UTC, {} ago: the daemon is not running or is stuck",
                        row.updated_at.as_str(),
                        humantime::format_duration(Duration::from_secs(age.as_secs()))
                    ),
                }
            } else if row.state == ModemState::Ready {
                Check {
                    name,
                    ok: true,
                    detail: format!("ready{}", driven_by(&id)),
                }
            } else {
                Check {
                    name,
                    ok: false,
                    detail: format!(
                        "{}{}",
                        row.state.as_str(),
                        row.last_error
                            .as_ref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ),
                }
            };
            checks.push(check);
        }
    }
    let healthy = checks.iter().all(|c| c.ok);
    // Active alerts (raised by the daemon's evaluator) are shown, but do not change the exit
    // code: that stays "database writable and every modem ready" (DESIGN.md "Health").
    let alerts = match &store {
        Some(store) => store.active_alerts().await.unwrap_or_default(),
        None => Vec::new(),
    };
    if as_json {
        println!(
            "{}",
            serde_json::json!({ "healthy": healthy, "checks": checks, "alerts": alerts, "nodes": nodes })
        );
    } else {
        for check in &checks {
            println!(
                "{:<4} {:<16} {}",
                if check.ok { "ok" } else { "FAIL" },
                check.name,
                check.detail
            );
        }
        for node in &nodes {
            let modems: Vec<&str> = node.modems.iter().map(|m| m.0.as_str()).collect();
            println!(
                "{:<4} {:<16} {}",
                if node.live { "ok" } else { "GONE" },
                format!("node {}", node.node),
                if node.live {
                    format!("holds {}", modems.join(", "))
                } else {
                    format!("no heartbeat since {} UTC", node.heartbeat_at.as_str())
                }
            );
        }
        for alert in &alerts {
            let name = format!("alert {}", alert.key);
            println!(
                "WARN {name:<16} {} (since {} UTC)",
                alert.message, alert.raised_at
            );
        }
    }
    if !healthy {
        let failing: Vec<&str> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        bail!("unhealthy: {}", failing.join(", "));
    }
    Ok(())
}
