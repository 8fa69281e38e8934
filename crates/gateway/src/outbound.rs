//! The outbound side: the dispatcher claims queued rows for the modems that can send, and
//! each modem's worker sends its jobs part by part.
//!
//! Why claim a few at a time per modem: DESIGN.md "Sending" asks that every queued row goes
//! out back to back ("5 rows at 1-3 s of modem latency are all submitted within 15 s"), and
//! that a modem that is down holds nothing back. The dispatcher keeps up to
//! [`MAX_IN_FLIGHT`] jobs per ready modem: as soon as a worker finishes one it claims the
//! next, so the modem never waits for a poll interval, while rows not yet handed to a modem
//! stay `queued` where another modem (or a restart) can take them. A rate-limited modem gets
//! one row at a time, spaced by its limit, so a row is never `sending` while it merely waits.
//!
//! One claim per round covers every ready modem, so the store can apply the sending policy
//! (issue 11, `crate::policy`): it routes rows that name no modem (sticky, prefix rules, round
//! robin or least used), skips modems at a limit, holds rows back (limits, quiet hours) with a
//! reason, and expires, blocks or fails rows; the dispatcher wakes when the earliest hold ends.
//! Workers transliterate to GSM 7-bit before encoding when `outbound.transliterate` is on.
//!
//! The dispatcher wakes on: its own `queue` calls ([`crate::GatewayHandle::queue`]), commits
//! by other processes (the change poll), a worker finishing a job, a modem becoming ready, a
//! retry coming due, a rate-limit slot opening, and the `poll_interval` safety timer.
//!
//! Keeps promise 3 ("sent at most once"): [`conductor_store::Store::claim_due`] commits
//! `sending` before a job exists, and each part is committed `sending` with
//! [`conductor_store::Store::part_sending`] before `AT+CMGS`. The modem's verdict decides the
//! rest (DESIGN.md "Sending"): `+CMGS: <mr>` → sent; `+CMS ERROR` before the prompt → retried
//! with exponential backoff (retryable codes) or failed (permanent ones), with the code and its
//! meaning as the reason; anything after the PDU was written without a verdict → `unknown`,
//! never retried or moved to another modem.

use std::collections::{HashMap, HashSet};
use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use conductor_modem::SendError;
use conductor_sms::transliterate::{Gsm7Fit, fit_gsm7};
use conductor_sms::udh::ReferenceWidth;
use conductor_sms::{SubmitOptions, encode_submit};
use conductor_store::{
    ClaimRequest, Claimed, MessageId, OutboundJob, PartSending, Retry, Status, StoreError,
};
use jiff::Timestamp;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::clock::{add, until};
use crate::policy::claim_policy;
use crate::supervisor::{Context, Lane, LaneChange};
use crate::worker::ModemWorker;

/// Jobs handed to one modem's worker and not finished yet.
pub(crate) const MAX_IN_FLIGHT: usize = 4;

/// Claims rows and hands them to the modem workers (see the module doc).
pub(crate) struct Dispatcher {
    ctx: Arc<Context>,
    lanes: Vec<Arc<Lane>>,
    /// Per lane: the earliest time its rate limit lets the next message start.
    next_allowed: Vec<Option<Timestamp>>,
    /// Which lane claims first in the next round, so unnamed rows spread over the modems.
    rotation: usize,
    /// A claim failed (database locked, …): logged once until a claim succeeds.
    failing: bool,
    /// The earliest moment a row held back by a limit or quiet hours may go.
    held_until: Option<Timestamp>,
    /// Modems added and removed by the supervisor (the first lanes arrive here too).
    changes: mpsc::UnboundedReceiver<LaneChange>,
}

impl Dispatcher {
    pub fn new(ctx: Arc<Context>, changes: mpsc::UnboundedReceiver<LaneChange>) -> Self {
        Self {
            next_allowed: Vec::new(),
            ctx,
            lanes: Vec::new(),
            rotation: 0,
            failing: false,
            held_until: None,
            changes,
        }
    }

    /// Takes a modem in or out. A removal is acknowledged here, between two claim rounds, so
    /// no job is handed to a modem after its removal was answered.
    fn apply(&mut self, change: LaneChange) {
        match change {
            LaneChange::Add(lane) => {
                self.lanes.push(lane);
                self.next_allowed.push(None);
            }
            LaneChange::Remove(id, ack) => {
                if let Some(index) = self.lanes.iter().position(|lane| lane.id == id) {
                    self.lanes.remove(index);
                    self.next_allowed.remove(index);
                }
                let _ = ack.send(());
            }
        }
    }

