//! The claim's decisions, shared by both backends.
//!
//! Why here: what happens to a queued row (fail it, block it, hold it, skip it, send it and
//! through which modem) must not depend on the database holding it. Each backend fetches the
//! inputs (the row, the block list entry, an earlier duplicate, the usage a limit counts) with
//! its own SQL and locking, asks the functions here in the order `decide` lays out, and applies
//! the answer with its own SQL. Nothing here touches a database.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::model::{ClaimRequest, Claimed};
use crate::policy::{
    ClaimPolicy, Estimate, Held, Strategy, estimate, limit, normalize_recipient, too_many_parts,
};
use crate::sqlite::policy::Over;
use crate::types::{MessageId, ModemId, Status, normalize_number, sql_time};

/// What the claim decided for one row.
pub(crate) enum Verdict {
    /// Ends here with this status and reason.
    Finish(Status, String),
    /// Stays queued: held back until `until` (None: until its modem is back).
    Hold {
        held_by: &'static str,
        until: Option<Timestamp>,
        reason: String,
    },
    /// Stays queued silently: its modem has no room in this claim.
    Skip,
    /// Marked `duplicate` of this earlier row (already recorded).
    Duplicate(i64),
    /// Goes out through this modem.
    Send(String),
}

/// "10 min", "90 s": a window as people write it.
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// The reason stored on a row that expired while queued at `deadline` (UTC text); `explicit`
/// when the row's own `expires_at` set the deadline rather than `outbound.default_ttl`.
pub(crate) fn expiry_reason(id: i64, deadline: &str, explicit: bool) -> String {
    let why = if explicit {
        "its expires_at"
    } else {
        "outbound.default_ttl after it became due"
    };
    format!(
        "expired: still queued at {deadline} UTC ({why}), so it was not sent late; `conductor \
         requeue {id}` sends it anyway"
    )
}

/// What each ready modem may still take in this claim, and what each sent in the last day
/// (least-used routing).
pub(crate) struct Budget<'a> {
    /// Jobs each modem may still take; a modem missing here is not ready. Modems another node
    /// holds are here with 0, so rows pinned to them are skipped rather than held.
    pub room: HashMap<&'a str, usize>,
    /// Jobs the whole claim may still take.
    total: usize,
    /// Parts each modem sent in the last 24 hours, plus the jobs of this claim.
    pub used_today: HashMap<String, u64>,
}

impl<'a> Budget<'a> {
    /// The room of `req`'s ready modems, plus `elsewhere` (modems another live node holds).
    pub(crate) fn new(
        req: &'a ClaimRequest,
        elsewhere: &'a [String],
        used_today: HashMap<String, u64>,
    ) -> Self {
        let mut room: HashMap<&str, usize> = req
            .ready_modems
            .iter()
            .map(|m| {
                (
                    m.as_str(),
                    req.policy.room.get(m).copied().unwrap_or(req.limit),
                )
            })
            .collect();
        for modem in elsewhere {
            room.entry(modem.as_str()).or_insert(0);
        }
        let total = room.values().sum::<usize>().min(req.limit);
        Budget {
            room,
            total,
            used_today,
        }
    }

    /// Whether the claim is full: no more rows are looked at.
    pub(crate) fn exhausted(&self) -> bool {
        self.total == 0
    }

    /// Counts a job sent through `modem`.
    pub(crate) fn take(&mut self, modem: &str) {
        if let Some(n) = self.room.get_mut(modem) {
            *n = n.saturating_sub(1);
        }
        self.total = self.total.saturating_sub(1);
        *self.used_today.entry(modem.to_owned()).or_insert(0) += 1;
    }
}

/// Why a row cannot be sent as written (it fails now, with a reason a person can act on).
pub(crate) fn unusable(to: &str, text: &str) -> Option<String> {
    if to.trim().is_empty() {
        Some("no recipient: phone_number is empty".to_owned())
    } else if text.trim().is_empty() {
        // An empty SMS is legal on the air, but a row without text is almost always a
        // template or script that lost its variable: fail it visibly instead of sending a
        // blank message (promise 5).
        Some("no text: content is empty, nothing to send".to_owned())
    } else {
        None
    }
}

/// The recipient in international form. `Ok(Some(to))` when its key differs from the row's
/// (a national number gets its country code): the backend writes it back and logs the
/// original, so duplicate detection, status reports and the block list compare one spelling.
/// A number that differs only in punctuation keeps the writer's spelling (`Ok(None)`).
pub(crate) fn normalized(policy: &ClaimPolicy, to: &str) -> Result<Option<String>, Verdict> {
    let normal = match &policy.numbers {
        None => return Ok(None),
        Some(numbers) => normalize_recipient(to, numbers)
            .map_err(|e| Verdict::Finish(Status::Failed, e.to_string()))?,
    };
    Ok((normalize_number(&normal) != normalize_number(to)).then_some(normal))
}

