//! `conductor watch`: a live terminal view of the database (the original system's "live
//! database viewer"): modem panel, queue, newest messages, redrawn in place whenever another
//! process (the daemon, n8n, a script) commits.
//!
//! It reads the database only, like `status`, so it is safe next to a running daemon. Changes
//! are noticed through `PRAGMA data_version` (a counter in shared memory), polled four times
//! a second; the screen is also redrawn every few seconds so ages and staleness stay true.

use crate::commands::health::STALE_AFTER;
use crate::commands::messages::open_store;
use crate::config::Config;
use anyhow::{Context, Result};
use conductor_store::{Direction, ListFilter, Message, Status, Store};
use jiff::Timestamp;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// How often the change counter is read.
const POLL: Duration = Duration::from_millis(250);
/// Redraw at least this often, even with no change.
const REFRESH: Duration = Duration::from_secs(5);

/// Runs the view until Ctrl-C; with `once`, prints one frame and returns (scripts, tests).
pub async fn watch(config: &Config, once: bool, rows: usize) -> Result<()> {
    let store = open_store(config).await?;
    let terminal = std::io::stdout().is_terminal() && !once;
    let mut changes = store
        .watch_external_changes(POLL)
        .await
        .context("cannot watch the database for changes")?;
    loop {
        let frame = render(&store, config, rows).await?;
        let mut stdout = std::io::stdout().lock();
        if terminal {
            // Home the cursor and clear: redraw in place.
            write!(stdout, "\x1b[H\x1b[2J")?;
        }
        write!(stdout, "{frame}")?;
        stdout.flush()?;
        drop(stdout);
        if once {
            return Ok(());
        }
        tokio::select! {
            () = crate::shutdown_signal() => return Ok(()),
            changed = changes.changed() => { changed.context("lost the database while watching")?; }
            () = tokio::time::sleep(REFRESH) => {}
        }
    }
}

async fn render(store: &Store, config: &Config, rows: usize) -> Result<String> {
    let now = Timestamp::now();
    let modems = store
        .modem_statuses()
        .await
        .context("cannot read modem status")?;
    let totals = store.totals().await.context("cannot count messages")?;
    let newest = |direction| ListFilter {
        direction: Some(direction),
        limit: rows,
        ..ListFilter::default()
    };
    let inbound = store.list(newest(Direction::Inbound)).await?;
    let outbound = store.list(newest(Direction::Outbound)).await?;
    let count = |status: Status| {
        totals
            .iter()
            .filter(|t| t.status == status)
            .map(|t| t.count)
            .sum::<u64>()
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "conductor watch  {}  {} UTC  (Ctrl-C to quit)",
        config.database,
        now.strftime("%Y-%m-%d %H:%M:%S")
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "MODEMS");
    if modems.is_empty() {
        let _ = writeln!(out, "  none recorded yet: is `conductor run` running?");
    }
    for modem in &modems {
        let age = modem.age(now);
        let state = if age > STALE_AFTER {
            format!("{} (stale: daemon not running?)", modem.state.as_str())
        } else {
            modem.state.as_str().to_owned()
        };
        let storage = modem
            .storage
            .iter()
            .map(|s| format!("{} {}", s.memory, s.display()))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "  {:<10} {:<12} {:>8}  {:<24} {}",
            modem.modem_id.0,
            state,
            modem
                .signal_dbm
                .map_or("-".into(), |dbm| format!("{dbm} dBm")),
            modem.operator.as_deref().unwrap_or("-"),
            storage
        );
        if let Some(error) = &modem.last_error {
            let _ = writeln!(out, "  {:<10} last error: {error}", "");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "QUEUE  {} queued, {} sending, {} unknown, {} failed   INBOX  {} unread",
        count(Status::Queued),
        count(Status::Sending),
        count(Status::Unknown),
        count(Status::Failed),
        count(Status::Unread)
    );
    section(&mut out, "NEWEST INBOUND", &inbound);
    section(&mut out, "NEWEST OUTBOUND", &outbound);
    Ok(out)
}

fn section(out: &mut String, title: &str, rows: &[Message]) {
    let _ = writeln!(out);
    let _ = writeln!(out, "{title}");
    if rows.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for row in rows {
        let mut text: String = row.content.chars().take(60).collect();
        if row.content.chars().count() > 60 {
            text.push('…');
        }
        let _ = writeln!(
            out,
            "  {:>6} {:<9} {:<16} {} {}",
            row.id.0,
            row.status.as_str(),
            row.phone_number,
            row.timestamp.as_str(),
            text.replace(['\n', '\r'], " ")
        );
    }
}