    pub async fn run(mut self) {
        let shutdown = self.ctx.shutdown.clone();
        loop {
            // Liveness for the service manager's watchdog (supervisor module doc).
            self.ctx.heartbeat.beat();
            while let Ok(change) = self.changes.try_recv() {
                self.apply(change);
            }
            if shutdown.is_cancelled() {
                break;
            }
            if self.claim_round().await {
                // The queue had more than the room: claim again as soon as room appears,
                // which a worker signals. Nothing to wait for beyond that.
                tokio::task::yield_now().await;
                continue;
            }
            let now = self.ctx.clock.now();
            let wake_at = self.wake_at(now);
            let sleep_for = wake_at.map(|t| until(now, t));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(change) = self.changes.recv() => self.apply(change),
                _ = self.ctx.dispatch.notified() => {}
                _ = tokio::time::sleep(self.ctx.config.outbound.poll_interval) => {}
                _ = sleep_or_never(sleep_for) => {}
            }
        }
        debug!("dispatcher stopped: no more rows are claimed");
    }

    /// The next instant something becomes claimable without anyone signalling: a retry, a
    /// rate-limit slot, a limit's window or quiet hours ending.
    fn wake_at(&mut self, now: Timestamp) -> Option<Timestamp> {
        if self.held_until.is_some_and(|t| t <= now) {
            self.held_until = None;
        }
        let retry = self.ctx.retry_at.lock().ok().and_then(|mut r| match *r {
            Some(t) if t <= now => {
                *r = None;
                Some(now)
            }
            other => other,
        });
        let limited = self
            .next_allowed
            .iter()
            .flatten()
            .copied()
            .chain(self.held_until.filter(|&t| t > now))
            .filter(|&t| t > now)
            .min();
        match (retry, limited) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One claim over every modem that can take a job: the store routes each row (policy
    /// routing, limits, a row's own modem) among them. Returns true when the claim was cut
    /// short by the room while rows may still be due right now.
    async fn claim_round(&mut self) -> bool {
        let now = self.ctx.clock.now();
        let mut ready = Vec::new();
        let mut room_of = HashMap::new();
        let mut limits = HashMap::new();
        let count = self.lanes.len();
        for k in 0..count {
            let index = (self.rotation + k) % count;
            let lane = &self.lanes[index];
            limits.insert(lane.id.clone(), lane.limits.clone());
            if !lane.state.borrow().can_send() {
                continue;
            }
            let in_flight = lane.in_flight.load(Ordering::SeqCst);
            let mut room = MAX_IN_FLIGHT.saturating_sub(in_flight);
            if lane.spacing.is_some() {
                let allowed = self.next_allowed[index].is_none_or(|t| t <= now);
                room = if in_flight == 0 && allowed { 1 } else { 0 };
            }
            // A busy modem is still ready (room 0): rows that name it wait silently instead of
            // being told their modem is down.
            ready.push(lane.id.clone());
            room_of.insert(lane.id.clone(), room);
        }
        self.rotation = self.rotation.wrapping_add(1);
        let room: usize = room_of.values().sum();
        // Claimed even with no modem ready: expiry must not wait for a modem.
        let request = ClaimRequest {
            now,
            ready_modems: ready,
            limit: room,
            duplicate_window: Some(self.ctx.config.outbound.duplicate_window),
            duplicate_exempt_sources: self.ctx.config.outbound.duplicate_exempt_sources.clone(),
            policy: claim_policy(&self.ctx.config, limits, room_of, now),
        };
        let claimed = match self.ctx.store.claim_due(request).await {
            Ok(claimed) => {
                self.failing = false;
                claimed
            }
            Err(e) => {
                if !self.failing {
                    error!(error = %e, "could not claim queued messages; retrying");
                    self.failing = true;
                }
                return false;
            }
        };
        let taken = claimed.jobs.len()
            + claimed.duplicates.len()
            + claimed.failed.len()
            + claimed.blocked.len()
            + claimed.held.len();
        let jobs = claimed.jobs.len();
        self.report(claimed, now);
        room > 0 && taken >= room && jobs < room
    }

    /// Logs what the claim decided and hands the jobs to their modems' workers.
    fn report(&mut self, claimed: Claimed, now: Timestamp) {
        for duplicate in claimed.duplicates {
            warn!(
                id = duplicate.id.0,
                earlier = duplicate.earlier.0,
                "duplicate message detected: #{} has the same recipient and text as #{}; not sent",
                duplicate.id,
                duplicate.earlier
            );
        }
        for (id, reason) in claimed.failed {
            warn!(id = id.0, %reason, "message #{id} cannot be sent as written");
        }
        for (id, reason) in claimed.blocked {
            info!(id = id.0, %reason, "message #{id} blocked");
        }
        for (id, reason) in claimed.expired {
            warn!(id = id.0, %reason, "message #{id} expired before it could be sent");
        }
        for held in claimed.held {
            debug!(id = held.id.0, held_by = %held.held_by, reason = %held.reason, "message #{} held back", held.id);
            if let Some(until) = held.until {
                self.held_until = Some(self.held_until.map_or(until, |t| t.min(until)));
            }
        }
        for job in claimed.jobs {
            let id = job.id;
            let Some(index) = self.lanes.iter().position(|lane| lane.id == job.modem) else {
                // Cannot happen (the claim only picks ready lanes); the next start queues it.
                error!(id = id.0, modem = %job.modem, "claimed for a modem the dispatcher does not know");
                continue;
            };
            let lane = Arc::clone(&self.lanes[index]);
            if let Some(spacing) = lane.spacing {
                self.next_allowed[index] = Some(add(now, spacing));
            }
            lane.in_flight.fetch_add(1, Ordering::SeqCst);
            if lane.jobs.send(job).is_err() {
                // The worker is gone (shutting down): the row stays `sending` with no part in
                // flight, and the next start queues it again.
                lane.in_flight.fetch_sub(1, Ordering::SeqCst);
                debug!(
                    id = id.0,
                    "claimed during shutdown; the next start queues it again"
                );
            }
        }
    }
}

async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => pending().await,
    }
}

