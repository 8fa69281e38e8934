//! The message verbs that work on the database alone: `send`, `mark-read`, `requeue`,
//! `cancel`, `list`, `show`, `status`.
//!
//! None of them opens a modem port (DESIGN.md, "Decisions: Database"): serial ports are
//! exclusive, so they read and write the rows the daemon works from, and the daemon picks
//! changes up within a second.

use crate::cli::{ListArgs, SendArgs};
use crate::config::{Config, Database};
use anyhow::{Context, Result, bail};
use conductor_store::{
    Direction, ListFilter, Message, MessageId, ModemId, NewOutbound, Status, Store, StoreOptions,
};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use std::io::Read;
use std::path::Path;

/// An operation not ported to PostgreSQL yet reads as empty in `status` (the rest still shows).
fn not_on_postgres<T: Default>(
    e: conductor_store::StoreError,
) -> Result<T, conductor_store::StoreError> {
    match e {
        conductor_store::StoreError::NotOnPostgres { .. } => Ok(T::default()),
        e => Err(e),
    }
}

/// Opens the database the config names, creating the file (and its folder) when missing.
pub async fn open_store(config: &Config) -> Result<Store> {
    match &config.database {
        Database::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot create the database folder {}", parent.display())
                })?;
            }
            Store::open_sqlite(path.clone(), StoreOptions::default())
                .await
                .with_context(|| format!("cannot open the database {}", path.display()))
        }
        Database::Postgres(url) => Store::open_url(url, StoreOptions::default())
            .await
            .with_context(|| format!("cannot open the database {}", config.database)),
    }
}

/// One message to queue, from the command line or a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRow {
    to: String,
    text: String,
    #[serde(default)]
    modem: Option<String>,
}

/// `conductor send`.
pub async fn send(config: &Config, args: SendArgs) -> Result<()> {
    let rows = match (&args.file, &args.number, &args.text) {
        (Some(file), _, _) => read_send_file(file)?,
        (None, Some(number), Some(text)) => vec![SendRow {
            to: number.clone(),
            text: text.clone(),
            modem: None,
        }],
        _ => bail!("give NUMBER and TEXT, or --file FILE"),
    };
    // Check every row before queuing any, so a bad line 900 does not leave 899 queued.
    let configured: Vec<&str> = config.file.modems.iter().map(|m| m.id.as_str()).collect();
    let rules = config.send_rules();
    let mut rows = rows;
    for (i, row) in rows.iter_mut().enumerate() {
        let label = if args.file.is_some() {
            format!("row {}: ", i + 1)
        } else {
            String::new()
        };
        if row.text.trim().is_empty() {
            bail!(
                "{label}cannot send to {:?}: the text is empty, nothing to send",
                row.to
            );
        }
        // The sending policy's rules (issue 11): the number in international form, the
        // part limit. The same rules fail rows written with SQL at claim time. The codec
        // checks the number as it will go out; a number both refuse gets the codec's words.
        let encodes = |to: &str| {
            conductor_sms::encode_submit(to, &row.text, &conductor_sms::SubmitOptions::default())
                .map(|_| ())
                .with_context(|| format!("{label}cannot send to {:?}", row.to))
        };
        match rules.check(&row.to, &row.text) {
            Ok((to, _)) => {
                encodes(&to)?;
                row.to = to;
            }
            Err(conductor_store::policy::Refusal::To(reason)) => {
                encodes(&row.to)?;
                bail!("{label}{reason} (the number rules are `numbers` in the config)")
            }
            Err(conductor_store::policy::Refusal::Text(reason)) => {
                encodes(&row.to)?;
                bail!("{label}cannot send to {:?}: {reason}", row.to)
            }
        }
        if let Some(modem) = row.modem.as_ref().or(args.modem.as_ref())
            && !configured.is_empty()
            && !configured.contains(&modem.as_str())
        {
            bail!(
                "{label}no modem \"{modem}\" in the config; configured: {}",
                configured.join(", ")
            );
        }
    }
    let store = open_store(config).await?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let modem = row.modem.or_else(|| args.modem.clone());
        let id = store
            .queue_outbound(
                NewOutbound {
                    to: row.to,
                    text: row.text,
                    modem_id: modem.map(ModemId),
                    source: "cli".into(),
                    allow_duplicate: args.allow_duplicate,
                    status_report: args.no_status_report.then_some(false),
                    send_at: None,
                    priority: args.priority,
                    expires_at: None,
                    transactional: args.transactional,
                },
                Timestamp::now(),
            )
            .await
            .context("cannot queue the message")?;
        ids.push(id.0);
    }
    if args.json {
        println!("{}", json!({ "queued": ids }));
    } else {
        for id in &ids {
            println!("queued message {id}");
        }
        println!(
            "the daemon sends queued messages within a second; `conductor show ID` follows one"
        );
    }
    Ok(())
}

