//! Outbound messages on PostgreSQL: queueing, the claim with `FOR UPDATE SKIP LOCKED`, per-part
//! progress, crash recovery, requeue and cancel. A port of `crate::sqlite::outbound`; the
//! differences are the row locks and the types (see there for the reasoning behind each step).
//!
//! Two nodes claiming at once: each reads due rows with `FOR UPDATE SKIP LOCKED`, so a row one
//! node has locked is invisible to the other until the first commits it `sending` (or leaves it
//! queued), and no row is claimed twice (promise 3 across hosts).
//!
//! The sending limits (`modems[].limits`, `outbound.recipient_per_hour`) read their usage in
//! `super::policy` and hold rows exactly as the SQLite backend does.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use serde_json::json;

use super::{Db, Postgres, Tx, at, event, status_of};
use crate::claim::{self, Budget, Route, Verdict, transitions};
use crate::error::StoreError;
use crate::model::{
    ClaimRequest, Claimed, DuplicateFound, NewOutbound, OutboundJob, PartSending, Recovered, Retry,
    SentPart,
};
use crate::policy::Strategy;
use crate::types::{MessageId, ModemId, Status, normalize_number};

/// Inserts a `queued` row.
pub(crate) async fn queue(tx: &Tx<'_>, new: &NewOutbound, now: Timestamp) -> Db<MessageId> {
    if new.to.trim().is_empty() {
        return Err(StoreError::InvalidInput {
            field: "to",
            reason: "the recipient is empty".into(),
        }
        .into());
    }
    let now = at(now);
    let row = tx
        .query_one(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                 created_at, updated_at, modem_id, source, allow_duplicate, status_report, send_at,
                 priority, expires_at, transactional)
             VALUES ($1, $2, $3, 'queued', 'outbound', $3, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING id",
            &[
                &new.to,
                &new.text,
                &now,
                &new.modem_id.as_ref().map(ModemId::as_str),
                &new.source,
                &new.allow_duplicate,
                &new.status_report,
                &new.send_at.map(at),
                &new.priority,
                &new.expires_at.map(at),
                &new.transactional,
            ],
        )
        .await?;
    let id: i64 = row.get(0);
    event(
        tx,
        now,
        "queued",
        Some(id),
        None,
        Some(json!({ "source": new.source })),
    )
    .await?;
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
    attempts: i64,
    created_at: SystemTime,
    transactional: bool,
    held_by: Option<String>,
    reason: Option<String>,
    next_attempt_at: Option<SystemTime>,
}

/// Rows still queued past their expiry become `expired`. Locked rows (another node is
/// claiming them) are left for the next claim.
async fn expire_due(
    tx: &Tx<'_>,
    req: &ClaimRequest,
    now: SystemTime,
    claimed: &mut Claimed,
) -> Db<()> {
    let ttl_secs = req
        .policy
        .default_ttl
        .map(|ttl| i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 1_000_000));
    let rows = tx
        .query(
            "SELECT id, deadline, explicit FROM (
                 SELECT id, expires_at IS NOT NULL AS explicit,
                        COALESCE(expires_at,
                                 COALESCE(send_at, created_at) + make_interval(secs => $2))
                            AS deadline
                 FROM messages
                 WHERE status = 'queued' AND direction = 'outbound'
                   AND (expires_at IS NOT NULL OR $2::float8 IS NOT NULL)
                 FOR UPDATE SKIP LOCKED) due
             WHERE deadline <= $1",
            &[&now, &ttl_secs.map(|s| s as f64)],
        )
        .await?;
    for row in rows {
        let id: i64 = row.get(0);
        let deadline = super::sql_time(row.get(1));
        let reason = claim::expiry_reason(id, deadline.as_str(), row.get(2));
        finish(tx, id, Status::Expired, Some(&reason), now).await?;
        event(
            tx,
            now,
            "expired",
            Some(id),
            None,
            Some(json!({ "expired_at": deadline.as_str() })),
        )
        .await?;
        claimed.expired.push((MessageId(id), reason));
    }
    Ok(())
}

