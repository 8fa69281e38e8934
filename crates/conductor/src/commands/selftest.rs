//! `conductor selftest --to NUMBER`: the loopback check an operator runs after installing.
//!
//! It queues a uniquely tagged SMS through the database the running daemon serves (as `send`
//! does: this process never opens a modem port), asks for a status report, and watches the rows
//! and the event log until the message comes back as an inbound message or the deadline
//! passes. Then it prints each step's time, taken from what the daemon recorded: queued,
//! claimed for sending, accepted by the network (`+CMGS`, `sent`), the status report, the
//! service centre's time stamp of the returning message, and the moment it was stored
//! (after `+CMTI` and the read). The verdict is pass when the message came back; otherwise
//! fail, naming the first step that never happened. The returning message is marked read, so
//! systems that poll for `unread` messages do not process it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use conductor_store::{Direction, Event, ListFilter, ModemId, NewOutbound, SqlTime, Status, Store};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use crate::cli::SelftestArgs;
use crate::config::Config;

const POLL: Duration = Duration::from_millis(250);
/// How long to keep waiting for the status report once the message is back.
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// One step and when it happened.
#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    /// RFC 3339, UTC; None when it did not happen.
    at: Option<String>,
    /// Milliseconds after queueing.
    after_ms: Option<i64>,
    detail: Option<String>,
}