/// The concatenation reference of a message: derived from its id, so consecutive messages
/// (to the same recipient, say) never share one, and a retry reuses the same.
pub(crate) fn concat_reference(id: MessageId) -> u16 {
    u16::try_from(id.0.rem_euclid(256)).unwrap_or(0)
}

/// The wait before attempt `attempt + 1`: `backoff`, doubling per attempt, at most a day.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor)
        .min(Duration::from_secs(24 * 3600))
}

/// A send error in words an operator can act on (the CMS code and its meaning).
pub(crate) fn describe(modem: &str, error: &SendError) -> String {
    match error {
        SendError::Rejected {
            code: Some(code), ..
        } if *code == conductor_modem::CmsCode::SMSC_ADDRESS_UNKNOWN => format!(
            "modem {modem} refused the send: +CMS ERROR 330: no SMS service centre number: set \
             `smsc` for modem {modem} in the config (your operator publishes it)"
        ),
        SendError::Rejected {
            code: Some(code), ..
        } => format!(
            "modem {modem} refused the send: +CMS ERROR {} ({})",
            code.0,
            code.description()
        ),
        SendError::Rejected { result, .. } => format!("modem {modem} refused the send: {result}"),
        SendError::Failed {
            code: Some(code), ..
        } => format!(
            "the network refused the message: +CMS ERROR {} ({})",
            code.0,
            code.description()
        ),
        SendError::Failed { result, .. } => format!("the network refused the message: {result}"),
        SendError::NotSent(error) => format!("not handed to modem {modem}: {error}"),
        SendError::Ambiguous { reason } => format!("modem {modem} took the PDU, then {reason}"),
    }
}

impl ModemWorker {
    /// Sends one claimed job, then tells the dispatcher there is room again.
    pub(crate) async fn send_job(&mut self, job: OutboundJob) {
        self.send_message(job).await;
        self.lane.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.ctx.dispatch.notify_one();
    }