/// Claims due rows for ready modems in one transaction (see `Store::claim_due`).
pub(crate) async fn claim(db: &Postgres, tx: &Tx<'_>, req: &ClaimRequest) -> Db<Claimed> {
    let policy = &req.policy;
    let mut claimed = Claimed::default();
    let now = at(req.now);
    expire_due(tx, req, now, &mut claimed).await?;
    if req.ready_modems.is_empty() || req.limit == 0 {
        return Ok(claimed);
    }
    // Modem leases (several nodes): claim only for the modems this node holds, and leave rows
    // naming another live node's modem to that node, without a hold reason.
    let ready: Vec<&str> = req.ready_modems.iter().map(ModemId::as_str).collect();
    let fence = super::lease::claim_fence(db, tx, &ready, now).await?;
    let fenced_request;
    let req = if fence.held.len() == req.ready_modems.len() {
        req
    } else {
        fenced_request = ClaimRequest {
            ready_modems: req
                .ready_modems
                .iter()
                .filter(|m| fence.held.contains(m.as_str()))
                .cloned()
                .collect(),
            ..req.clone()
        };
        &fenced_request
    };
    if req.ready_modems.is_empty() {
        return Ok(claimed);
    }
    let ready: Vec<&str> = req.ready_modems.iter().map(ModemId::as_str).collect();
    let over_read = i64::try_from(req.limit.saturating_mul(4).max(64)).unwrap_or(i64::MAX);
    // Rows another node is claiming are skipped, not waited for.
    let rows = tx
        .query(
            "SELECT id, phone_number, content, modem_id, source, allow_duplicate, status_report,
                    attempts, created_at, transactional, held_by, reason, next_attempt_at
             FROM messages
             WHERE status = 'queued' AND direction = 'outbound'
               AND (send_at IS NULL OR send_at <= $1)
               AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
               AND (held_by IS DISTINCT FROM 'modem_not_ready' OR modem_id = ANY($3)
                    OR EXISTS (SELECT 1 FROM message_parts p WHERE p.message_id = messages.id
                               AND p.direction = 'outbound' AND p.modem_id = ANY($3)))
               AND (modem_id IS NULL OR modem_id <> ALL($4))
             ORDER BY priority DESC, id LIMIT $2
             FOR UPDATE SKIP LOCKED",
            &[&now, &over_read, &ready, &fence.elsewhere],
        )
        .await?;
    let candidates: Vec<Candidate> = rows
        .iter()
        .map(|row| Candidate {
            id: row.get(0),
            to: row.get(1),
            text: row.get(2),
            modem: row.get(3),
            source: row.get(4),
            allow_duplicate: row.get(5),
            status_report: row.get(6),
            attempts: row.get(7),
            created_at: row.get(8),
            transactional: row.get(9),
            held_by: row.get(10),
            reason: row.get(11),
            next_attempt_at: row.get(12),
        })
        .collect();
    if candidates.is_empty() {
        return Ok(claimed);
    }
    // Modems another live node holds get room 0, so a row pinned to one is skipped (that node
    // sends it) instead of being held as "modem not ready".
    let used_today = if policy.routing.strategy == Strategy::LeastUsed {
        parts_last_day(tx, req.now).await?
    } else {
        HashMap::new()
    };
    let mut budget = Budget::new(req, &fence.elsewhere, used_today);
    let mut rotation = db.rotation.fetch_add(1, Ordering::Relaxed);
    for mut cand in candidates {
        if budget.exhausted() {
            break;
        }
        let verdict = match claim::unusable(&cand.to, &cand.text) {
            Some(reason) => Verdict::Finish(Status::Failed, reason),
            None => decide(tx, req, &mut cand, &budget, &mut rotation).await?,
        };
        match verdict {
            Verdict::Finish(status, reason) => {
                finish(tx, cand.id, status, Some(&reason), now).await?;
                let detail = json!({ "reason": reason });
                event(tx, now, status.as_str(), Some(cand.id), None, Some(detail)).await?;
                claim::record_finished(&mut claimed, cand.id, status, reason);
            }
            Verdict::Hold {
                held_by,
                until,
                reason,
            } => {
                hold(tx, &cand, held_by, until, &reason, now).await?;
                claim::record_held(&mut claimed, cand.id, held_by, until, reason);
            }
            Verdict::Skip => {}
            Verdict::Duplicate(earlier) => claimed.duplicates.push(DuplicateFound {
                id: MessageId(cand.id),
                earlier: MessageId(earlier),
            }),
            Verdict::Send(modem) => {
                budget.take(&modem);
                claimed.jobs.push(start(tx, cand, modem, now).await?);
            }
        }
    }
    Ok(claimed)
}

