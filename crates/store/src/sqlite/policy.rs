//! The sending policy's queries: what each limit has used, who last talked to a number, the
//! block list, and the counts `status` and the metrics show.
//!
//! Usage is read from `message_parts`, the parts Conductor actually handed to a modem (in
//! flight, sent, or of unknown fate), plus the parts still to come of rows already claimed, so
//! two claims in a row can never both take the last slot of a window. Times are compared as
//! the contract's UTC text, which sorts like the instants it holds.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use super::{Db, event};
use crate::policy::{BlockedNumber, LimitUsage, Limits, estimate, limit};
use crate::types::{MessageId, ModemId, SqlTime, parse_sql_time, sql_time};

pub(crate) const MINUTE: Duration = Duration::from_secs(60);
pub(crate) const HOUR: Duration = Duration::from_secs(3600);
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);
pub(crate) const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);

/// Which parts a usage query counts.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// Everything one modem sent.
    Modem(&'a str),
    /// Everything sent to one recipient (its number key), by any modem.
    Recipient(&'a str),
}

pub(crate) fn minus(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

pub(crate) fn plus(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Parts inside `window` before `now`, oldest first, as (time, recipient key, parts): the
/// parts recorded, then the parts still to come of rows claimed and not finished (counted at
/// `now`).
pub(crate) fn usage(
    c: &Connection,
    scope: Scope<'_>,
    window: Duration,
    now: Timestamp,
    transliterate: bool,
) -> Db<Vec<(Timestamp, String, u32)>> {
    let cutoff = sql_time(minus(now, window));
    let (part_filter, row_filter, key) = match scope {
        Scope::Modem(m) => ("p.modem_id = ?1", "m.sending_modem = ?1", m),
        Scope::Recipient(k) => ("p.recipient_key = ?1", "m.number_key = ?1", k),
    };
    let counted = "p.direction = 'outbound'
        AND (p.state IN ('sending', 'unknown') OR p.message_ref IS NOT NULL)";
    let mut out: Vec<(Timestamp, String, u32)> = Vec::new();
    let sql = format!(
        "SELECT COALESCE(p.sent_at, p.updated_at) AS t, COALESCE(p.recipient_key, '')
         FROM message_parts p
         WHERE {part_filter} AND {counted} AND COALESCE(p.sent_at, p.updated_at) > ?2
         ORDER BY t"
    );
    let rows = c
        .prepare_cached(&sql)?
        .query_map(rusqlite::params![key, cutoff], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (t, recipient) in rows {
        out.push((parse_sql_time(&t).unwrap_or(now), recipient, 1));
    }
    let sql = format!(
        "SELECT m.content, m.number_key,
                (SELECT count(*) FROM message_parts p
                 WHERE p.message_id = m.id AND {counted})
         FROM messages m
         WHERE m.status = 'sending' AND m.direction = 'outbound' AND {row_filter}"
    );
    let pending = c
        .prepare_cached(&sql)?
        .query_map([key], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (text, recipient, recorded) in pending {
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

/// Why a send must wait: the limit and when it frees.
pub(crate) struct Over {
    pub limit: &'static str,
    pub until: Timestamp,
    pub detail: String,
}

/// Checks a parts limit of `max` over `window`: None when `parts` more fit now, else when
/// they will. A message larger than the limit itself goes alone, once the window is empty, so
/// it never waits forever.
fn parts_limit(
    used: &[(Timestamp, String, u32)],
    window: Duration,
    now: Timestamp,
    parts: u32,
    max: u32,
) -> Option<Timestamp> {
    let cutoff = minus(now, window);
    let inside: Vec<&(Timestamp, String, u32)> = used.iter().filter(|u| u.0 > cutoff).collect();
    let total: u64 = inside.iter().map(|u| u64::from(u.2)).sum();
    let need = u64::from(parts.min(max.max(1)));
    if total + need <= u64::from(max) || (total == 0) {
        return None;
    }
    let mut left = total;
    for (t, _, p) in inside {
        left -= u64::from(*p);
        if left + need <= u64::from(max) {
            return Some(plus(*t, window).max(now));
        }
    }
    Some(plus(now, window))
}

/// Checks a distinct-recipients limit: None when `recipient` may be added now.
fn recipients_limit(
    used: &[(Timestamp, String, u32)],
    window: Duration,
    now: Timestamp,
    recipient: &str,
    max: u32,
) -> Option<Timestamp> {
    let cutoff = minus(now, window);
    let mut last: HashMap<&str, Timestamp> = HashMap::new();
    for (t, r, _) in used.iter().filter(|u| u.0 > cutoff) {
        let entry = last.entry(r.as_str()).or_insert(*t);
        *entry = (*entry).max(*t);
    }
    if last.contains_key(recipient) || last.len() < max as usize {
        return None;
    }
    let mut times: Vec<Timestamp> = last.into_values().collect();
    times.sort();
    // Enough recipients must leave the window for one more to fit.
    let index = times.len().saturating_sub(max.max(1) as usize);
    times.get(index).map(|t| plus(*t, window).max(now))
}

/// The first limit of `modem` that `parts` more to `recipient` would break, latest-freeing
/// last; None when the send fits every limit.
pub(crate) fn modem_over(
    c: &Connection,
    modem: &str,
    limits: &Limits,
    recipient: &str,
    parts: u32,
    now: Timestamp,
    transliterate: bool,
) -> Db<Option<Over>> {
    if !limits.any() {
        return Ok(None);
    }
    let used = usage(
        c,
        Scope::Modem(modem),
        usage_window(limits),
        now,
        transliterate,
    )?;
    Ok(first_over(&used, modem, limits, recipient, parts, now))
}

/// How far back a modem's usage must be read for its limits: the longest window configured.
/// Shared with the PostgreSQL backend, which reads the usage its own way.
pub(crate) fn usage_window(limits: &Limits) -> Duration {
    if limits.recipients_per_month.is_some() {
        MONTH
    } else if limits.per_day.is_some() || limits.recipients_per_day.is_some() {
        DAY
    } else if limits.per_hour.is_some() {
        HOUR
    } else {
        MINUTE
    }
}

/// The limit of `modem` that `parts` more to `recipient` would break and that frees last,
/// given its `used` parts (from [`usage`] or the PostgreSQL twin); None when the send fits.
pub(crate) fn first_over(
    used: &[(Timestamp, String, u32)],
    modem: &str,
    limits: &Limits,
    recipient: &str,
    parts: u32,
    now: Timestamp,
) -> Option<Over> {
    let checks: [(&'static str, Option<u32>, Duration, bool); 5] = [
        (limit::PER_MINUTE, limits.per_minute, MINUTE, false),
        (limit::PER_HOUR, limits.per_hour, HOUR, false),
        (limit::PER_DAY, limits.per_day, DAY, false),
        (
            limit::RECIPIENTS_PER_DAY,
            limits.recipients_per_day,
            DAY,
            true,
        ),
        (
            limit::RECIPIENTS_PER_MONTH,
            limits.recipients_per_month,
            MONTH,
            true,
        ),
    ];
    let mut worst: Option<Over> = None;
    for (name, max, span, distinct) in checks {
        let Some(max) = max else { continue };
        let until = if distinct {
            recipients_limit(used, span, now, recipient, max)
        } else {
            parts_limit(used, span, now, parts, max)
        };
        if let Some(until) = until
            && worst.as_ref().is_none_or(|w| until > w.until)
        {
            let what = if distinct {
                format!("{max} distinct recipients")
            } else {
                format!("{max} SMS parts")
            };
            worst = Some(Over {
                limit: name,
                until,
                detail: format!("modem {modem} reached its {name} limit ({what})"),
            });
        }
    }
    worst
}

/// Whether `parts` more to `recipient` would break the per-recipient hourly limit.
pub(crate) fn recipient_over(
    c: &Connection,
    recipient: &str,
    max: u32,
    parts: u32,
    now: Timestamp,
    transliterate: bool,
) -> Db<Option<Over>> {
    let used = usage(c, Scope::Recipient(recipient), HOUR, now, transliterate)?;
    Ok(recipient_over_used(&used, recipient, max, parts, now))
}

/// [`recipient_over`] given the recipient's `used` parts of the last hour.
pub(crate) fn recipient_over_used(
    used: &[(Timestamp, String, u32)],
    recipient: &str,
    max: u32,
    parts: u32,
    now: Timestamp,
) -> Option<Over> {
    parts_limit(used, HOUR, now, parts, max).map(|until| Over {
        limit: limit::RECIPIENT_PER_HOUR,
        until,
        detail: format!("{recipient} reached the recipient_per_hour limit ({max} SMS parts)"),
    })
}

/// Parts each modem sent in the last 24 hours (least-used routing).
pub(crate) fn parts_last_day(c: &Connection, now: Timestamp) -> Db<HashMap<String, u64>> {
    let cutoff = sql_time(minus(now, DAY));
    let rows = c
        .prepare_cached(
            "SELECT modem_id, count(*) FROM message_parts
             WHERE direction = 'outbound' AND modem_id IS NOT NULL
               AND (state IN ('sending', 'unknown') OR message_ref IS NOT NULL)
               AND COALESCE(sent_at, updated_at) > ?1
             GROUP BY modem_id",
        )?
        .query_map([cutoff], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(m, n)| (m, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// The modem that last talked to `number` (received from it, or sent to it).
pub(crate) fn last_modem(c: &Connection, number: &str) -> Db<Option<String>> {
    Ok(c.prepare_cached(
        "SELECT CASE direction WHEN 'inbound' THEN modem_id ELSE sending_modem END
         FROM messages
         WHERE number_key = ?1
           AND ((direction = 'inbound' AND modem_id IS NOT NULL)
             OR (direction = 'outbound' AND sending_modem IS NOT NULL
                 AND status IN ('sending', 'sent', 'delivered')))
         ORDER BY id DESC LIMIT 1",
    )?
    .query_row([number], |row| row.get(0))
    .optional()?)
}

/// The block list entry of `number`, if any: (source, reason).
pub(crate) fn blocked(c: &Connection, number: &str) -> Db<Option<(String, Option<String>)>> {
    Ok(
        c.prepare_cached("SELECT source, reason FROM blocked_numbers WHERE number = ?1")?
            .query_row([number], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?,
    )
}

/// Puts `number` on the block list; false when it already was.
pub(crate) fn block(
    c: &Connection,
    number: &str,
    source: &str,
    reason: Option<&str>,
    message_id: Option<MessageId>,
    now: Timestamp,
) -> Db<bool> {
    let now = sql_time(now);
    let added = c
        .prepare_cached(
            "INSERT INTO blocked_numbers (number, source, reason, message_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (number) DO NOTHING",
        )?
        .execute(rusqlite::params![
            number,
            source,
            reason,
            message_id.map(|m| m.0),
            now
        ])?;
    if added > 0 {
        event(
            c,
            &now,
            "number_blocked",
            message_id.map(|m| m.0),
            None,
            Some(json!({ "number": number, "source": source, "reason": reason })),
        )?;
    }
    Ok(added > 0)
}

/// Takes `number` off the block list; false when it was not on it.
pub(crate) fn unblock(
    c: &Connection,
    number: &str,
    source: &str,
    message_id: Option<MessageId>,
    now: Timestamp,
) -> Db<bool> {
    let now = sql_time(now);
    let removed = c
        .prepare_cached("DELETE FROM blocked_numbers WHERE number = ?1")?
        .execute([number])?;
    if removed > 0 {
        event(
            c,
            &now,
            "number_unblocked",
            message_id.map(|m| m.0),
            None,
            Some(json!({ "number": number, "source": source })),
        )?;
    }
    Ok(removed > 0)
}

/// The block list, newest first.
pub(crate) fn blocked_numbers(c: &Connection) -> Db<Vec<BlockedNumber>> {
    Ok(c.prepare_cached(
        "SELECT number, source, reason, message_id, created_at FROM blocked_numbers
             ORDER BY created_at DESC, number",
    )?
    .query_map([], |row| {
        Ok(BlockedNumber {
            number: row.get(0)?,
            source: row.get(1)?,
            reason: row.get(2)?,
            message_id: row.get::<_, Option<i64>>(3)?.map(MessageId),
            created_at: SqlTime(row.get(4)?),
        })
    })?
    .collect::<Result<_, _>>()?)
}

/// Queued rows per hold (`held_by`), for metrics and `status`.
pub(crate) fn held_counts(c: &Connection) -> Db<Vec<(String, u64)>> {
    Ok(c.prepare_cached(
        "SELECT held_by, count(*) FROM messages
             WHERE status = 'queued' AND direction = 'outbound' AND held_by IS NOT NULL
             GROUP BY held_by ORDER BY held_by",
    )?
    .query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
        ))
    })?
    .collect::<Result<_, _>>()?)
}

/// How much of each configured limit is used now (`status`).
pub(crate) fn limit_usage(
    c: &Connection,
    limits: &HashMap<ModemId, Limits>,
    recipient_per_hour: Option<u32>,
    now: Timestamp,
) -> Db<Vec<LimitUsage>> {
    let mut out = Vec::new();
    let mut modems: Vec<&ModemId> = limits.keys().collect();
    modems.sort();
    for modem in modems {
        let used = usage(c, Scope::Modem(modem.as_str()), MONTH, now, false)?;
        out.extend(modem_usage(modem, &limits[modem], &used, now));
    }
    if let Some(max) = recipient_per_hour {
        let cutoff = sql_time(minus(now, HOUR));
        let busiest: i64 = c
            .prepare_cached(
                "SELECT COALESCE(MAX(n), 0) FROM (
                     SELECT count(*) AS n FROM message_parts
                     WHERE direction = 'outbound'
                       AND (state IN ('sending', 'unknown') OR message_ref IS NOT NULL)
                       AND COALESCE(sent_at, updated_at) > ?1
                     GROUP BY recipient_key)",
            )?
            .query_row([cutoff], |row| row.get(0))?;
        out.push(LimitUsage {
            modem: None,
            limit: limit::RECIPIENT_PER_HOUR.to_owned(),
            used: u64::try_from(busiest).unwrap_or(0),
            max,
        });
    }
    Ok(out)
}

/// How much of each of `modem`'s configured limits its `used` parts (of the last month) take.
/// Shared with the PostgreSQL backend.
pub(crate) fn modem_usage(
    modem: &ModemId,
    l: &Limits,
    used: &[(Timestamp, String, u32)],
    now: Timestamp,
) -> Vec<LimitUsage> {
    let parts_in = |span: Duration| -> u64 {
        let cutoff = minus(now, span);
        used.iter()
            .filter(|u| u.0 > cutoff)
            .map(|u| u64::from(u.2))
            .sum()
    };
    let recipients_in = |span: Duration| -> u64 {
        let cutoff = minus(now, span);
        let set: HashSet<&str> = used
            .iter()
            .filter(|u| u.0 > cutoff)
            .map(|u| u.1.as_str())
            .collect();
        set.len() as u64
    };
    let mut out = Vec::new();
    for (name, max, value) in [
        (limit::PER_MINUTE, l.per_minute, parts_in(MINUTE)),
        (limit::PER_HOUR, l.per_hour, parts_in(HOUR)),
        (limit::PER_DAY, l.per_day, parts_in(DAY)),
        (
            limit::RECIPIENTS_PER_DAY,
            l.recipients_per_day,
            recipients_in(DAY),
        ),
        (
            limit::RECIPIENTS_PER_MONTH,
            l.recipients_per_month,
            recipients_in(MONTH),
        ),
    ] {
        if let Some(max) = max {
            out.push(LimitUsage {
                modem: Some(modem.clone()),
                limit: name.to_owned(),
                used: value,
                max,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_parts_limit_frees_when_enough_of_the_oldest_usage_leaves_the_window() {
        let used = vec![(t(0), "a".into(), 2), (t(10), "b".into(), 1)];
        // 3 of 3 used: one more part waits until the first two leave (t0 + 60 s).
        assert_eq!(parts_limit(&used, MINUTE, t(20), 1, 3), Some(t(60)));
        // 3 parts more of 4: the first entry must go; of 3: both.
        assert_eq!(parts_limit(&used, MINUTE, t(20), 3, 4), Some(t(60)));
        assert_eq!(parts_limit(&used, MINUTE, t(20), 3, 3), Some(t(70)));
        assert_eq!(parts_limit(&used, MINUTE, t(61), 1, 3), None);
        // Larger than the limit itself: goes alone once the window is empty.
        assert_eq!(parts_limit(&[], MINUTE, t(0), 9, 3), None);
    }

    #[test]
    fn a_recipients_limit_counts_each_number_once() {
        let used = vec![
            (t(0), "a".into(), 1),
            (t(5), "a".into(), 1),
            (t(10), "b".into(), 1),
        ];
        assert_eq!(recipients_limit(&used, DAY, t(20), "a", 2), None);
        assert_eq!(
            recipients_limit(&used, DAY, t(20), "c", 2),
            Some(plus(t(5), DAY))
        );
        assert_eq!(recipients_limit(&used, DAY, t(20), "c", 3), None);
    }
}