fn read_send_file(path: &Path) -> Result<Vec<SendRow>> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let rows = if first.trim_start().starts_with('{') {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).with_context(|| {
                    format!(
                        "{} line {}: expected {{\"to\": ..., \"text\": ..., \"modem\": optional}}",
                        path.display(),
                        i + 1
                    )
                })
            })
            .collect::<Result<Vec<SendRow>>>()?
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::Headers)
            .from_reader(text.as_bytes());
        reader
            .deserialize()
            .enumerate()
            .map(|(i, row)| {
                row.with_context(|| {
                    format!(
                        "{} record {}: expected the columns to,text (and optionally modem) under a header line",
                        path.display(),
                        i + 1
                    )
                })
            })
            .collect::<Result<Vec<SendRow>>>()?
    };
    if rows.is_empty() {
        bail!("{} holds no messages", path.display());
    }
    Ok(rows)
}

/// `conductor mark-read`, `requeue` and `cancel`: one change per id, each reported.
pub async fn change(config: &Config, verb: Verb, ids: Vec<i64>) -> Result<()> {
    let store = open_store(config).await?;
    let now = Timestamp::now();
    let mut failed = 0;
    match verb {
        Verb::MarkRead => {
            let changed = store
                .mark_read(ids.iter().copied().map(MessageId).collect(), now)
                .await
                .context("cannot mark messages read")?;
            for id in &ids {
                if changed.contains(&MessageId(*id)) {
                    println!("message {id}: read");
                } else {
                    failed += 1;
                    eprintln!("message {id}: not an unread inbound message; unchanged");
                }
            }
        }
        Verb::Requeue | Verb::Cancel => {
            for id in ids {
                let result = match verb {
                    Verb::Requeue => store.requeue(MessageId(id), now).await,
                    _ => store.cancel(MessageId(id), now).await,
                };
                match result {
                    Ok(()) => println!("message {id}: {}", verb.done()),
                    Err(error) => {
                        failed += 1;
                        eprintln!("message {id}: {error}");
                    }
                }
            }
        }
    }
    if failed > 0 {
        bail!("{failed} message(s) were not changed");
    }
    Ok(())
}

/// A change `change` makes.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    /// `mark-read`.
    MarkRead,
    /// `requeue`.
    Requeue,
    /// `cancel`.
    Cancel,
}

impl Verb {
    fn done(self) -> &'static str {
        match self {
            Verb::MarkRead => "read",
            Verb::Requeue => "queued again",
            Verb::Cancel => "cancelled",
        }
    }
}

/// Parses `--since`/`--until`: RFC 3339, SQL-style UTC text, or a duration ago.
fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(civil) = text.parse::<jiff::civil::DateTime>()
        && let Ok(t) = jiff::tz::TimeZone::UTC.to_timestamp(civil)
    {
        return Ok(t);
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        let ago = jiff::SignedDuration::try_from(ago).context("that duration is too long")?;
        return now
            .checked_sub(ago)
            .context("that duration reaches before the year -9999");
    }
    bail!(
        "cannot read the time {text:?}: give RFC 3339 (2026-11-26T10:00:00Z), \"2026-11-26 10:00:00\" (UTC) or a duration ago such as 2h"
    )
}