/// Applies the policy to one usable row, in the order of [`crate::claim`]'s steps (as the
/// SQLite backend does); a duplicate is recorded here.
async fn decide(
    tx: &Tx<'_>,
    req: &ClaimRequest,
    cand: &mut Candidate,
    budget: &Budget<'_>,
    rotation: &mut usize,
) -> Db<Verdict> {
    let policy = &req.policy;
    let now = at(req.now);
    match claim::normalized(policy, &cand.to) {
        Err(verdict) => return Ok(verdict),
        Ok(None) => {}
        Ok(Some(to)) => {
            tx.execute(
                "UPDATE messages SET phone_number = $2, updated_at = $3, revision = revision + 1
                 WHERE id = $1",
                &[&cand.id, &to, &now],
            )
            .await?;
            event(
                tx,
                now,
                "number_normalized",
                Some(cand.id),
                None,
                Some(json!({ "from": cand.to, "to": to })),
            )
            .await?;
            cand.to = to;
        }
    }
    let estimate = match claim::size(policy, &cand.text) {
        Ok(e) => e,
        Err(verdict) => return Ok(verdict),
    };
    let key = normalize_number(&cand.to);
    if !cand.transactional
        && let Some(row) = tx
            .query_opt(
                "SELECT source, reason FROM blocked_numbers WHERE number = $1",
                &[&key],
            )
            .await?
    {
        let source: String = row.get(0);
        return Ok(claim::blocked(&key, &source, row.get(1)));
    }
    if let Some(window) = claim::duplicate_window(req, cand.allow_duplicate, &cand.source)
        && let Some(earlier) = earlier_duplicate(tx, cand, window).await?
    {
        let reason = claim::duplicate_reason(earlier, window);
        finish(tx, cand.id, Status::Duplicate, Some(&reason), now).await?;
        event(
            tx,
            now,
            "duplicate",
            Some(cand.id),
            None,
            Some(json!({ "earlier": earlier })),
        )
        .await?;
        return Ok(Verdict::Duplicate(earlier));
    }
    if let Some(verdict) = claim::quiet_hours(policy, cand.transactional) {
        return Ok(verdict);
    }
    // Per recipient, over every modem (and every node).
    if let Some(max) = policy.recipient_per_hour
        && let Some(over) = super::policy::recipient_over(
            tx,
            &key,
            max,
            estimate.parts,
            req.now,
            policy.transliterate,
        )
        .await?
    {
        return Ok(claim::hold_for(over));
    }
    let pinned: Option<String> = tx
        .query_opt(
            "SELECT modem_id FROM message_parts
             WHERE message_id = $1 AND direction = 'outbound'
               AND state IN ('sent', 'delivered') AND modem_id IS NOT NULL
             ORDER BY seq LIMIT 1",
            &[&cand.id],
        )
        .await?
        .map(|row| row.get(0))
        .or_else(|| cand.modem.clone());
    if let Some(modem) = pinned {
        if let Err(verdict) = claim::pinned(budget, &modem) {
            return Ok(verdict);
        }
        let over =
            super::policy::modem_over(tx, policy, &modem, &key, estimate.parts, req.now).await?;
        return Ok(claim::pinned_send(modem, over));
    }
    let last = if policy.routing.sticky {
        tx.query_opt(
            "SELECT CASE direction WHEN 'inbound' THEN modem_id ELSE sending_modem END
             FROM messages
             WHERE number_key = $1
               AND ((direction = 'inbound' AND modem_id IS NOT NULL)
                 OR (direction = 'outbound' AND sending_modem IS NOT NULL
                     AND status IN ('sending', 'sent', 'delivered')))
             ORDER BY id DESC LIMIT 1",
            &[&key],
        )
        .await?
        .map(|row| row.get(0))
    } else {
        None
    };
    let mut route = Route::new(req, &key, last, *rotation, budget);
    while let Some(modem) = route.next(budget) {
        match super::policy::modem_over(tx, policy, &modem, &key, estimate.parts, req.now).await? {
            None => {
                *rotation = rotation.wrapping_add(1);
                return Ok(Verdict::Send(modem));
            }
            Some(over) => route.over(over),
        }
    }
    Ok(route.exhausted())
}

