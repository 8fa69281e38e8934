//! Outbound messages: queueing, the dispatcher's claim, per-part progress, crash recovery and
//! the operator's requeue/cancel.
//!
//! Promise 3 lives here: a row is `sending` (and each part `sending`) in a committed
//! transaction before the gateway writes the PDU; what a crash leaves `sending` with a part in
//! flight becomes `unknown`, never silently resent.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use super::{Db, Sqlite, event, status_of};
use crate::claim::{self, Budget, Route, Verdict, transitions};
use crate::error::StoreError;
use crate::model::{
    ClaimRequest, Claimed, DuplicateFound, NewOutbound, OutboundJob, PartSending, Recovered, Retry,
    SentPart,
};
use crate::policy::Strategy;
use crate::types::{MessageId, ModemId, Status, normalize_number, parse_sql_time, sql_time};

/// Inserts a `queued` row.
pub(crate) fn queue(c: &Connection, new: &NewOutbound, now: Timestamp) -> Db<MessageId> {
    if new.to.trim().is_empty() {
        return Err(StoreError::InvalidInput {
            field: "to",
            reason: "the recipient is empty".into(),
        }
        .into());
    }
    let now = sql_time(now);
    c.prepare_cached(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction, created_at,
             updated_at, modem_id, source, allow_duplicate, status_report, send_at, priority,
             expires_at, transactional)
         VALUES (?1, ?2, ?3, 'queued', 'outbound', ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(rusqlite::params![
        new.to,
        new.text,
        now,
        new.modem_id.as_ref().map(ModemId::as_str),
        new.source,
        new.allow_duplicate,
        new.status_report,
        new.send_at.map(sql_time),
        new.priority,
        new.expires_at.map(sql_time),
        new.transactional,
    ])?;
    let id = c.last_insert_rowid();
    event(
        c,
        &now,
        "queued",
        Some(id),
        None,
        Some(json!({ "source": new.source })),
    )?;
    Ok(MessageId(id))
}

/// A queued row as the claim reads it.
struct Candidate {
    id: i64,
    to: String,
    text: String,
    modem: Option<String>,
    source: String,
    allow_duplicate: bool,
    status_report: Option<bool>,
    attempts: u32,
    created_at: String,
    send_at: Option<String>,
    send_at_readable: bool,
    transactional: bool,
    held_by: Option<String>,
    reason: Option<String>,
    next_attempt_at: Option<String>,
}

/// Rows still queued past their expiry become `expired` (also rows held back or scheduled:
/// going out late is what expiry prevents).
fn expire_due(c: &Connection, req: &ClaimRequest, now: &str, claimed: &mut Claimed) -> Db<()> {
    let ttl = req
        .policy
        .default_ttl
        .map(|ttl| i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let rows: Vec<(i64, String, bool)> = c
        .prepare_cached(
            "SELECT id, COALESCE(datetime(expires_at),
                                 datetime(COALESCE(datetime(send_at), created_at),
                                          '+' || ?2 || ' seconds')),
                    datetime(expires_at) IS NOT NULL
             FROM messages
             WHERE status = 'queued' AND direction = 'outbound'
               AND COALESCE(datetime(expires_at),
                            datetime(COALESCE(datetime(send_at), created_at),
                                     '+' || ?2 || ' seconds')) <= ?1",
        )?
        .query_map(rusqlite::params![now, ttl], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, at, explicit) in rows {
        let reason = claim::expiry_reason(id, &at, explicit);
        finish(c, id, Status::Expired, Some(&reason), now)?;
        event(
            c,
            now,
            "expired",
            Some(id),
            None,
            Some(json!({ "expired_at": at })),
        )?;
        claimed.expired.push((MessageId(id), reason));
    }
    Ok(())
}

/// Claims due rows for ready modems in one transaction (see `Store::claim_due`).
pub(crate) fn claim(db: &Sqlite, c: &Connection, req: &ClaimRequest) -> Db<Claimed> {
    let mut claimed = Claimed::default();
    let now = sql_time(req.now);
    expire_due(c, req, &now, &mut claimed)?;
    if req.ready_modems.is_empty() || req.limit == 0 {
        return Ok(claimed);
    }
    let policy = &req.policy;
    let placeholders = (0..req.ready_modems.len())
        .map(|i| format!("?{}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    // `datetime()` reads what external writers put in `send_at` (`…T…Z`, offsets) as UTC; a
    // value it cannot read is selected too, and failed below with a reason. Rows already
    // waiting for a modem that is still not ready are left out, so they cannot crowd out
    // rows that can go. More rows than the batch are read: some may be held or skipped.
    let sql = format!(
        "SELECT id, phone_number, content, modem_id, source, allow_duplicate, status_report,
                attempts, created_at, send_at, send_at IS NULL OR datetime(send_at) IS NOT NULL,
                transactional, held_by, reason, next_attempt_at
         FROM messages
         WHERE status = 'queued' AND direction = 'outbound'
           AND (send_at IS NULL OR datetime(send_at) IS NULL OR datetime(send_at) <= ?1)
           AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
           AND (held_by IS NOT 'modem_not_ready' OR modem_id IN ({placeholders})
                OR EXISTS (SELECT 1 FROM message_parts p WHERE p.message_id = messages.id
                           AND p.direction = 'outbound' AND p.modem_id IN ({placeholders})))
         ORDER BY priority DESC, id LIMIT ?2"
    );
    let mut params: Vec<rusqlite::types::Value> = vec![
        now.clone().into(),
        i64::try_from(req.limit.saturating_mul(4).max(64))
            .unwrap_or(i64::MAX)
            .into(),
    ];
    params.extend(req.ready_modems.iter().map(|m| m.0.clone().into()));
    let candidates: Vec<Candidate> = c
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(params), |row| {
            Ok(Candidate {
                id: row.get(0)?,
                to: row.get(1)?,
                text: row.get(2)?,
                modem: row.get(3)?,
                source: row.get(4)?,
                allow_duplicate: row.get(5)?,
                status_report: row.get(6)?,
                attempts: row.get(7)?,
                created_at: row.get(8)?,
                send_at: row.get(9)?,
                send_at_readable: row.get(10)?,
                transactional: row.get(11)?,
                held_by: row.get(12)?,
                reason: row.get(13)?,
                next_attempt_at: row.get(14)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    if candidates.is_empty() {
        return Ok(claimed);
    }

    let used_today = if policy.routing.strategy == Strategy::LeastUsed {
        super::policy::parts_last_day(c, req.now)?
    } else {
        HashMap::new()
    };
    let mut budget = Budget::new(req, &[], used_today);
    let mut rotation = db.rotation.fetch_add(1, Ordering::Relaxed);

    for mut cand in candidates {
        if budget.exhausted() {
            break;
        }
        // Rows that cannot be sent as written fail now, with a reason a person can act on.
        // SQLite stores `send_at` as text, so an external writer can put one there that is
        // not a time (PostgreSQL's `timestamptz` refuses it at insert).
        let unusable = claim::unusable(&cand.to, &cand.text).or_else(|| {
            (!cand.send_at_readable).then(|| {
                format!(
                    "send_at {:?} is not a time SQLite can read; write it as YYYY-MM-DD \
                     HH:MM:SS (UTC)",
                    cand.send_at.as_deref().unwrap_or_default()
                )
            })
        });
        let verdict = match unusable {
            Some(reason) => Verdict::Finish(Status::Failed, reason),
            None => decide(c, req, &mut cand, &budget, &mut rotation)?,
        };
        match verdict {
            Verdict::Finish(status, reason) => {
                finish(c, cand.id, status, Some(&reason), &now)?;
                let detail = json!({ "reason": reason });
                event(c, &now, status.as_str(), Some(cand.id), None, Some(detail))?;
                claim::record_finished(&mut claimed, cand.id, status, reason);
            }
            Verdict::Hold {
                held_by,
                until,
                reason,
            } => {
                hold(c, &cand, held_by, until, &reason, &now)?;
                claim::record_held(&mut claimed, cand.id, held_by, until, reason);
            }
            Verdict::Skip => {}
            Verdict::Duplicate(earlier) => {
                claimed.duplicates.push(DuplicateFound {
                    id: MessageId(cand.id),
                    earlier: MessageId(earlier),
                });
            }
            Verdict::Send(modem) => {
                budget.take(&modem);
                let job = start(c, cand, modem, &now)?;
                claimed.jobs.push(job);
            }
        }
    }
    Ok(claimed)
}

/// Applies the policy to one usable row, in the order of [`crate::claim`]'s steps; a
/// duplicate is recorded here.
fn decide(
    c: &Connection,
    req: &ClaimRequest,
    cand: &mut Candidate,
    budget: &Budget<'_>,
    rotation: &mut usize,
) -> Db<Verdict> {
    let policy = &req.policy;
    let now = sql_time(req.now);
    match claim::normalized(policy, &cand.to) {
        Err(verdict) => return Ok(verdict),
        Ok(None) => {}
        Ok(Some(to)) => {
            c.prepare_cached(
                "UPDATE messages SET phone_number = ?2, updated_at = ?3, revision = revision + 1
                 WHERE id = ?1",
            )?
            .execute(rusqlite::params![cand.id, to, now])?;
            event(
                c,
                &now,
                "number_normalized",
                Some(cand.id),
                None,
                Some(json!({ "from": cand.to, "to": to })),
            )?;
            cand.to = to;
        }
    }
    let estimate = match claim::size(policy, &cand.text) {
        Ok(e) => e,
        Err(verdict) => return Ok(verdict),
    };
    let key = normalize_number(&cand.to);
    // Opt-out.
    if !cand.transactional
        && let Some((source, why)) = super::policy::blocked(c, &key)?
    {
        return Ok(claim::blocked(&key, &source, why));
    }
    if let Some(window) = claim::duplicate_window(req, cand.allow_duplicate, &cand.source)
        && let Some(earlier) = earlier_duplicate(c, cand, window, req.now)?
    {
        let reason = claim::duplicate_reason(earlier, window);
        finish(c, cand.id, Status::Duplicate, Some(&reason), &now)?;
        event(
            c,
            &now,
            "duplicate",
            Some(cand.id),
            None,
            Some(json!({ "earlier": earlier })),
        )?;
        return Ok(Verdict::Duplicate(earlier));
    }
    if let Some(verdict) = claim::quiet_hours(policy, cand.transactional) {
        return Ok(verdict);
    }
    // Per recipient, over every modem.
    if let Some(max) = policy.recipient_per_hour
        && let Some(over) = super::policy::recipient_over(
            c,
            &key,
            max,
            estimate.parts,
            req.now,
            policy.transliterate,
        )?
    {
        return Ok(claim::hold_for(over));
    }
    // Parts already accepted in an earlier attempt pin the message to the modem that sent
    // them: the rest must come from the same sender number to be reassembled.
    let pinned: Option<String> = c
        .prepare_cached(
            "SELECT modem_id FROM message_parts
             WHERE message_id = ?1 AND direction = 'outbound'
               AND state IN ('sent', 'delivered') AND modem_id IS NOT NULL
             ORDER BY seq LIMIT 1",
        )?
        .query_row([cand.id], |row| row.get(0))
        .optional()?
        .or_else(|| cand.modem.clone());
    let check = |modem: &str| -> Db<Option<super::policy::Over>> {
        match policy.limits.get(&ModemId(modem.to_owned())) {
            Some(limits) => super::policy::modem_over(
                c,
                modem,
                limits,
                &key,
                estimate.parts,
                req.now,
                policy.transliterate,
            ),
            None => Ok(None),
        }
    };
    if let Some(modem) = pinned {
        if let Err(verdict) = claim::pinned(budget, &modem) {
            return Ok(verdict);
        }
        let over = check(&modem)?;
        return Ok(claim::pinned_send(modem, over));
    }
    let last = if policy.routing.sticky {
        super::policy::last_modem(c, &key)?
    } else {
        None
    };
    let mut route = Route::new(req, &key, last, *rotation, budget);
    while let Some(modem) = route.next(budget) {
        match check(&modem)? {
            None => {
                *rotation = rotation.wrapping_add(1);
                return Ok(Verdict::Send(modem));
            }
            Some(over) => route.over(over),
        }
    }
    Ok(route.exhausted())
}

/// Leaves a row queued with what holds it back. The row and the event log change only when
/// the hold changes, so a row waiting out a day-long window is not rewritten on every poll.
fn hold(
    c: &Connection,
    cand: &Candidate,
    held_by: &str,
    until: Option<Timestamp>,
    reason: &str,
    now: &str,
) -> Db<()> {
    let next = until.map(sql_time);
    let same = cand.held_by.as_deref() == Some(held_by)
        && cand.reason.as_deref() == Some(reason)
        && cand.next_attempt_at == next;
    if same {
        return Ok(());
    }
    c.prepare_cached(
        "UPDATE messages SET held_by = ?2, reason = ?3, next_attempt_at = ?4, updated_at = ?5,
             revision = revision + 1
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![cand.id, held_by, reason, next, now])?;
    if cand.held_by.as_deref() != Some(held_by) {
        event(
            c,
            now,
            "held",
            Some(cand.id),
            None,
            Some(json!({ "held_by": held_by, "until": next, "reason": reason })),
        )?;
    }
    Ok(())
}

/// Marks a row `sending` on `modem` and makes its job.
fn start(c: &Connection, cand: Candidate, modem: String, now: &str) -> Db<OutboundJob> {
    let sent_parts: Vec<SentPart> = c
        .prepare_cached(
            "SELECT seq, total, concat_ref FROM message_parts
             WHERE message_id = ?1 AND direction = 'outbound'
               AND state IN ('sent', 'delivered')
             ORDER BY seq",
        )?
        .query_map([cand.id], |row| {
            Ok(SentPart {
                seq: row.get(0)?,
                total: row.get(1)?,
                concat_ref: row.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    // A hold's reason no longer applies once the row goes.
    c.prepare_cached(
        "UPDATE messages SET status = 'sending', attempts = attempts + 1, sending_modem = ?2,
             next_attempt_at = NULL, updated_at = ?3, revision = revision + 1,
             reason = CASE WHEN held_by IS NULL THEN reason END, held_by = NULL
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![cand.id, modem, now])?;
    let attempt = cand.attempts.saturating_add(1);
    event(
        c,
        now,
        "claimed",
        Some(cand.id),
        Some(&modem),
        Some(json!({ "attempt": attempt })),
    )?;
    Ok(OutboundJob {
        id: MessageId(cand.id),
        to: cand.to,
        text: cand.text,
        modem: ModemId(modem),
        status_report: cand.status_report,
        attempt,
        source: cand.source,
        sent_parts,
    })
}

/// The latest earlier row with the same recipient and text, created inside the window before
/// this one, that is queued, being sent or sent.
fn earlier_duplicate(
    c: &Connection,
    cand: &Candidate,
    window: Duration,
    now: Timestamp,
) -> Db<Option<i64>> {
    let created = parse_sql_time(&cand.created_at).unwrap_or(now);
    let cutoff = claim::duplicate_cutoff(created, window)
        .map(sql_time)
        .unwrap_or_default();
    Ok(c.prepare_cached(
        "SELECT id FROM messages
         WHERE direction = 'outbound' AND number_key = ?1 AND created_at >= ?2 AND id < ?3
           AND content = ?4 AND status IN ('queued', 'sending', 'sent', 'delivered')
         ORDER BY id DESC LIMIT 1",
    )?
    .query_row(
        rusqlite::params![normalize_number(&cand.to), cutoff, cand.id, cand.text],
        |row| row.get(0),
    )
    .optional()?)
}

/// Sets a message's status (and reason), moving `updated_at`.
fn finish(c: &Connection, id: i64, status: Status, reason: Option<&str>, now: &str) -> Db<()> {
    c.prepare_cached(
        "UPDATE messages SET status = ?2, reason = ?3, updated_at = ?4, revision = revision + 1,
             held_by = NULL
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![id, status.as_str(), reason, now])?;
    Ok(())
}

/// The message's status, which must be `sending` for the dispatcher to touch its parts.
fn require_sending(c: &Connection, id: MessageId, action: &'static str) -> Db<()> {
    Ok(transitions::sending(id, status_of(c, id.0)?, action)?)
}

/// Records a part as handed to the modem, before AT+CMGS.
pub(crate) fn part_sending(
    c: &Connection,
    id: MessageId,
    part: &PartSending,
    now: Timestamp,
) -> Db<()> {
    if part.total == 0 || part.seq == 0 || part.seq > part.total {
        return Err(StoreError::InvalidInput {
            field: "part",
            reason: format!(
                "part {} of {} is not a valid part number",
                part.seq, part.total
            ),
        }
        .into());
    }
    require_sending(c, id, "handed to a modem")?;
    let now = sql_time(now);
    let (to, modem, attempts): (String, Option<String>, i64) = c
        .prepare_cached("SELECT phone_number, sending_modem, attempts FROM messages WHERE id = ?1")?
        .query_row([id.0], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    c.prepare_cached(
        "INSERT INTO message_parts (message_id, direction, seq, total, concat_ref, modem_id,
             recipient, recipient_key, pdu, state, report_requested, attempt, created_at,
             updated_at)
         VALUES (?1, 'outbound', ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'sending', ?9, ?10, ?11, ?11)
         ON CONFLICT (message_id, seq) WHERE direction = 'outbound' DO UPDATE SET
             total = excluded.total, concat_ref = excluded.concat_ref,
             modem_id = excluded.modem_id, recipient = excluded.recipient,
             recipient_key = excluded.recipient_key, pdu = excluded.pdu, state = 'sending',
             report_requested = excluded.report_requested, attempt = excluded.attempt,
             message_ref = NULL, sent_at = NULL, report_status = NULL, reported_at = NULL,
             reason = NULL, updated_at = excluded.updated_at",
    )?
    .execute(rusqlite::params![
        id.0,
        part.seq,
        part.total,
        part.concat_ref,
        modem,
        to,
        normalize_number(&to),
        part.pdu,
        part.status_report,
        attempts,
        now,
    ])?;
    c.prepare_cached(
        "UPDATE messages SET parts_total = ?2, parts_received = 0, updated_at = ?3,
             revision = revision + 1
         WHERE id = ?1 AND parts_total IS NOT ?2",
    )?
    .execute(rusqlite::params![id.0, part.total, now])?;
    Ok(())
}

/// Records that the network accepted a part (`+CMGS: <mr>`); the message is `sent` once every
/// part is.
pub(crate) fn part_sent(
    c: &Connection,
    id: MessageId,
    seq: u8,
    message_ref: u8,
    now: Timestamp,
) -> Db<Status> {
    require_sending(c, id, "marked sent")?;
    let now = sql_time(now);
    let changed = c
        .prepare_cached(
            "UPDATE message_parts SET state = 'sent', message_ref = ?3, sent_at = ?4,
                 updated_at = ?4
             WHERE message_id = ?1 AND seq = ?2 AND direction = 'outbound'
               AND state = 'sending'",
        )?
        .execute(rusqlite::params![id.0, seq, message_ref, now])?;
    if changed == 0 {
        return Err(StoreError::InvalidInput {
            field: "seq",
            reason: format!("part {seq} of message #{id} was not recorded as being sent"),
        }
        .into());
    }
    let (total, done): (i64, i64) = c
        .prepare_cached(
            "SELECT m.parts_total,
                    (SELECT count(DISTINCT seq) FROM message_parts p
                     WHERE p.message_id = m.id AND p.direction = 'outbound'
                       AND p.state IN ('sent', 'delivered', 'failed'))
             FROM messages m WHERE m.id = ?1",
        )?
        .query_row([id.0], |row| Ok((row.get(0)?, row.get(1)?)))?;
    c.prepare_cached(
        "UPDATE messages SET parts_received = ?2, updated_at = ?3, revision = revision + 1
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![id.0, done, now])?;
    if done < total {
        return Ok(Status::Sending);
    }
    c.prepare_cached(
        "UPDATE messages SET status = 'sent', sent_at = ?2, reason = NULL, updated_at = ?2,
             revision = revision + 1
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![id.0, now])?;
    event(
        c,
        &now,
        "sent",
        Some(id.0),
        None,
        Some(json!({ "parts": total })),
    )?;
    // Reports for early parts may already be in.
    settle(c, id.0, &now)
}

/// Moves a `sent` message to `delivered` when every part is, or `failed` when any part failed
/// for good; returns its status.
pub(crate) fn settle(c: &Connection, id: i64, now: &str) -> Db<Status> {
    let status = status_of(c, id)?;
    if status != Status::Sent {
        return Ok(status);
    }
    let (total, delivered, failed_reason): (i64, i64, Option<String>) = c
        .prepare_cached(
            "SELECT m.parts_total,
                    (SELECT count(DISTINCT seq) FROM message_parts p
                     WHERE p.message_id = m.id AND p.direction = 'outbound'
                       AND p.state = 'delivered'),
                    (SELECT p.reason FROM message_parts p
                     WHERE p.message_id = m.id AND p.direction = 'outbound'
                       AND p.state = 'failed' ORDER BY p.seq LIMIT 1)
             FROM messages m WHERE m.id = ?1",
        )?
        .query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    if let Some(reason) = failed_reason {
        finish(c, id, Status::Failed, Some(&reason), now)?;
        event(
            c,
            now,
            "failed",
            Some(id),
            None,
            Some(json!({ "reason": reason })),
        )?;
        return Ok(Status::Failed);
    }
    if delivered >= total {
        c.prepare_cached(
            "UPDATE messages SET status = 'delivered', delivered_at = ?2, updated_at = ?2,
                 revision = revision + 1
             WHERE id = ?1",
        )?
        .execute(rusqlite::params![id, now])?;
        event(c, now, "delivered", Some(id), None, None)?;
        return Ok(Status::Delivered);
    }
    Ok(Status::Sent)
}

/// Records that the modem refused a part before accepting its PDU.
pub(crate) fn part_rejected(
    c: &Connection,
    id: MessageId,
    seq: u8,
    reason: &str,
    retry: Retry,
    now: Timestamp,
) -> Db<Status> {
    require_sending(c, id, "marked rejected")?;
    let now_s = sql_time(now);
    let attempts: u32 = c
        .prepare_cached("SELECT attempts FROM messages WHERE id = ?1")?
        .query_row([id.0], |row| row.get(0))?;
    let (status, row_reason, next) = match retry {
        Retry::At {
            next_attempt_at,
            max_attempts,
        } if attempts < max_attempts => (
            Status::Queued,
            format!("attempt {attempts} of {max_attempts} failed: {reason}"),
            Some(sql_time(next_attempt_at)),
        ),
        Retry::At { .. } => (
            Status::Failed,
            format!("{reason} (gave up after {attempts} attempts)"),
            None,
        ),
        Retry::Release => (
            Status::Queued,
            format!("{reason}; queued again"),
            Some(now_s.clone()),
        ),
        Retry::Never => (Status::Failed, reason.to_owned(), None),
    };
    if retry == Retry::Release {
        // The claim counted an attempt the modem never saw: give it back.
        c.prepare_cached("UPDATE messages SET attempts = MAX(attempts - 1, 0) WHERE id = ?1")?
            .execute([id.0])?;
    }
    let part_state = if status == Status::Queued {
        "pending"
    } else {
        "failed"
    };
    c.prepare_cached(
        "UPDATE message_parts SET state = ?3, reason = ?4, updated_at = ?5
         WHERE message_id = ?1 AND seq = ?2 AND direction = 'outbound'",
    )?
    .execute(rusqlite::params![id.0, seq, part_state, reason, now_s])?;
    c.prepare_cached(
        "UPDATE messages SET status = ?2, reason = ?3, next_attempt_at = ?4, updated_at = ?5,
             revision = revision + 1
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        id.0,
        status.as_str(),
        row_reason,
        next,
        now_s
    ])?;
    event(
        c,
        &now_s,
        if status == Status::Queued {
            "retry_scheduled"
        } else {
            "failed"
        },
        Some(id.0),
        None,
        Some(json!({ "seq": seq, "reason": row_reason, "next_attempt_at": next })),
    )?;
    Ok(status)
}

/// Records that a part's fate is unknown (the PDU was written, then the answer never came).
pub(crate) fn part_ambiguous(
    c: &Connection,
    id: MessageId,
    seq: u8,
    reason: &str,
    now: Timestamp,
) -> Db<()> {
    require_sending(c, id, "marked unknown")?;
    let now = sql_time(now);
    c.prepare_cached(
        "UPDATE message_parts SET state = 'unknown', reason = ?3, updated_at = ?4
         WHERE message_id = ?1 AND seq = ?2 AND direction = 'outbound'",
    )?
    .execute(rusqlite::params![id.0, seq, reason, now])?;
    let row_reason =
        format!("{reason}: the message may have been sent; not resent (use requeue to send it)");
    finish(c, id.0, Status::Unknown, Some(&row_reason), &now)?;
    event(
        c,
        &now,
        "unknown",
        Some(id.0),
        None,
        Some(json!({ "seq": seq, "reason": reason })),
    )?;
    Ok(())
}

/// At start-up: rows a crash left `sending`.
pub(crate) fn recover_interrupted(
    c: &Connection,
    now: Timestamp,
    at_least_once: bool,
    modems: Option<&[String]>,
) -> Db<Recovered> {
    let now = sql_time(now);
    let rows: Vec<(i64, bool, Option<String>)> = c
        .prepare_cached(
            "SELECT m.id, EXISTS (SELECT 1 FROM message_parts p
                                  WHERE p.message_id = m.id AND p.direction = 'outbound'
                                    AND p.state = 'sending'), m.sending_modem
             FROM messages m WHERE m.status = 'sending' AND m.direction = 'outbound'
             ORDER BY m.id",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    // Only the rows sent through `modems`, when given (`Store::recover_interrupted_on`).
    let rows = rows.into_iter().filter_map(|(id, in_flight, modem)| {
        let wanted = modems.is_none_or(|ms| modem.is_some_and(|m| ms.contains(&m)));
        wanted.then_some((id, in_flight))
    });
    let mut recovered = Recovered::default();
    for (id, in_flight) in rows {
        if in_flight && !at_least_once {
            let reason = format!(
                "interrupted while sending: the message may have been sent; not resent (use \
                 `conductor requeue {id}` to send it again)"
            );
            c.prepare_cached(
                "UPDATE message_parts SET state = 'unknown', reason = 'interrupted while sending',
                     updated_at = ?2
                 WHERE message_id = ?1 AND direction = 'outbound' AND state = 'sending'",
            )?
            .execute(rusqlite::params![id, now])?;
            finish(c, id, Status::Unknown, Some(&reason), &now)?;
            event(
                c,
                &now,
                "interrupted",
                Some(id),
                None,
                Some(json!({ "now": "unknown" })),
            )?;
            recovered.unknown.push(MessageId(id));
        } else {
            let reason = if in_flight {
                "interrupted while sending; queued again (at-least-once delivery is configured)"
            } else {
                "interrupted before any part was handed to the modem; queued again"
            };
            c.prepare_cached(
                "UPDATE message_parts SET state = 'pending', updated_at = ?2
                 WHERE message_id = ?1 AND direction = 'outbound' AND state = 'sending'",
            )?
            .execute(rusqlite::params![id, now])?;
            finish(c, id, Status::Queued, Some(reason), &now)?;
            event(
                c,
                &now,
                "interrupted",
                Some(id),
                None,
                Some(json!({ "now": "queued" })),
            )?;
            recovered.requeued.push(MessageId(id));
        }
    }
    Ok(recovered)
}

/// Puts an `unknown`, `failed`, `cancelled` or `duplicate` row back in the queue, to be sent
/// from scratch and not caught as a duplicate of itself.
pub(crate) fn requeue(c: &Connection, id: MessageId, now: Timestamp) -> Db<()> {
    let status = status_of(c, id.0)?;
    transitions::requeue(id, status)?;
    let now = sql_time(now);
    c.prepare_cached("DELETE FROM message_parts WHERE message_id = ?1 AND direction = 'outbound'")?
        .execute([id.0])?;
    c.prepare_cached(
        "UPDATE messages SET status = 'queued', allow_duplicate = 1, attempts = 0,
             next_attempt_at = NULL, reason = NULL, sending_modem = NULL, sent_at = NULL,
             delivered_at = NULL, parts_received = 0, updated_at = ?2, revision = revision + 1,
             held_by = NULL
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![id.0, now])?;
    if status == Status::Expired {
        // Sent on purpose after all: due now, and its expiry (and the default TTL, which
        // counts from `send_at`) starts afresh.
        c.prepare_cached("UPDATE messages SET expires_at = NULL, send_at = ?2 WHERE id = ?1")?
            .execute(rusqlite::params![id.0, now])?;
    }
    event(
        c,
        &now,
        "requeued",
        Some(id.0),
        None,
        Some(json!({ "was": status.as_str() })),
    )?;
    Ok(())
}

/// Cancels a `queued` row.
pub(crate) fn cancel(c: &Connection, id: MessageId, now: Timestamp) -> Db<()> {
    transitions::cancel(id, status_of(c, id.0)?)?;
    let now = sql_time(now);
    finish(
        c,
        id.0,
        Status::Cancelled,
        Some("cancelled by the operator"),
        &now,
    )?;
    event(c, &now, "cancelled", Some(id.0), None, None)?;
    Ok(())
}