    async fn send_message(&mut self, job: OutboundJob) {
        let config = &self.ctx.config.outbound;
        let status_report = job.status_report.unwrap_or(config.status_reports);
        // A retry of a long message keeps the reference its first parts went out with.
        let reference = job
            .sent_parts
            .iter()
            .find_map(|p| p.concat_ref)
            .unwrap_or_else(|| concat_reference(job.id));
        let options = SubmitOptions {
            status_report,
            flash: false,
            validity: config.validity,
            concat_reference: reference,
            reference_width: ReferenceWidth::Bits8,
        };
        // The claim counted the parts of this same text (`conductor_store::policy::estimate`).
        let text = match config.transliterate.then(|| fit_gsm7(&job.text)) {
            Some(Gsm7Fit::Transliterated { text, replaced }) => {
                debug!(id = job.id.0, replaced, "transliterated to GSM 7-bit");
                text
            }
            _ => job.text.clone(),
        };
        let encoded = match encode_submit(&job.to, &text, &options) {
            Ok(encoded) => encoded,
            Err(e) => {
                let reason = format!("cannot be sent as written: {e}");
                self.reject(&job, 1, reason, Retry::Never).await;
                return;
            }
        };
        let total = u8::try_from(encoded.parts.len()).unwrap_or(u8::MAX);
        let done: HashSet<u8> = job
            .sent_parts
            .iter()
            .filter(|p| p.total == total)
            .map(|p| p.seq)
            .collect();
        for (index, part) in encoded.parts.iter().enumerate() {
            let seq = u8::try_from(index + 1).unwrap_or(u8::MAX);
            if done.contains(&seq) {
                continue;
            }
            if self.lane.stop.is_cancelled() && index > 0 {
                // Between parts: stop here with no part in flight. The row goes back to
                // `queued`; the parts sent are recorded and are not sent again.
                self.release_unstarted(&job, "the gateway stopped between two parts")
                    .await;
                return;
            }
            let blocker = self.state.borrow().send_blocker();
            if let Some(why) = blocker {
                // Not registered, roaming refused, recovering a hang: the row waits for this
                // modem or goes to another (released, the attempt not counted).
                let reason = format!("modem {} cannot send now: {why}", self.id);
                let retry = self.retry_now();
                self.reject(&job, seq, reason, retry).await;
                return;
            }
            let pdu = part.pdu.to_hex();
            let sending = PartSending {
                seq,
                total,
                concat_ref: part.concat.map(|c| c.reference),
                pdu: pdu.clone(),
                status_report,
            };
            // Promise 3: committed before AT+CMGS.
            match self
                .ctx
                .store
                .part_sending(job.id, sending, self.now())
                .await
            {
                Ok(()) => {}
                Err(StoreError::WrongStatus { status, .. }) => {
                    info!(id = job.id.0, %status, "message #{} changed meanwhile ({status}); not sent", job.id);
                    return;
                }
                Err(e) => {
                    error!(id = job.id.0, error = %e, "could not record a part before sending it; not sent (the next start queues it again)");
                    return;
                }
            }
            match self.handle.send_pdu(&pdu).await {
                Ok(message_ref) => {
                    if !self.part_sent(&job, seq, total, message_ref).await {
                        return;
                    }
                }
                Err(error) => {
                    self.send_failed(&job, seq, error).await;
                    return;
                }
            }
        }
    }