/// Parts each modem sent in the last 24 hours (least-used routing).
async fn parts_last_day(tx: &Tx<'_>, now: Timestamp) -> Db<HashMap<String, u64>> {
    let cutoff = at(crate::sqlite::policy::minus(
        now,
        crate::sqlite::policy::DAY,
    ));
    let rows = tx
        .query(
            "SELECT modem_id, count(*) FROM message_parts
             WHERE direction = 'outbound' AND modem_id IS NOT NULL
               AND (state IN ('sending', 'unknown') OR message_ref IS NOT NULL)
               AND COALESCE(sent_at, updated_at) > $1
             GROUP BY modem_id",
            &[&cutoff],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let n: i64 = row.get(1);
            (row.get(0), u64::try_from(n).unwrap_or(0))
        })
        .collect())
}

/// Leaves a row queued with what holds it back; rewritten only when the hold changes.
async fn hold(
    tx: &Tx<'_>,
    cand: &Candidate,
    held_by: &str,
    until: Option<Timestamp>,
    reason: &str,
    now: SystemTime,
) -> Db<()> {
    let next = until.map(at);
    let same = cand.held_by.as_deref() == Some(held_by)
        && cand.reason.as_deref() == Some(reason)
        && cand.next_attempt_at == next;
    if same {
        return Ok(());
    }
    tx.execute(
        "UPDATE messages SET held_by = $2, reason = $3, next_attempt_at = $4, updated_at = $5,
             revision = revision + 1
         WHERE id = $1",
        &[&cand.id, &held_by, &reason, &next, &now],
    )
    .await?;
    if cand.held_by.as_deref() != Some(held_by) {
        let until_text = next.map(|t| super::sql_time(t).0);
        event(
            tx,
            now,
            "held",
            Some(cand.id),
            None,
            Some(json!({ "held_by": held_by, "until": until_text, "reason": reason })),
        )
        .await?;
    }
    Ok(())
}