/// The text's size, or the failure when it cannot be encoded or has too many parts.
pub(crate) fn size(policy: &ClaimPolicy, text: &str) -> Result<Estimate, Verdict> {
    let estimate =
        estimate(text, policy.transliterate).map_err(|e| Verdict::Finish(Status::Failed, e))?;
    match policy
        .max_parts
        .and_then(|max| too_many_parts(&estimate, max))
    {
        Some(refusal) => Err(Verdict::Finish(Status::Failed, refusal)),
        None => Ok(estimate),
    }
}

/// The verdict for a row whose recipient `key` is on the block list, put there by `source`
/// (with the keyword or note `why`).
pub(crate) fn blocked(key: &str, source: &str, why: Option<String>) -> Verdict {
    let how = match (source, why) {
        ("inbound", Some(keyword)) => format!("answered {keyword:?}"),
        (_, Some(note)) => format!("blocked by {source}: {note}"),
        (_, None) => format!("blocked by {source}"),
    };
    Verdict::Finish(
        Status::Blocked,
        format!(
            "{key} is on the block list ({how}); not sent. Mark the row transactional to send it \
             anyway, or `conductor block remove {key}`"
        ),
    )
}

/// The duplicate window that applies to a row from `source`: None when detection is off, the
/// row allows duplicates or its source is exempt.
pub(crate) fn duplicate_window(
    req: &ClaimRequest,
    allow_duplicate: bool,
    source: &str,
) -> Option<Duration> {
    req.duplicate_window
        .filter(|w| !w.is_zero())
        .filter(|_| !allow_duplicate && !req.duplicate_exempt_sources.iter().any(|s| s == source))
}

/// The earliest creation time of an earlier duplicate of a row created at `created`; None
/// when the window reaches back past the earliest representable time (every earlier row
/// counts).
pub(crate) fn duplicate_cutoff(created: Timestamp, window: Duration) -> Option<Timestamp> {
    SignedDuration::try_from(window)
        .ok()
        .and_then(|w| created.checked_sub(w).ok())
}

/// The reason stored on a row found to duplicate message `earlier`.
pub(crate) fn duplicate_reason(earlier: i64, window: Duration) -> String {
    format!(
        "duplicate of message #{earlier}: same recipient and text within {}",
        human_duration(window)
    )
}

/// The hold for quiet hours, when they last and the row is not transactional.
pub(crate) fn quiet_hours(policy: &ClaimPolicy, transactional: bool) -> Option<Verdict> {
    let until = policy.quiet_until.filter(|_| !transactional)?;
    Some(Verdict::Hold {
        held_by: limit::QUIET_HOURS,
        until: Some(until),
        reason: format!(
            "waiting: quiet hours (outbound.quiet_hours) until {} UTC",
            sql_time(until)
        ),
    })
}

/// The hold for a limit that is over.
pub(crate) fn hold_for(over: Over) -> Verdict {
    Verdict::Hold {
        held_by: over.limit,
        until: Some(over.until),
        reason: format!(
            "waiting: {}; it goes at {} UTC when the window frees",
            over.detail,
            sql_time(over.until)
        ),
    }
}

/// For a row pinned to `modem` (it names one, or an earlier attempt's parts went through it):
/// `Err` with the verdict when that modem cannot take it now, `Ok` when its limits decide.
pub(crate) fn pinned(budget: &Budget<'_>, modem: &str) -> Result<(), Verdict> {
    match budget.room.get(modem) {
        None => Err(Verdict::Hold {
            held_by: limit::MODEM_NOT_READY,
            until: None,
            reason: format!(
                "waiting for modem {modem}, which cannot send now (down, not registered, or not \
                 configured); it goes when that modem is ready"
            ),
        }),
        Some(0) => Err(Verdict::Skip),
        Some(_) => Ok(()),
    }
}

/// The verdict for a pinned row once its modem's limits were checked.
pub(crate) fn pinned_send(modem: String, over: Option<Over>) -> Verdict {
    match over {
        Some(over) => hold_for(over),
        None => Verdict::Send(modem),
    }
}

