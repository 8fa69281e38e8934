//! What the HTTP API persists beyond the SQL contract: idempotency keys and the webhook outbox
//! (migration 0002). Backend-independent types; the SQLite queries are in `sqlite::api`.
//!
//! Why here: a retried `POST` must find its first result even after a restart, and a webhook
//! delivery must survive a crash (DESIGN.md issue 7), so both live in the database, written in
//! short transactions like everything else. The policy (which events go where, backoff, the
//! HTTP itself) stays in `conductor-http`: the store only records.

use jiff::Timestamp;
use serde::Serialize;

use crate::types::{MessageId, SqlTime};

/// An `Idempotency-Key` and what the request was, so a reuse with another body is told apart.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    /// The header's value.
    pub key: String,
    /// A hash of the request (route and body).
    pub request_hash: String,
    /// A key recorded before this time has expired (`http.idempotency_ttl`): it counts as
    /// never seen and is recorded afresh, even before the periodic prune deletes it. `None`:
    /// keys never expire.
    pub expired_before: Option<Timestamp>,
}

/// What [`crate::Store::queue_outbound_batch`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueOutcome {
    /// Queued now, in request order.
    Queued(Vec<MessageId>),
    /// The key was used before for the same request: these are its messages; nothing new.
    Replayed(Vec<MessageId>),
    /// The key was used before for a different request: nothing queued.
    KeyConflict,
}

/// A delivery's state in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; no more are made.
    Failed,
}

impl DeliveryState {
    /// The SQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Reads the SQL spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// A delivery to put in the outbox.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// The `events` row announced.
    pub event_id: i64,
    /// The public event name (`message.received`, …).
    pub event: String,
    /// The exact JSON body to send.
    pub payload: String,
}

/// One outbox row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookDelivery {
    /// Row id.
    pub id: i64,
    /// The endpoint's name.
    pub endpoint: String,
    /// The `events` row announced.
    pub event_id: i64,
    /// The public event name.
    pub event: String,
    /// The JSON body.
    pub payload: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending rows).
    pub next_attempt_at: SqlTime,
    /// When the last attempt was made.
    pub last_attempt_at: Option<SqlTime>,
    /// The HTTP status of the last attempt.
    pub last_status: Option<i64>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: SqlTime,
    /// When the receiver accepted it.
    pub delivered_at: Option<SqlTime>,
}

/// The result of one delivery attempt.
#[derive(Clone, Debug)]
pub enum AttemptResult {
    /// 2xx.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// The HTTP status, if an answer came.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// When to try again.
        next_attempt_at: Timestamp,
    },
    /// Failed for the last time.
    GiveUp {
        /// The HTTP status, if an answer came.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

/// Filters for [`crate::Store::webhook_deliveries`].
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Only this endpoint.
    pub endpoint: Option<String>,
    /// Only this state.
    pub state: Option<DeliveryState>,
    /// Only ids below this one (paging).
    pub before_id: Option<i64>,
    /// At most this many, newest first (0 means 100).
    pub limit: usize,
}

/// Outbox counts for metrics: per endpoint and state, rows and attempts made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryCount {
    /// The endpoint.
    pub endpoint: String,
    /// The state.
    pub state: DeliveryState,
    /// Rows.
    pub deliveries: u64,
    /// Attempts summed over those rows.
    pub attempts: u64,
}

/// Messages in one time bucket with one direction and status (the dashboard's charts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VolumeBucket {
    /// The bucket's start: `YYYY-MM-DDTHH:00:00Z` (hours) or `YYYY-MM-DD` (days), UTC.
    pub bucket: String,
    /// The direction.
    pub direction: crate::types::Direction,
    /// The status now.
    pub status: crate::types::Status,
    /// How many.
    pub count: u64,
}

/// A latency histogram computed from the rows (second resolution: the SQL contract stores
/// times to the second).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencyHistogram {
    /// Rows measured.
    pub count: u64,
    /// Their latencies summed, in seconds.
    pub sum: f64,
    /// (upper bound in seconds, rows at or below it), cumulative, bounds ascending.
    pub buckets: Vec<(f64, u64)>,
}

/// Which latency [`crate::Store::latency_histogram`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    /// Outbound: from queued (or `send_at`, if later) to accepted by the network (`sent_at`).
    Send,
    /// Inbound: from the SMSC time stamp to the row's commit (`created_at`).
    Inbound,
}