/// `conductor list`.
pub async fn list(config: &Config, args: ListArgs) -> Result<()> {
    let now = Timestamp::now();
    let filter = ListFilter {
        status: args
            .status
            .as_deref()
            .map(str::parse::<Status>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--status: {e}"))?,
        direction: args
            .direction
            .as_deref()
            .map(str::parse::<Direction>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--direction: {e}"))?,
        number: args.number,
        modem_id: args.modem.map(ModemId),
        since: args
            .since
            .as_deref()
            .map(|t| parse_time(t, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_time(t, now))
            .transpose()?,
        text_contains: args.search,
        before_id: args.before.map(MessageId),
        limit: args.limit.max(1),
    };
    let store = open_store(config).await?;
    let rows = store.list(filter).await.context("cannot list messages")?;
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("no messages match");
        return Ok(());
    }
    println!(
        "{:>6}  {:<8}  {:<9}  {:<16}  {:<8}  {:<19}  text",
        "id", "dir", "status", "number", "modem", "time (UTC)"
    );
    for row in &rows {
        println!("{}", table_line(row));
    }
    if rows.len() == args.limit
        && let Some(last) = rows.last()
    {
        println!("(more: --before {})", last.id.0);
    }
    Ok(())
}

fn table_line(row: &Message) -> String {
    let modem = row
        .modem_id
        .as_ref()
        .or(row.sending_modem.as_ref())
        .map_or("-", |m| m.0.as_str());
    let mut text: String = row.content.chars().take(48).collect();
    if row.content.chars().count() > 48 {
        text.push('…');
    }
    let text = text.replace(['\n', '\r'], " ");
    format!(
        "{:>6}  {:<8}  {:<9}  {:<16}  {:<8}  {:<19}  {}",
        row.id.0,
        row.direction.as_str(),
        row.status.as_str(),
        row.phone_number,
        modem,
        row.timestamp.as_str(),
        text
    )
}

/// `conductor show`.
pub async fn show(config: &Config, id: i64, as_json: bool) -> Result<()> {
    let store = open_store(config).await?;
    let Some(detail) = store
        .message(MessageId(id))
        .await
        .context("cannot read the message")?
    else {
        bail!("no message {id}; `conductor list` shows the ids");
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(());
    }
    let m = &detail.message;
    println!(
        "message {}  {} {}",
        m.id.0,
        m.direction.as_str(),
        m.status.as_str()
    );
    println!("  number     {}", m.phone_number);
    println!(
        "  time       {} UTC (created {}, updated {})",
        m.timestamp.as_str(),
        m.created_at.as_str(),
        m.updated_at.as_str()
    );
    if let Some(modem) = m.modem_id.as_ref().or(m.sending_modem.as_ref()) {
        println!("  modem      {}", modem.0);
    }
    if let Some(smsc_time) = &m.smsc_timestamp {
        println!("  SMSC time  {smsc_time}");
    }
    if let Some(slot) = m.modem_index {
        println!("  on SIM     slot {slot}");
    }
    if let Some(reason) = &m.reason {
        println!("  reason     {reason}");
    }
    if m.incomplete {
        println!("  incomplete {}/{} parts", m.parts_received, m.parts_total);
    }
    println!("  text       {}", m.content);
    for part in &detail.parts {
        println!(
            "  part {}/{}{}",
            part.seq,
            part.total,
            part.sim_slot
                .map(|s| format!(" (SIM slot {s})"))
                .unwrap_or_default()
        );
    }
    for report in &detail.reports {
        println!(
            "  report     {} status {} ({}) at {}",
            report.received_at.as_str(),
            report.status_code,
            report.category,
            report.discharge_time.as_deref().unwrap_or("-")
        );
    }
    for event in &detail.history {
        let detail = event
            .detail
            .as_ref()
            .map(|d| format!(" {d}"))
            .unwrap_or_default();
        println!("  {}  {}{}", event.at.as_str(), event.kind, detail);
    }
    Ok(())
}

/// `conductor status`.
pub async fn status(config: &Config, as_json: bool) -> Result<()> {
    let store = open_store(config).await?;
    let totals = store.totals().await.context("cannot count messages")?;
    let modems = store
        .modem_statuses()
        .await
        .context("cannot read modem status")?;
    let limits = store
        .limit_usage(
            crate::policy_config::limits_by_modem(&config.file.modems),
            config.file.outbound.recipient_per_hour,
            Timestamp::now(),
        )
        .await
        .or_else(not_on_postgres)
        .context("cannot measure the sending limits")?;
    let held = store
        .held_counts()
        .await
        .or_else(not_on_postgres)
        .context("cannot count held messages")?;
    // Several nodes on PostgreSQL: which node holds which modem (empty on SQLite).
    let nodes = conductor_store::by_node(
        &store
            .leases()
            .await
            .context("cannot read the modem leases")?,
        Timestamp::now(),
    );
    if as_json {
        let totals: Vec<_> = totals
            .iter()
            .map(|t| json!({"direction": t.direction.as_str(), "status": t.status.as_str(), "count": t.count}))
            .collect();
        let held: serde_json::Map<String, serde_json::Value> =
            held.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
        println!(
            "{}",
            json!({ "database": config.database.to_string(), "totals": totals, "modems": modems,
                    "limits": limits, "held": held, "nodes": nodes })
        );
        return Ok(());
    }
    println!("database: {}", config.database);
    for node in &nodes {
        let list = |modems: &[ModemId]| {
            modems
                .iter()
                .map(|m| m.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let holds = if node.modems.is_empty() {
            "no modem".to_owned()
        } else {
            list(&node.modems)
        };
        let expired = if node.expired.is_empty() {
            String::new()
        } else {
            format!("; lease expired: {}", list(&node.expired))
        };
        println!(
            "node    : {} {} holds {holds}{expired} (heartbeat {} UTC)",
            node.node,
            if node.live { "(live)" } else { "(gone)" },
            node.heartbeat_at.as_str()
        );
    }
    for direction in [Direction::Inbound, Direction::Outbound] {
        let counts: Vec<String> = totals
            .iter()
            .filter(|t| t.direction == direction && t.count > 0)
            .map(|t| format!("{} {}", t.count, t.status.as_str()))
            .collect();
        let all: u64 = totals
            .iter()
            .filter(|t| t.direction == direction)
            .map(|t| t.count)
            .sum();
        println!(
            "{:<8}: {all} ({})",
            direction.as_str(),
            if counts.is_empty() {
                "none".into()
            } else {
                counts.join(", ")
            }
        );
    }
    for usage in limits.iter().filter(|u| u.modem.is_none()) {
        println!(
            "limit   : {} {}/{} (the busiest recipient, SMS parts)",
            usage.limit, usage.used, usage.max
        );
    }
    if !held.is_empty() {
        let held: Vec<String> = held.iter().map(|(k, n)| format!("{n} by {k}")).collect();
        println!("held    : {}", held.join(", "));
    }
    if modems.is_empty() {
        println!("modems  : none recorded yet (is `conductor run` running?)");
    }
    for modem in &modems {
        println!(
            "modem {}: {} (recorded {} UTC)",
            modem.modem_id.0,
            modem.state.as_str(),
            modem.updated_at.as_str()
        );
        for storage in &modem.storage {
            println!("  SIM storage {}: {}", storage.memory, storage.display());
        }
        for usage in limits
            .iter()
            .filter(|u| u.modem.as_ref() == Some(&modem.modem_id))
        {
            let unit = if usage.limit.starts_with("recipients") {
                "recipients"
            } else {
                "SMS parts"
            };
            println!(
                "  limit       {} {}/{} {unit}",
                usage.limit, usage.used, usage.max
            );
        }
        if let Some(dbm) = modem.signal_dbm {
            println!("  signal      {dbm} dBm");
        }
        if let Some(registration) = &modem.registration {
            println!(
                "  network     {registration}{}",
                modem
                    .operator
                    .as_ref()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default()
            );
        }
        if let Some(last) = &modem.last_cycle_at {
            println!("  last cycle  {} UTC", last.as_str());
        }
        if let Some(error) = &modem.last_error {
            println!("  last error  {error}");
        }
    }
    Ok(())
}