/// Runs the self-test; exits 1 on failure.
pub async fn selftest(config: &Config, args: SelftestArgs) -> Result<()> {
    let timeout = humantime::parse_duration(&args.timeout)
        .with_context(|| format!("--timeout {:?}: use a duration such as 3m", args.timeout))?;
    if let Some(modem) = &args.modem
        && !config.file.modems.iter().any(|m| &m.id == modem)
    {
        bail!("--modem {modem:?} is not configured: use one of the `modems` ids in the config");
    }
    let store = crate::commands::messages::open_store(config).await?;
    let queued_at = Timestamp::now();
    let tag = format!(
        "Conductor selftest {:x}{:x}",
        queued_at.as_nanosecond() as u64 & 0xffff_ffff,
        std::process::id()
    );
    let id = store
        .queue_outbound(
            NewOutbound {
                to: args.to.clone(),
                text: tag.clone(),
                modem_id: args.modem.as_deref().map(ModemId::from),
                source: "selftest".into(),
                allow_duplicate: true,
                status_report: Some(true),
                send_at: None,
                priority: 100,
                expires_at: None,
                transactional: true,
            },
            queued_at,
        )
        .await
        .context("cannot queue the self-test message")?;
    if !args.json {
        println!("queued message {} to {}: {tag:?}", id.0, args.to);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut back_since: Option<tokio::time::Instant> = None;
    let (outbound, inbound) = loop {
        let outbound = store
            .message(id)
            .await?
            .context("the self-test row vanished")?;
        let inbound = find_inbound(&store, &tag).await?;
        let status = outbound.message.status;
        let settled = matches!(status, Status::Delivered | Status::Failed);
        let dead = matches!(
            status,
            Status::Cancelled
                | Status::Duplicate
                | Status::Unknown
                | Status::Expired
                | Status::Blocked
        ) || (status == Status::Failed && inbound.is_none());
        if inbound.is_some() && back_since.is_none() {
            back_since = Some(tokio::time::Instant::now());
        }
        let grace_over = back_since.is_some_and(|t| t.elapsed() >= REPORT_GRACE);
        if (inbound.is_some() && (settled || grace_over))
            || dead
            || tokio::time::Instant::now() >= deadline
        {
            break (outbound, inbound);
        }
        tokio::time::sleep(POLL).await;
    };
    // The database keeps whole seconds: every step, the first included, is read from it.
    let queued_at = outbound.message.created_at.timestamp().unwrap_or(queued_at);
    let history = &outbound.history;
    let first = |kinds: &[&str]| history.iter().find(|e| kinds.contains(&e.kind.as_str()));
    let at_of = |e: Option<&Event>| e.map(|e| e.at.clone());
    let report_event = first(&["status_report"]);
    let mut steps = vec![
        step(
            "queued",
            Some(SqlTime::from_timestamp(queued_at)),
            queued_at,
            None,
        ),
        step(
            "submitted",
            at_of(first(&["claimed"])),
            queued_at,
            first(&["claimed"]).and_then(|e| e.modem_id.as_ref().map(|m| format!("modem {m}"))),
        ),
        step(
            "sent (+CMGS accepted)",
            at_of(first(&["sent"])),
            queued_at,
            None,
        ),
        step(
            "delivery report",
            at_of(report_event),
            queued_at,
            report_event
                .and_then(|e| e.detail.as_ref())
                .map(|d| d["category"].as_str().unwrap_or_default().to_owned()),
        ),
    ];
    let (inbound_id, smsc, stored) = match &inbound {
        Some(m) => (
            Some(m.id),
            m.smsc_timestamp
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok()),
            Some(m.created_at.clone()),
        ),
        None => (None, None, None),
    };
    steps.push(step(
        "network time stamp of the returning SMS",
        smsc.map(SqlTime::from_timestamp),
        queued_at,
        None,
    ));
    steps.push(step(
        "received (+CMTI) and stored",
        stored,
        queued_at,
        inbound_id.map(|i| format!("inbound message {}", i.0)),
    ));
    if let Some(inbound_id) = inbound_id {
        let _ = store.mark_read(vec![inbound_id], Timestamp::now()).await;
    }
    let pass = inbound.is_some();
    let missing: Vec<&str> = steps
        .iter()
        .filter(|s| s.at.is_none())
        .map(|s| s.step)
        .collect();
    let verdict_reason = if pass {
        None
    } else {
        Some(format!(
            "the message did not come back within {}; missing: {}{}",
            humantime::format_duration(timeout),
            missing.join(", "),
            match outbound.message.reason.as_deref() {
                Some(reason) =>
                    format!(" (outbound {}: {reason})", outbound.message.status.as_str()),
                None => format!(" (outbound status {})", outbound.message.status.as_str()),
            }
        ))
    };
    if args.json {
        println!(
            "{}",
            json!({
                "verdict": if pass { "pass" } else { "fail" },
                "tag": tag,
                "message_id": id.0,
                "inbound_id": inbound_id.map(|i| i.0),
                "outbound_status": outbound.message.status.as_str(),
                "steps": steps,
                "missing": missing,
                "reason": verdict_reason,
            })
        );
    } else {
        for s in &steps {
            match (&s.at, s.after_ms) {
                (Some(at), Some(ms)) => println!(
                    "  {:<42} {at}  +{:.1}s{}",
                    s.step,
                    ms as f64 / 1000.0,
                    s.detail
                        .as_ref()
                        .map(|d| format!("  ({d})"))
                        .unwrap_or_default()
                ),
                _ => println!("  {:<42} missing", s.step),
            }
        }
        match &verdict_reason {
            None => println!("PASS: the message came back"),
            Some(reason) => println!("FAIL: {reason}"),
        }
    }
    if !pass {
        std::process::exit(1);
    }
    Ok(())
}

fn step(name: &'static str, at: Option<SqlTime>, start: Timestamp, detail: Option<String>) -> Step {
    let t = at.as_ref().and_then(SqlTime::timestamp);
    Step {
        step: name,
        at: t.map(|t| t.to_string()),
        after_ms: t.map(|t| t.duration_since(start).as_millis() as i64),
        detail,
    }
}

/// The inbound message carrying `tag`, if it is back.
async fn find_inbound(store: &Store, tag: &str) -> Result<Option<conductor_store::Message>> {
    Ok(store
        .list(ListFilter {
            direction: Some(Direction::Inbound),
            text_contains: Some(tag.to_owned()),
            limit: 5,
            ..ListFilter::default()
        })
        .await?
        .into_iter()
        .find(|m| m.content.contains(tag)))
}
