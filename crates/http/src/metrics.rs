//! `GET /metrics`: Prometheus text exposition (format 0.0.4), computed from the database on
//! each scrape, so it is right whoever wrote the rows and survives restarts.
//!
//! From rows: messages by direction and status, queue depth, modem state/up/signal/SIM storage
//! and status-row age (status rows), send and inbound latency histograms (row times, so 1 s
//! resolution), webhook deliveries and attempts by endpoint and state, the database file size.
//!
//! From the running gateway's memory ([`crate::AppState::counters`]): CMS/CME errors by modem
//! and code, and reconnects. No row records these (a failed send keeps its CMS code on its own
//! row, not as a count), so they start at zero with the daemon, which Prometheus's `rate()`
//! and `increase()` expect of a counter. Without a gateway in the process they are left out.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use conductor_store::{Direction, Status};

use crate::AppState;
use crate::api::modem_views;
use crate::error::ApiError;

/// Histogram bounds for the latencies, in seconds.
const LATENCY_BOUNDS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0];

pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::new();
    let totals = state.store().totals().await?;

    family(
        &mut out,
        "conductor_messages",
        "gauge",
        "Messages in the database by direction and status.",
    );
    for direction in [Direction::Inbound, Direction::Outbound] {
        for status in Status::ALL {
            let inbound = matches!(status, Status::Unread | Status::Read);
            if inbound != (direction == Direction::Inbound) {
                continue;
            }
            let n = totals
                .iter()
                .find(|t| t.direction == direction && t.status == status)
                .map_or(0, |t| t.count);
            let _ = writeln!(
                out,
                "conductor_messages{{direction=\"{direction}\",status=\"{status}\"}} {n}"
            );
        }
    }
    let queued = totals
        .iter()
        .filter(|t| t.direction == Direction::Outbound && t.status == Status::Queued)
        .map(|t| t.count)
        .sum::<u64>();
    family(
        &mut out,
        "conductor_queue_depth",
        "gauge",
        "Outbound messages waiting to be sent (queued).",
    );
    let _ = writeln!(out, "conductor_queue_depth {queued}");
    // Blocked and expired are in conductor_messages{status=...} above.
    let held = state.store().held_counts().await?;
    family(
        &mut out,
        "conductor_messages_held",
        "gauge",
        "Queued messages held back, by what holds them (a sending limit, quiet hours, their modem).",
    );
    for limit in conductor_store::policy::limit::ALL {
        let n = held.iter().find(|(l, _)| l == limit).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "conductor_messages_held{{limit=\"{limit}\"}} {n}");
    }
    let sending = totals
        .iter()
        .filter(|t| t.status == Status::Sending)
        .map(|t| t.count)
        .sum::<u64>();
    family(
        &mut out,
        "conductor_sending",
        "gauge",
        "Outbound messages being sent now.",
    );
    let _ = writeln!(out, "conductor_sending {sending}");

    let modems = modem_views(&state).await?;
    family(
        &mut out,
        "conductor_modem_up",
        "gauge",
        "1 when the modem is ready and its status row is fresh.",
    );
    for m in &modems {
        let _ = writeln!(
            out,
            "conductor_modem_up{{modem=\"{}\"}} {}",
            esc(m.id()),
            u8::from(m.is_ready())
        );
    }
    family(
        &mut out,
        "conductor_modem_state",
        "gauge",
        "The modem's state as last recorded (1 for the current one).",
    );
    for m in &modems {
        let current = m.row().map_or("unknown", |r| r.state.as_str());
        for state in ["starting", "ready", "degraded", "down", "unknown"] {
            let _ = writeln!(
                out,
                "conductor_modem_state{{modem=\"{}\",state=\"{state}\"}} {}",
                esc(m.id()),
                u8::from(state == current)
            );
        }
    }
    family(
        &mut out,
        "conductor_modem_signal_dbm",
        "gauge",
        "Signal strength in dBm (AT+CSQ).",
    );
    for m in &modems {
        if let Some(dbm) = m.row().and_then(|r| r.signal_dbm) {
            let _ = writeln!(
                out,
                "conductor_modem_signal_dbm{{modem=\"{}\"}} {dbm}",
                esc(m.id())
            );
        }
    }
    family(
        &mut out,
        "conductor_sim_used",
        "gauge",
        "Message slots in use (AT+CPMS?).",
    );
    for m in &modems {
        for s in m.row().map(|r| r.storage.as_slice()).unwrap_or_default() {
            let _ = writeln!(
                out,
                "conductor_sim_used{{modem=\"{}\",memory=\"{}\"}} {}",
                esc(m.id()),
                esc(&s.memory),
                s.used
            );
        }
    }
    family(
        &mut out,
        "conductor_sim_total",
        "gauge",
        "Message slots in all (AT+CPMS?).",
    );
    for m in &modems {
        for s in m.row().map(|r| r.storage.as_slice()).unwrap_or_default() {
            let _ = writeln!(
                out,
                "conductor_sim_total{{modem=\"{}\",memory=\"{}\"}} {}",
                esc(m.id()),
                esc(&s.memory),
                s.total
            );
        }
    }
    family(
        &mut out,
        "conductor_modem_status_age_seconds",
        "gauge",
        "Seconds since the daemon last wrote the modem's status row.",
    );
    let now = state.now();
    for m in &modems {
        if let Some(t) = m.row().and_then(|r| r.updated_at.timestamp()) {
            let age = now.duration_since(t).as_secs_f64().max(0.0);
            let _ = writeln!(
                out,
                "conductor_modem_status_age_seconds{{modem=\"{}\"}} {age:.0}",
                esc(m.id())
            );
        }
    }
    // Several nodes on PostgreSQL: which node holds which modem (nothing on SQLite).
    let leases = state.store().leases().await.unwrap_or_default();
    if !leases.is_empty() {
        family(
            &mut out,
            "conductor_modem_lease",
            "gauge",
            "1 while the node holds a live lease on the modem (drives it), 0 once it expired.",
        );
        for lease in &leases {
            let _ = writeln!(
                out,
                "conductor_modem_lease{{modem=\"{}\",node=\"{}\"}} {}",
                esc(&lease.modem.0),
                esc(&lease.node),
                u8::from(lease.is_live(now))
            );
        }
        family(
            &mut out,
            "conductor_node_live",
            "gauge",
            "1 while the node holds at least one live modem lease.",
        );
        for node in conductor_store::by_node(&leases, now) {
            let _ = writeln!(
                out,
                "conductor_node_live{{node=\"{}\"}} {}",
                esc(&node.node),
                u8::from(node.live)
            );
        }
    }

    if let Some(counters) = state.counters() {
        family(
            &mut out,
            "conductor_modem_errors_total",
            "counter",
            "+CMS ERROR (kind=cms) and +CME ERROR (kind=cme) answers by modem and code, since the \
             daemon started.",
        );
        for e in &counters.errors {
            let _ = writeln!(
                out,
                "conductor_modem_errors_total{{modem=\"{}\",kind=\"{}\",code=\"{}\"}} {}",
                esc(&e.modem),
                e.kind,
                esc(&e.code),
                e.count
            );
        }
        family(
            &mut out,
            "conductor_modem_reconnects_total",
            "counter",
            "Times the modem came back after losing its link or restarting, since the daemon \
             started.",
        );
        for (modem, count) in &counters.reconnects {
            let _ = writeln!(
                out,
                "conductor_modem_reconnects_total{{modem=\"{}\"}} {count}",
                esc(modem)
            );
        }
    }

    let webhooks = state.store().webhook_counts().await?;
    family(
        &mut out,
        "conductor_webhook_deliveries",
        "gauge",
        "Webhook deliveries in the outbox by endpoint and state.",
    );
    for c in &webhooks {
        let _ = writeln!(
            out,
            "conductor_webhook_deliveries{{endpoint=\"{}\",state=\"{}\"}} {}",
            esc(&c.endpoint),
            c.state.as_str(),
            c.deliveries
        );
    }
    family(
        &mut out,
        "conductor_webhook_attempts_total",
        "counter",
        "Webhook delivery attempts made, by endpoint and the delivery's state.",
    );
    for c in &webhooks {
        let _ = writeln!(
            out,
            "conductor_webhook_attempts_total{{endpoint=\"{}\",state=\"{}\"}} {}",
            esc(&c.endpoint),
            c.state.as_str(),
            c.attempts
        );
    }

    for (which, name, help) in [
        (
            conductor_store::Latency::Send,
            "conductor_send_latency_seconds",
            "Outbound: queued (or send_at) to accepted by the network, from the rows (1 s resolution).",
        ),
        (
            conductor_store::Latency::Inbound,
            "conductor_inbound_latency_seconds",
            "Inbound: SMSC time stamp to stored, from the rows (1 s resolution).",
        ),
    ] {
        let h = state
            .store()
            .latency_histogram(which, LATENCY_BOUNDS.to_vec())
            .await?;
        family(&mut out, name, "histogram", help);
        for (bound, n) in &h.buckets {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum);
        let _ = writeln!(out, "{name}_count {}", h.count);
    }

    if let Some(path) = state.store().sqlite_path() {
        let size = |p: std::path::PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        family(
            &mut out,
            "conductor_database_bytes",
            "gauge",
            "Size of the SQLite file and its WAL.",
        );
        let _ = writeln!(
            out,
            "conductor_database_bytes{{file=\"db\"}} {}",
            size(path.to_path_buf())
        );
        let _ = writeln!(
            out,
            "conductor_database_bytes{{file=\"wal\"}} {}",
            size(wal.into())
        );
    }

    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response())
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value.
fn esc(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
