//! The sending policy's queries on PostgreSQL: what each limit has used, the block list, and
//! the counts `status` and the metrics show. A port of `crate::sqlite::policy`: the usage is
//! read here, and the arithmetic on it (which limit is over, when it frees) is the SQLite
//! backend's own pure functions, so both backends hold and release at the same instants.
//!
//! Across nodes: the usage counts every node's parts (they are all in `message_parts`), and
//! the claim runs in the same transaction that then commits `sending`, so a node sees the rows
//! another node committed before its claim began. Two nodes claiming in the same instant may
//! each take the last slot of a window of a *shared* limit (`recipient_per_hour`); per-modem
//! limits cannot race, because only the node holding a modem claims for it.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use super::{Db, Tx, at, event, sql_time};
use crate::policy::{BlockedNumber, ClaimPolicy, LimitUsage, Limits, estimate, limit};
use crate::sqlite::policy::{
    HOUR, MONTH, Over, first_over, minus, modem_usage, recipient_over_used, usage_window,
};
use crate::types::{MessageId, ModemId};

/// Which parts a usage query counts.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Everything one modem sent.
    Modem(&'a str),
    /// Everything sent to one recipient (its number key), by any modem.
    Recipient(&'a str),
}

/// Parts inside `window` before `now`, oldest first, as (time, recipient key, parts): the
/// parts recorded, then the parts still to come of rows claimed and not finished (counted at
/// `now`). The twin of `crate::sqlite::policy::usage`.
async fn usage(
    tx: &Tx<'_>,
    scope: Scope<'_>,
    window: Duration,
    now: Timestamp,
    transliterate: bool,
) -> Db<Vec<(Timestamp, String, u32)>> {
    let cutoff = at(minus(now, window));
    let (part_filter, row_filter, key) = match scope {
        Scope::Modem(m) => ("p.modem_id = $1", "m.sending_modem = $1", m),
        Scope::Recipient(k) => ("p.recipient_key = $1", "m.number_key = $1", k),
    };
    let counted = "p.direction = 'outbound'
        AND (p.state IN ('sending', 'unknown') OR p.message_ref IS NOT NULL)";
    let mut out: Vec<(Timestamp, String, u32)> = Vec::new();
    let rows = tx
        .query(
            &format!(
                "SELECT COALESCE(p.sent_at, p.updated_at) AS t, COALESCE(p.recipient_key, '')
                 FROM message_parts p
                 WHERE {part_filter} AND {counted} AND COALESCE(p.sent_at, p.updated_at) > $2
                 ORDER BY t"
            ),
            &[&key, &cutoff],
        )
        .await?;
    for row in rows {
        let t: std::time::SystemTime = row.get(0);
        out.push((Timestamp::try_from(t).unwrap_or(now), row.get(1), 1));
    }
    let pending = tx
        .query(
            &format!(
                "SELECT m.content, m.number_key,
                        (SELECT count(*) FROM message_parts p
                         WHERE p.message_id = m.id AND {counted})
                 FROM messages m
                 WHERE m.status = 'sending' AND m.direction = 'outbound' AND {row_filter}"
            ),
            &[&key],
        )
        .await?;
    for row in pending {
        let text: String = row.get(0);
        let recipient: Option<String> = row.get(1);
        let recorded: i64 = row.get(2);
        let parts = estimate(&text, transliterate).map_or(1, |e| e.parts);
        let left = i64::from(parts) - recorded;
        if left > 0 {
            out.push((
                now,
                recipient.unwrap_or_default(),
                u32::try_from(left).unwrap_or(u32::MAX),
            ));
        }
    }
    Ok(out)
}

/// The limit of `modem` (if it has any configured) that `parts` more to `recipient` would
/// break and that frees last; None when the send fits.
pub(crate) async fn modem_over(
    tx: &Tx<'_>,
    policy: &ClaimPolicy,
    modem: &str,
    recipient: &str,
    parts: u32,
    now: Timestamp,
) -> Db<Option<Over>> {
    let Some(limits) = policy.limits.get(&ModemId(modem.to_owned())) else {
        return Ok(None);
    };
    if !limits.any() {
        return Ok(None);
    }
    let used = usage(
        tx,
        Scope::Modem(modem),
        usage_window(limits),
        now,
        policy.transliterate,
    )
    .await?;
    Ok(first_over(&used, modem, limits, recipient, parts, now))
}

/// Whether `parts` more to `recipient` would break `outbound.recipient_per_hour` (`max`).
pub(crate) async fn recipient_over(
    tx: &Tx<'_>,
    recipient: &str,
    max: u32,
    parts: u32,
    now: Timestamp,
    transliterate: bool,
) -> Db<Option<Over>> {
    let used = usage(tx, Scope::Recipient(recipient), HOUR, now, transliterate).await?;
    Ok(recipient_over_used(&used, recipient, max, parts, now))
}

/// Puts `number` on the block list; false when it already was.
pub(crate) async fn block(
    tx: &Tx<'_>,
    number: &str,
    source: &str,
    reason: Option<&str>,
    message_id: Option<MessageId>,
    now: Timestamp,
) -> Db<bool> {
    let now = at(now);
    let added = tx
        .execute(
            "INSERT INTO blocked_numbers (number, source, reason, message_id, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (number) DO NOTHING",
            &[&number, &source, &reason, &message_id.map(|m| m.0), &now],
        )
        .await?;
    if added > 0 {
        event(
            tx,
            now,
            "number_blocked",
            message_id.map(|m| m.0),
            None,
            Some(json!({ "number": number, "source": source, "reason": reason })),
        )
        .await?;
    }
    Ok(added > 0)
}

/// Takes `number` off the block list; false when it was not on it.
pub(crate) async fn unblock(
    tx: &Tx<'_>,
    number: &str,
    source: &str,
    message_id: Option<MessageId>,
    now: Timestamp,
) -> Db<bool> {
    let now = at(now);
    let removed = tx
        .execute("DELETE FROM blocked_numbers WHERE number = $1", &[&number])
        .await?;
    if removed > 0 {
        event(
            tx,
            now,
            "number_unblocked",
            message_id.map(|m| m.0),
            None,
            Some(json!({ "number": number, "source": source })),
        )
        .await?;
    }
    Ok(removed > 0)
}

/// The block list, newest first.
pub(crate) async fn blocked_numbers(tx: &Tx<'_>) -> Db<Vec<BlockedNumber>> {
    Ok(tx
        .query(
            "SELECT number, source, reason, message_id, created_at FROM blocked_numbers
             ORDER BY created_at DESC, number",
            &[],
        )
        .await?
        .iter()
        .map(|row| BlockedNumber {
            number: row.get(0),
            source: row.get(1),
            reason: row.get(2),
            message_id: row.get::<_, Option<i64>>(3).map(MessageId),
            created_at: sql_time(row.get(4)),
        })
        .collect())
}

/// Queued rows per hold (`held_by`), for metrics and `status`.
pub(crate) async fn held_counts(tx: &Tx<'_>) -> Db<Vec<(String, u64)>> {
    Ok(tx
        .query(
            "SELECT held_by, count(*) FROM messages
             WHERE status = 'queued' AND direction = 'outbound' AND held_by IS NOT NULL
             GROUP BY held_by ORDER BY held_by",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), u64::try_from(row.get::<_, i64>(1)).unwrap_or(0)))
        .collect())
}

/// How much of each configured limit is used now (`status`).
pub(crate) async fn limit_usage(
    tx: &Tx<'_>,
    limits: &HashMap<ModemId, Limits>,
    recipient_per_hour: Option<u32>,
    now: Timestamp,
) -> Db<Vec<LimitUsage>> {
    let mut out = Vec::new();
    let mut modems: Vec<&ModemId> = limits.keys().collect();
    modems.sort();
    for modem in modems {
        let used = usage(tx, Scope::Modem(modem.as_str()), MONTH, now, false).await?;
        out.extend(modem_usage(modem, &limits[modem], &used, now));
    }
    if let Some(max) = recipient_per_hour {
        let cutoff = at(minus(now, HOUR));
        let busiest: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(n), 0)::bigint FROM (
                     SELECT count(*) AS n FROM message_parts
                     WHERE direction = 'outbound'
                       AND (state IN ('sending', 'unknown') OR message_ref IS NOT NULL)
                       AND COALESCE(sent_at, updated_at) > $1
                     GROUP BY recipient_key) per_recipient",
                &[&cutoff],
            )
            .await?
            .get(0);
        out.push(LimitUsage {
            modem: None,
            limit: limit::RECIPIENT_PER_HOUR.to_owned(),
            used: u64::try_from(busiest).unwrap_or(0),
            max,
        });
    }
    Ok(out)
}