/// Routing a row that names no modem: sticky (`last`, the modem that last talked to the
/// number), then the longest matching prefix rule, then the ready modems by the strategy,
/// starting at `rotation`. A modem over a limit is passed over; when every ready modem is,
/// the row waits for the one that frees first, unless a modem merely had no room left in this
/// claim.
pub(crate) struct Route {
    order: std::vec::IntoIter<String>,
    busy: bool,
    earliest: Option<Over>,
}

impl Route {
    /// The modems to try for recipient `key`, in order.
    pub(crate) fn new(
        req: &ClaimRequest,
        key: &str,
        last: Option<String>,
        rotation: usize,
        budget: &Budget<'_>,
    ) -> Self {
        let policy = &req.policy;
        let mut order: Vec<String> = last.into_iter().collect();
        if let Some(rule) = policy
            .routing
            .prefixes
            .iter()
            .filter(|r| key.starts_with(r.prefix.as_str()))
            .max_by_key(|r| r.prefix.len())
        {
            order.push(rule.modem.0.clone());
        }
        let n = req.ready_modems.len();
        let mut ready: Vec<&ModemId> = (0..n)
            .map(|i| &req.ready_modems[(rotation + i) % n])
            .collect();
        if policy.routing.strategy == Strategy::LeastUsed {
            ready.sort_by_key(|m| budget.used_today.get(m.as_str()).copied().unwrap_or(0));
        }
        order.extend(ready.into_iter().map(|m| m.0.clone()));
        Route {
            order: order.into_iter(),
            busy: false,
            earliest: None,
        }
    }

    /// The next modem with room, whose limits the backend checks; None when none is left.
    pub(crate) fn next(&mut self, budget: &Budget<'_>) -> Option<String> {
        for modem in self.order.by_ref() {
            match budget.room.get(modem.as_str()) {
                None => continue, // not ready: skipped
                Some(0) => self.busy = true,
                Some(_) => return Some(modem),
            }
        }
        None
    }

    /// Notes that the modem [`Route::next`] gave is over a limit.
    pub(crate) fn over(&mut self, over: Over) {
        if self.earliest.as_ref().is_none_or(|e| over.until < e.until) {
            self.earliest = Some(over);
        }
    }

    /// The verdict once every modem was passed over.
    pub(crate) fn exhausted(self) -> Verdict {
        match (self.busy, self.earliest) {
            (true, _) | (false, None) => Verdict::Skip,
            (false, Some(over)) => hold_for(over),
        }
    }
}

/// Records a row the claim finished with `status` (failed or blocked).
pub(crate) fn record_finished(claimed: &mut Claimed, id: i64, status: Status, reason: String) {
    match status {
        Status::Blocked => claimed.blocked.push((MessageId(id), reason)),
        _ => claimed.failed.push((MessageId(id), reason)),
    }
}

/// Records a row the claim left queued.
pub(crate) fn record_held(
    claimed: &mut Claimed,
    id: i64,
    held_by: &str,
    until: Option<Timestamp>,
    reason: String,
) {
    claimed.held.push(Held {
        id: MessageId(id),
        held_by: held_by.to_owned(),
        until,
        reason,
    });
}

/// Which rows an operator (or the dispatcher) may move, checked here once for both backends so
/// SQLite and PostgreSQL refuse the same things with the same words.
pub(crate) mod transitions {
    use crate::error::StoreError;
    use crate::types::{MessageId, Status};

    /// `requeue`: a finished outbound row that did not go out.
    pub(crate) fn requeue(id: MessageId, status: Status) -> Result<(), StoreError> {
        allowed(
            id,
            status,
            "requeued",
            matches!(
                status,
                Status::Unknown
                    | Status::Failed
                    | Status::Cancelled
                    | Status::Duplicate
                    | Status::Expired
                    | Status::Blocked
            ),
            "unknown, failed, cancelled, duplicate, expired or blocked outbound",
        )
    }

    /// `cancel`: only a row still waiting.
    pub(crate) fn cancel(id: MessageId, status: Status) -> Result<(), StoreError> {
        allowed(id, status, "cancelled", status == Status::Queued, "queued")
    }

    /// The dispatcher's part updates: only a row it has claimed.
    pub(crate) fn sending(
        id: MessageId,
        status: Status,
        action: &'static str,
    ) -> Result<(), StoreError> {
        allowed(id, status, action, status == Status::Sending, "sending")
    }

    fn allowed(
        id: MessageId,
        status: Status,
        action: &'static str,
        ok: bool,
        allowed: &'static str,
    ) -> Result<(), StoreError> {
        if ok {
            Ok(())
        } else {
            Err(StoreError::WrongStatus {
                id,
                status,
                action,
                allowed,
            })
        }
    }
}