    /// Records `+CMGS: <mr>`. Retries the write a few times: the network has the part, and
    /// losing this record would leave the row `unknown` after a restart.
    async fn part_sent(&mut self, job: &OutboundJob, seq: u8, total: u8, message_ref: u8) -> bool {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=5 {
            match self
                .ctx
                .store
                .part_sent(job.id, seq, message_ref, self.now())
                .await
            {
                Ok(Status::Sent) => {
                    info!(id = job.id.0, to = %job.to, parts = total, "message #{} sent", job.id);
                    return true;
                }
                Ok(status @ (Status::Delivered | Status::Failed)) => {
                    info!(id = job.id.0, %status, "message #{} sent (its reports came first: {status})", job.id);
                    return true;
                }
                Ok(_) => {
                    debug!(id = job.id.0, seq, total, message_ref, "part sent");
                    return true;
                }
                Err(e) if e.is_transient() && attempt < 5 => {
                    warn!(id = job.id.0, error = %e, "could not record a sent part; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    error!(id = job.id.0, seq, error = %e, "the network accepted a part but it could not be recorded; the message will show as unknown");
                    return false;
                }
            }
        }
        false
    }

    async fn send_failed(&mut self, job: &OutboundJob, seq: u8, error: SendError) {
        self.ctx.counters.record_send_error(&self.id, &error);
        let reason = describe(self.id.as_str(), &error);
        match &error {
            SendError::Ambiguous { .. } => {
                // DESIGN.md "Sending": the PDU may have left. Never retried, never moved.
                match self
                    .ctx
                    .store
                    .part_ambiguous(job.id, seq, reason.clone(), self.now())
                    .await
                {
                    Ok(()) => error!(
                        id = job.id.0,
                        %reason,
                        "message #{} is unknown: it may have been sent; not resent (`conductor requeue {}` resends it)",
                        job.id,
                        job.id
                    ),
                    Err(e) => {
                        error!(id = job.id.0, error = %e, "could not record an ambiguous send; the next start marks it unknown")
                    }
                }
            }
            SendError::Rejected {
                retryable: true, ..
            } => {
                let retry = Retry::At {
                    next_attempt_at: add(
                        self.now(),
                        backoff(self.ctx.config.outbound.retry_backoff, job.attempt),
                    ),
                    max_attempts: self.ctx.config.outbound.max_attempts,
                };
                self.reject(job, seq, reason, retry).await;
            }
            SendError::NotSent(cause) if cause.is_transient() => {
                // Nothing is wrong with the message: it may go at once, by another modem.
                let retry = self.retry_now();
                self.reject(job, seq, reason, retry).await;
            }
            SendError::Failed {
                code: Some(conductor_modem::CmsCode::NO_NETWORK_SERVICE),
                ..
            } => {
                // "No network service" after the PDU: the modem had no network to submit it
                // to, so it surely did not leave (not ambiguous). Registration was lost under
                // the send: the row waits, queued, for this modem to register again or for
                // another modem (issue 10), instead of failing for good.
                let retry = Retry::At {
                    next_attempt_at: add(
                        self.now(),
                        backoff(self.ctx.config.outbound.retry_backoff, job.attempt),
                    ),
                    max_attempts: self.ctx.config.outbound.max_attempts,
                };
                self.reject(job, seq, reason, retry).await;
            }
            SendError::Rejected { .. } | SendError::NotSent(_) | SendError::Failed { .. } => {
                self.reject(job, seq, reason, Retry::Never).await;
            }
        }
    }

    /// The modem never saw the part: queued again at once, the attempt not counted.
    fn retry_now(&self) -> Retry {
        Retry::Release
    }

    /// Gives back a claimed job no part of which is in flight (shutdown): `queued` again at
    /// once, the attempt not counted, so SQL readers never see `sending` while the daemon is
    /// down and the next start sends it without waiting for crash recovery.
    pub(crate) async fn release_unstarted(&mut self, job: &OutboundJob, reason: &str) {
        let seq = (1..=u8::MAX)
            .find(|seq| !job.sent_parts.iter().any(|p| p.seq == *seq))
            .unwrap_or(1);
        self.reject(job, seq, reason.to_owned(), Retry::Release)
            .await;
    }

    /// Records a refusal before the PDU left: queued again with `retry`, or failed.
    async fn reject(&mut self, job: &OutboundJob, seq: u8, reason: String, retry: Retry) {
        let result = self
            .ctx
            .store
            .part_rejected(job.id, seq, reason.clone(), retry, self.now())
            .await;
        match result {
            Ok(Status::Queued) => {
                if let Retry::At {
                    next_attempt_at, ..
                } = retry
                {
                    warn!(id = job.id.0, attempt = job.attempt, %reason, retry_at = %next_attempt_at, "message #{} not sent; it is retried", job.id);
                    self.ctx.note_retry(next_attempt_at);
                } else if retry == Retry::Release {
                    info!(id = job.id.0, %reason, "message #{} queued again", job.id);
                    self.ctx.note_retry(self.now());
                }
            }
            Ok(status) => {
                warn!(id = job.id.0, %status, %reason, "message #{} failed", job.id);
            }
            Err(e) => {
                error!(id = job.id.0, error = %e, %reason, "could not record a refused send; the next start queues it again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use conductor_modem::{CmsCode, FinalResult};

    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_and_is_capped() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 4), Duration::from_secs(240));
        assert_eq!(backoff(base, 100), Duration::from_secs(24 * 3600));
    }

    #[test]
    fn references_differ_for_consecutive_messages() {
        assert_ne!(
            concat_reference(MessageId(7)),
            concat_reference(MessageId(8))
        );
        assert_eq!(concat_reference(MessageId(256)), 0);
        assert_eq!(concat_reference(MessageId(-1)), 255);
    }

    #[test]
    fn a_refusal_names_the_cms_code_and_its_meaning() {
        let error = SendError::Rejected {
            code: Some(CmsCode(42)),
            result: FinalResult::CmsError(CmsCode(42)),
            retryable: true,
        };
        let text = describe("m1", &error);
        assert!(text.contains("+CMS ERROR 42"), "{text}");
        assert!(text.contains(CmsCode(42).description()), "{text}");
    }
}