/// Marks a row `sending` on `modem` and makes its job.
async fn start(tx: &Tx<'_>, cand: Candidate, modem: String, now: SystemTime) -> Db<OutboundJob> {
    let sent_parts: Vec<SentPart> = tx
        .query(
            "SELECT seq, total, concat_ref FROM message_parts
             WHERE message_id = $1 AND direction = 'outbound'
               AND state IN ('sent', 'delivered')
             ORDER BY seq",
            &[&cand.id],
        )
        .await?
        .iter()
        .map(|row| SentPart {
            seq: u8::try_from(row.get::<_, i64>(0)).unwrap_or(u8::MAX),
            total: u8::try_from(row.get::<_, i64>(1)).unwrap_or(u8::MAX),
            concat_ref: row
                .get::<_, Option<i64>>(2)
                .and_then(|r| u16::try_from(r).ok()),
        })
        .collect();
    tx.execute(
        "UPDATE messages SET status = 'sending', attempts = attempts + 1, sending_modem = $2,
             next_attempt_at = NULL, updated_at = $3, revision = revision + 1,
             reason = CASE WHEN held_by IS NULL THEN reason END, held_by = NULL
         WHERE id = $1",
        &[&cand.id, &modem, &now],
    )
    .await?;
    let attempt = u32::try_from(cand.attempts.saturating_add(1)).unwrap_or(u32::MAX);
    event(
        tx,
        now,
        "claimed",
        Some(cand.id),
        Some(&modem),
        Some(json!({ "attempt": attempt })),
    )
    .await?;
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

/// The latest earlier row with the same recipient and text inside the window.
async fn earlier_duplicate(tx: &Tx<'_>, cand: &Candidate, window: Duration) -> Db<Option<i64>> {
    let created = Timestamp::try_from(cand.created_at).unwrap_or(Timestamp::UNIX_EPOCH);
    let cutoff = at(claim::duplicate_cutoff(created, window).unwrap_or(Timestamp::MIN));
    Ok(tx
        .query_opt(
            "SELECT id FROM messages
             WHERE direction = 'outbound' AND number_key = $1 AND created_at >= $2 AND id < $3
               AND content = $4 AND status IN ('queued', 'sending', 'sent', 'delivered')
             ORDER BY id DESC LIMIT 1",
            &[&normalize_number(&cand.to), &cutoff, &cand.id, &cand.text],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Sets a message's status (and reason), moving `updated_at`.
async fn finish(
    tx: &Tx<'_>,
    id: i64,
    status: Status,
    reason: Option<&str>,
    now: SystemTime,
) -> Db<()> {
    tx.execute(
        "UPDATE messages SET status = $2, reason = $3, updated_at = $4, revision = revision + 1,
             held_by = NULL
         WHERE id = $1",
        &[&id, &status.as_str(), &reason, &now],
    )
    .await?;
    Ok(())
}

/// Locks the row and checks it is `sending`: two nodes (or an operator's `cancel`) cannot
/// change it between this check and the caller's writes.
async fn require_sending(tx: &Tx<'_>, id: MessageId, action: &'static str) -> Db<()> {
    Ok(transitions::sending(
        id,
        locked_status(tx, id).await?,
        action,
    )?)
}

/// The row's status, with the row locked until the transaction ends, so no other node moves
/// it between this check and the update that follows.
async fn locked_status(tx: &Tx<'_>, id: MessageId) -> Db<Status> {
    let row = tx
        .query_opt(
            "SELECT status FROM messages WHERE id = $1 FOR UPDATE",
            &[&id.0],
        )
        .await?
        .ok_or(StoreError::NotFound { id })?;
    super::parse_status(id.0, row.get(0))
}

/// Records a part as handed to the modem, before AT+CMGS.
pub(crate) async fn part_sending(
    tx: &Tx<'_>,
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
    require_sending(tx, id, "handed to a modem").await?;
    let now = at(now);
    let row = tx
        .query_one(
            "SELECT phone_number, sending_modem, attempts FROM messages WHERE id = $1",
            &[&id.0],
        )
        .await?;
    let to: String = row.get(0);
    let modem: Option<String> = row.get(1);
    let attempts: i64 = row.get(2);
    tx.execute(
        "INSERT INTO message_parts (message_id, direction, seq, total, concat_ref, modem_id,
             recipient, recipient_key, pdu, state, report_requested, attempt, created_at,
             updated_at)
         VALUES ($1, 'outbound', $2, $3, $4, $5, $6, $7, $8, 'sending', $9, $10, $11, $11)
         ON CONFLICT (message_id, seq) WHERE direction = 'outbound' DO UPDATE SET
             total = excluded.total, concat_ref = excluded.concat_ref,
             modem_id = excluded.modem_id, recipient = excluded.recipient,
             recipient_key = excluded.recipient_key, pdu = excluded.pdu, state = 'sending',
             report_requested = excluded.report_requested, attempt = excluded.attempt,
             message_ref = NULL, sent_at = NULL, report_status = NULL, reported_at = NULL,
             reason = NULL, updated_at = excluded.updated_at",
        &[
            &id.0,
            &i64::from(part.seq),
            &i64::from(part.total),
            &part.concat_ref.map(i64::from),
            &modem,
            &to,
            &normalize_number(&to),
            &part.pdu,
            &part.status_report,
            &attempts,
            &now,
        ],
    )
    .await?;
    tx.execute(
        "UPDATE messages SET parts_total = $2, parts_received = 0, updated_at = $3,
             revision = revision + 1
         WHERE id = $1 AND parts_total IS DISTINCT FROM $2",
        &[&id.0, &i64::from(part.total), &now],
    )
    .await?;
    Ok(())
}

/// Records that the network accepted a part; the message is `sent` once every part is.
pub(crate) async fn part_sent(
    tx: &Tx<'_>,
    id: MessageId,
    seq: u8,
    message_ref: u8,
    now: Timestamp,
) -> Db<Status> {
    require_sending(tx, id, "marked sent").await?;
    let now = at(now);
    let changed = tx
        .execute(
            "UPDATE message_parts SET state = 'sent', message_ref = $3, sent_at = $4,
                 updated_at = $4
             WHERE message_id = $1 AND seq = $2 AND direction = 'outbound'
               AND state = 'sending'",
            &[&id.0, &i64::from(seq), &i64::from(message_ref), &now],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::InvalidInput {
            field: "seq",
            reason: format!("part {seq} of message #{id} was not recorded as being sent"),
        }
        .into());
    }
    let row = tx
        .query_one(
            "SELECT m.parts_total,
                    (SELECT count(DISTINCT seq) FROM message_parts p
                     WHERE p.message_id = m.id AND p.direction = 'outbound'
                       AND p.state IN ('sent', 'delivered', 'failed'))
             FROM messages m WHERE m.id = $1",
            &[&id.0],
        )
        .await?;
    let (total, done): (i64, i64) = (row.get(0), row.get(1));
    tx.execute(
        "UPDATE messages SET parts_received = $2, updated_at = $3, revision = revision + 1
         WHERE id = $1",
        &[&id.0, &done, &now],
    )
    .await?;
    if done < total {
        return Ok(Status::Sending);
    }
    tx.execute(
        "UPDATE messages SET status = 'sent', sent_at = $2, reason = NULL, updated_at = $2,
             revision = revision + 1
         WHERE id = $1",
        &[&id.0, &now],
    )
    .await?;
    event(
        tx,
        now,
        "sent",
        Some(id.0),
        None,
        Some(json!({ "parts": total })),
    )
    .await?;
    settle(tx, id.0, now).await
}

/// Moves a `sent` message to `delivered` when every part is, or `failed` when any part failed
/// for good; returns its status.
pub(crate) async fn settle(tx: &Tx<'_>, id: i64, now: SystemTime) -> Db<Status> {
    let status = status_of(tx, id).await?;
    if status != Status::Sent {
        return Ok(status);
    }
    let row = tx
        .query_one(
            "SELECT m.parts_total,
                    (SELECT count(DISTINCT seq) FROM message_parts p
                     WHERE p.message_id = m.id AND p.direction = 'outbound'
                       AND p.state = 'delivered'),
                    (SELECT p.reason FROM message_parts p
                     WHERE p.message_id = m.id AND p.direction = 'outbound'
                       AND p.state = 'failed' ORDER BY p.seq LIMIT 1)
             FROM messages m WHERE m.id = $1",
            &[&id],
        )
        .await?;
    let (total, delivered, failed_reason): (i64, i64, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    if let Some(reason) = failed_reason {
        finish(tx, id, Status::Failed, Some(&reason), now).await?;
        event(
            tx,
            now,
            "failed",
            Some(id),
            None,
            Some(json!({ "reason": reason })),
        )
        .await?;
        return Ok(Status::Failed);
    }
    if delivered >= total {
        tx.execute(
            "UPDATE messages SET status = 'delivered', delivered_at = $2, updated_at = $2,
                 revision = revision + 1
             WHERE id = $1",
            &[&id, &now],
        )
        .await?;
        event(tx, now, "delivered", Some(id), None, None).await?;
        return Ok(Status::Delivered);
    }
    Ok(Status::Sent)
}

/// Records that the modem refused a part before accepting its PDU.
pub(crate) async fn part_rejected(
    tx: &Tx<'_>,
    id: MessageId,
    seq: u8,
    reason: &str,
    retry: Retry,
    now: Timestamp,
) -> Db<Status> {
    require_sending(tx, id, "marked rejected").await?;
    let now_t = at(now);
    let attempts: i64 = tx
        .query_one("SELECT attempts FROM messages WHERE id = $1", &[&id.0])
        .await?
        .get(0);
    let (status, row_reason, next) = match retry {
        Retry::At {
            next_attempt_at,
            max_attempts,
        } if attempts < i64::from(max_attempts) => (
            Status::Queued,
            format!("attempt {attempts} of {max_attempts} failed: {reason}"),
            Some(at(next_attempt_at)),
        ),
        Retry::At { .. } => (
            Status::Failed,
            format!("{reason} (gave up after {attempts} attempts)"),
            None,
        ),
        Retry::Release => (
            Status::Queued,
            format!("{reason}; queued again"),
            Some(now_t),
        ),
        Retry::Never => (Status::Failed, reason.to_owned(), None),
    };
    if retry == Retry::Release {
        tx.execute(
            "UPDATE messages SET attempts = GREATEST(attempts - 1, 0) WHERE id = $1",
            &[&id.0],
        )
        .await?;
    }
    let part_state = if status == Status::Queued {
        "pending"
    } else {
        "failed"
    };
    tx.execute(
        "UPDATE message_parts SET state = $3, reason = $4, updated_at = $5
         WHERE message_id = $1 AND seq = $2 AND direction = 'outbound'",
        &[&id.0, &i64::from(seq), &part_state, &reason, &now_t],
    )
    .await?;
    tx.execute(
        "UPDATE messages SET status = $2, reason = $3, next_attempt_at = $4, updated_at = $5,
             revision = revision + 1
         WHERE id = $1",
        &[&id.0, &status.as_str(), &row_reason, &next, &now_t],
    )
    .await?;
    let next_text = next.map(|t| super::sql_time(t).0);
    event(
        tx,
        now_t,
        if status == Status::Queued {
            "retry_scheduled"
        } else {
            "failed"
        },
        Some(id.0),
        None,
        Some(json!({ "seq": seq, "reason": row_reason, "next_attempt_at": next_text })),
    )
    .await?;
    Ok(status)
}

/// Records that a part's fate is unknown (the PDU was written, then no answer came).
pub(crate) async fn part_ambiguous(
    tx: &Tx<'_>,
    id: MessageId,
    seq: u8,
    reason: &str,
    now: Timestamp,
) -> Db<()> {
    require_sending(tx, id, "marked unknown").await?;
    let now = at(now);
    tx.execute(
        "UPDATE message_parts SET state = 'unknown', reason = $3, updated_at = $4
         WHERE message_id = $1 AND seq = $2 AND direction = 'outbound'",
        &[&id.0, &i64::from(seq), &reason, &now],
    )
    .await?;
    let row_reason =
        format!("{reason}: the message may have been sent; not resent (use requeue to send it)");
    finish(tx, id.0, Status::Unknown, Some(&row_reason), now).await?;
    event(
        tx,
        now,
        "unknown",
        Some(id.0),
        None,
        Some(json!({ "seq": seq, "reason": reason })),
    )
    .await?;
    Ok(())
}

/// Rows a crash left `sending`: all of them (`modems` None, a single node at start-up), or
/// those sent through `modems` (the modems whose leases this node has just acquired).
pub(crate) async fn recover_interrupted(
    tx: &Tx<'_>,
    now: Timestamp,
    at_least_once: bool,
    modems: Option<&[String]>,
) -> Db<Recovered> {
    let now = at(now);
    let rows = tx
        .query(
            "SELECT m.id, EXISTS (SELECT 1 FROM message_parts p
                                  WHERE p.message_id = m.id AND p.direction = 'outbound'
                                    AND p.state = 'sending')
             FROM messages m WHERE m.status = 'sending' AND m.direction = 'outbound'
               AND ($1::text[] IS NULL OR m.sending_modem = ANY($1))
             ORDER BY m.id FOR UPDATE OF m SKIP LOCKED",
            &[&modems],
        )
        .await?;
    let mut recovered = Recovered::default();
    for row in rows {
        let (id, in_flight): (i64, bool) = (row.get(0), row.get(1));
        if in_flight && !at_least_once {
            let reason = format!(
                "interrupted while sending: the message may have been sent; not resent (use \
                 `conductor requeue {id}` to send it again)"
            );
            tx.execute(
                "UPDATE message_parts SET state = 'unknown', reason = 'interrupted while sending',
                     updated_at = $2
                 WHERE message_id = $1 AND direction = 'outbound' AND state = 'sending'",
                &[&id, &now],
            )
            .await?;
            finish(tx, id, Status::Unknown, Some(&reason), now).await?;
            event(
                tx,
                now,
                "interrupted",
                Some(id),
                None,
                Some(json!({ "now": "unknown" })),
            )
            .await?;
            recovered.unknown.push(MessageId(id));
        } else {
            let reason = if in_flight {
                "interrupted while sending; queued again (at-least-once delivery is configured)"
            } else {
                "interrupted before any part was handed to the modem; queued again"
            };
            tx.execute(
                "UPDATE message_parts SET state = 'pending', updated_at = $2
                 WHERE message_id = $1 AND direction = 'outbound' AND state = 'sending'",
                &[&id, &now],
            )
            .await?;
            finish(tx, id, Status::Queued, Some(reason), now).await?;
            event(
                tx,
                now,
                "interrupted",
                Some(id),
                None,
                Some(json!({ "now": "queued" })),
            )
            .await?;
            recovered.requeued.push(MessageId(id));
        }
    }
    Ok(recovered)
}

/// Puts a finished row back in the queue, to be sent from scratch.
pub(crate) async fn requeue(tx: &Tx<'_>, id: MessageId, now: Timestamp) -> Db<()> {
    let status = status_of(tx, id.0).await?;
    transitions::requeue(id, status)?;
    let now = at(now);
    tx.execute(
        "DELETE FROM message_parts WHERE message_id = $1 AND direction = 'outbound'",
        &[&id.0],
    )
    .await?;
    tx.execute(
        "UPDATE messages SET status = 'queued', allow_duplicate = true, attempts = 0,
             next_attempt_at = NULL, reason = NULL, sending_modem = NULL, sent_at = NULL,
             delivered_at = NULL, parts_received = 0, updated_at = $2, revision = revision + 1,
             held_by = NULL
         WHERE id = $1",
        &[&id.0, &now],
    )
    .await?;
    if status == Status::Expired {
        tx.execute(
            "UPDATE messages SET expires_at = NULL, send_at = $2 WHERE id = $1",
            &[&id.0, &now],
        )
        .await?;
    }
    event(
        tx,
        now,
        "requeued",
        Some(id.0),
        None,
        Some(json!({ "was": status.as_str() })),
    )
    .await?;
    Ok(())
}

/// Cancels a `queued` row (locked first, so a node claiming it at the same moment either
/// claims it before or finds it cancelled).
pub(crate) async fn cancel(tx: &Tx<'_>, id: MessageId, now: Timestamp) -> Db<()> {
    transitions::cancel(id, locked_status(tx, id).await?)?;
    let now = at(now);
    finish(
        tx,
        id.0,
        Status::Cancelled,
        Some("cancelled by the operator"),
        now,
    )
    .await?;
    event(tx, now, "cancelled", Some(id.0), None, None).await?;
    Ok(())
}
