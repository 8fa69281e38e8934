//! What goes into and comes out of the store's operations, backend-independent.
//!
//! Why: the gateway and the CLI speak these types, never SQL, so a second backend implements
//! the same operations over the same types. Inputs carry `jiff::Timestamp`s from the caller's
//! clock; outputs carry [`SqlTime`]s, the text as stored, because external writers may have
//! written anything there.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::fingerprint::Fingerprint;
use crate::types::{Direction, MessageId, ModemId, SqlTime, Status};

// ---------------------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------------------

/// One inbound SMS as read from a SIM slot (a single-part message, or one part of a long one).
#[derive(Clone, Debug)]
pub struct InboundSms {
    /// The modem that read it.
    pub modem_id: ModemId,
    /// See [`Fingerprint::of`].
    pub fingerprint: Fingerprint,
    /// The memory it was read from (`SM`, `ME`, `MT`).
    pub sim_storage: String,
    /// Its slot there, until it is deleted.
    pub sim_slot: u32,
    /// The originating address as decoded (`+4917…`, or alphanumeric).
    pub sender: String,
    /// The decoded text of this SMS (of this part, for a long message).
    pub text: String,
    /// `gsm7`, `ucs2` or `8bit`.
    pub encoding: Option<String>,
    /// The SMSC time stamp in RFC 3339 with the zone the network sent (`2024-03-01T12:00:00+01:00`).
    pub smsc_timestamp: Option<String>,
    /// The TP-DCS message class, when one is set.
    pub message_class: Option<u8>,
    /// The PDU as read, hex, if the gateway keeps it.
    pub raw_pdu: Option<String>,
    /// When the gateway read it (its clock).
    pub received_at: Timestamp,
}

/// The concatenation header of one part (TS 23.040 §9.2.3.24.1 / .8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat {
    /// The concatenated short message reference number.
    pub reference: u16,
    /// 8 or 16: the width of `reference` (IEI 0x00 or 0x08).
    pub ref_bits: u8,
    /// How many parts the message has.
    pub total: u8,
    /// This part's number, 1-based.
    pub seq: u8,
}

/// One part of a long inbound message.
#[derive(Clone, Debug)]
pub struct InboundPart {
    /// The part's own SIM copy and text.
    pub sms: InboundSms,
    /// Where it belongs.
    pub concat: Concat,
}

/// A SIM copy that could not be decoded: stored raw with the reason (promise 5), so it is
/// neither lost nor retried forever.
#[derive(Clone, Debug)]
pub struct UndecodablePdu {
    /// The modem that read it.
    pub modem_id: ModemId,
    /// The fingerprint, computed with whatever could be decoded (see [`Fingerprint::of`]).
    pub fingerprint: Fingerprint,
    /// The memory it was read from.
    pub sim_storage: String,
    /// Its slot there.
    pub sim_slot: u32,
    /// The sender, if that much could be decoded.
    pub sender: Option<String>,
    /// The PDU as read, hex.
    pub raw_pdu: String,
    /// Why it could not be decoded, for a person.
    pub reason: String,
    /// When the gateway read it.
    pub received_at: Timestamp,
}

/// The result of storing an inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// The row.
    pub id: MessageId,
    /// false when the fingerprint was already stored (a re-read: nothing new was written).
    pub newly_created: bool,
}

/// What storing one part of a long message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PartOutcome {
    /// The fingerprint was already stored (a re-read). `message_id` is the message the part
    /// belongs to, if it has been assembled.
    Duplicate {
        /// The assembled message, if any.
        message_id: Option<MessageId>,
    },
    /// Stored; the message still misses parts.
    Waiting {
        /// Distinct parts stored so far.
        have: u8,
        /// Parts the message has.
        total: u8,
    },
    /// This part completed the message: its row is committed now.
    Completed {
        /// The new row.
        id: MessageId,
    },
    /// This part arrived after its group was stored as incomplete and completed that same row
    /// (its `incomplete` flag is cleared).
    CompletedLate {
        /// The row, now complete.
        id: MessageId,
    },
    /// This part arrived after its group was stored as incomplete; the row now has its text
    /// but still misses others.
    AddedLate {
        /// The row, still incomplete.
        id: MessageId,
        /// Distinct parts stored so far.
        have: u8,
        /// Parts the message has.
        total: u8,
    },
}

/// The result of [`crate::Store::store_inbound_part`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StoredPart {
    /// What happened to the part.
    pub outcome: PartOutcome,
    /// A waiting group that had to be stored as incomplete first, because this part reused its
    /// reference with a different text for a number it already had (the reference wrapped).
    pub flushed: Option<MessageId>,
}

/// When SIM copies are deleted (DESIGN.md "Lifecycle").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletePolicy {
    /// "Option A": keep the copy until the row is no longer `unread`.
    OnRead,
    /// "Option B": delete as soon as the row is committed.
    OnStore,
}

/// What a SIM copy holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimCopyKind {
    /// An SMS or one part of one.
    MessagePart,
    /// A status report stored with +CDSI.
    StatusReport,
}

/// A copy on a SIM whose row is committed, as listed for deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimCopy {
    /// The memory.
    pub storage: String,
    /// The slot.
    pub slot: u32,
    /// What the slot must still hold before it is deleted (DESIGN.md "Receiving").
    pub fingerprint: Fingerprint,
    /// The message it belongs to (None: a part still waiting for the rest, or a report).
    pub message_id: Option<MessageId>,
    /// Part or report.
    pub kind: SimCopyKind,
}

// ---------------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------------

/// A message to queue (CLI `send`, the API).
#[derive(Clone, Debug)]
pub struct NewOutbound {
    /// The recipient as given.
    pub to: String,
    /// The text.
    pub text: String,
    /// The modem that must send it; None lets the dispatcher choose.
    pub modem_id: Option<ModemId>,
    /// Who queued it (`cli`, `api`, …): sources can opt out of duplicate detection.
    pub source: String,
    /// Skip duplicate detection for this row.
    pub allow_duplicate: bool,
    /// Request a status report; None = the gateway's default.
    pub status_report: Option<bool>,
    /// Not before this time; None = as soon as possible.
    pub send_at: Option<Timestamp>,
    /// Higher goes first (`messages.priority`); 0 is the default of every writer.
    pub priority: i64,
    /// Not after this time: still queued then, the row becomes `expired`; None = the
    /// gateway's `default_ttl`, if any.
    pub expires_at: Option<Timestamp>,
    /// Sent even to a blocked number and during quiet hours (one-time codes, receipts).
    pub transactional: bool,
}

/// What [`crate::Store::claim_due`] may claim.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    /// The dispatcher's clock.
    pub now: Timestamp,
    /// Modems that can send now. Rows naming another modem wait; unnamed rows are spread over
    /// these, least loaded first.
    pub ready_modems: Vec<ModemId>,
    /// At most this many rows (the batch).
    pub limit: usize,
    /// Duplicate detection window; None or zero turns it off.
    pub duplicate_window: Option<Duration>,
    /// Sources whose rows are never checked for duplicates.
    pub duplicate_exempt_sources: Vec<String>,
    /// The sending policy: numbers, limits, routing, quiet hours, expiry, size.
    pub policy: crate::policy::ClaimPolicy,
}

/// A part of an outbound message that the network already accepted in an earlier attempt, so
/// a retry sends only the rest, with the same concatenation reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SentPart {
    /// 1-based part number.
    pub seq: u8,
    /// Parts in the message as sent then.
    pub total: u8,
    /// The concatenation reference used.
    pub concat_ref: Option<u16>,
}

/// A claimed row, now `sending`: the dispatcher's work item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutboundJob {
    /// The row.
    pub id: MessageId,
    /// The recipient as stored.
    pub to: String,
    /// The text.
    pub text: String,
    /// The modem chosen to send it.
    pub modem: ModemId,
    /// Request a status report; None = the gateway's default.
    pub status_report: Option<bool>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Who queued it.
    pub source: String,
    /// Parts accepted in earlier attempts (empty on a first attempt).
    pub sent_parts: Vec<SentPart>,
}

/// A row that duplicate detection stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DuplicateFound {
    /// The row now `duplicate`.
    pub id: MessageId,
    /// The earlier row with the same recipient and text.
    pub earlier: MessageId,
}

/// The outcome of one claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Claimed {
    /// Rows now `sending`, in id order.
    pub jobs: Vec<OutboundJob>,
    /// Rows now `duplicate` (the gateway logs "duplicate message detected" with both ids).
    pub duplicates: Vec<DuplicateFound>,
    /// Rows failed at claim time because they cannot be sent as written (no recipient, a
    /// `send_at` that is not a time, a number that is not one, too many parts), with the
    /// reason stored on the row.
    pub failed: Vec<(MessageId, String)>,
    /// Rows left `queued` because a limit, quiet hours or their modem holds them back.
    pub held: Vec<crate::policy::Held>,
    /// Rows now `blocked` (the recipient opted out), with the reason.
    pub blocked: Vec<(MessageId, String)>,
    /// Rows now `expired`, with the reason.
    pub expired: Vec<(MessageId, String)>,
}

/// One part about to be written with AT+CMGS.
#[derive(Clone, Debug)]
pub struct PartSending {
    /// 1-based part number.
    pub seq: u8,
    /// Parts in the message.
    pub total: u8,
    /// The concatenation reference, for long messages.
    pub concat_ref: Option<u16>,
    /// The SMS-SUBMIT PDU, hex.
    pub pdu: String,
    /// Whether this part requests a status report (TP-SRR).
    pub status_report: bool,
}

/// What to do after the modem refused a part before accepting its PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// A transient error: try again at `next_attempt_at`, unless the row has had
    /// `max_attempts` attempts already.
    At {
        /// When the row becomes due again.
        next_attempt_at: Timestamp,
        /// Attempts allowed in all.
        max_attempts: u32,
    },
    /// The modem never saw the part (it went down, or was not ready): queue the row again at
    /// once without counting the attempt, so a flapping modem cannot use up a message's
    /// attempts without ever trying to send it.
    Release,
    /// A permanent error: fail the row now.
    Never,
}

/// What [`crate::Store::recover_interrupted`] did at start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Rows whose PDU may have left: now `unknown` (at most once).
    pub unknown: Vec<MessageId>,
    /// Rows back to `queued`: nothing was in flight, or at-least-once is configured.
    pub requeued: Vec<MessageId>,
}

// ---------------------------------------------------------------------------------------------
// Status reports
// ---------------------------------------------------------------------------------------------

/// What a TP-ST value means (TS 23.040 §9.2.3.15); the codec's `StatusCategory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportCategory {
    /// Delivered (or forwarded / replaced).
    Delivered,
    /// Temporary error; the SC keeps trying and will report again.
    Pending,
    /// Failed for good.
    Failed,
}

impl ReportCategory {
    /// The SQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }
}

/// Where a copy sits on a SIM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimLocation {
    /// The memory.
    pub storage: String,
    /// The slot.
    pub slot: u32,
    /// The copy's fingerprint.
    pub fingerprint: Fingerprint,
}

/// A status report as received.
#[derive(Clone, Debug)]
pub struct StatusReportIn {
    /// The modem it came through (reports are matched per modem).
    pub modem_id: ModemId,
    /// TP-MR of the SUBMIT it reports on.
    pub message_ref: u8,
    /// TP-RA: the recipient.
    pub recipient: String,
    /// TP-ST as received.
    pub status_code: u8,
    /// What it means.
    pub category: ReportCategory,
    /// A description of the status for people (`"validity period expired"`).
    pub description: Option<String>,
    /// TP-DT in RFC 3339.
    pub discharge_time: Option<String>,
    /// The PDU, hex.
    pub raw_pdu: Option<String>,
    /// When the gateway received it.
    pub received_at: Timestamp,
    /// Set when the report was stored on the SIM (+CDSI), so it is deleted there once stored.
    pub sim: Option<SimLocation>,
}

/// What recording a status report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReportOutcome {
    /// The `delivery_reports` row.
    pub report_id: i64,
    /// false when this SIM copy was recorded before (a re-read): nothing changed.
    pub newly_recorded: bool,
    /// The message whose part it matched, if any.
    pub message_id: Option<MessageId>,
    /// The matched part's number.
    pub part_seq: Option<u8>,
    /// The message's status afterwards.
    pub message_status: Option<Status>,
}

// ---------------------------------------------------------------------------------------------
// Modems and events
// ---------------------------------------------------------------------------------------------

/// A modem's health, as the daemon last recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModemState {
    /// Opening the port or initialising.
    Starting,
    /// Initialised, registered, can send and receive.
    Ready,
    /// Up but impaired (no network, SIM full, …): `last_error` says what.
    Degraded,
    /// Unreachable; the daemon is reconnecting with backoff.
    Down,
}

impl ModemState {
    /// The SQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Self::Starting, Self::Ready, Self::Degraded, Self::Down]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// Use of one message memory (AT+CPMS?).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StorageUse {
    /// `SM`, `ME`, `MT`, `SR`.
    pub memory: String,
    /// Slots in use.
    pub used: u32,
    /// Slots in all.
    pub total: u32,
}

impl StorageUse {
    /// `used/total (x.x % full)`, the one way storage is shown (DESIGN.md "Database").
    pub fn display(&self) -> String {
        let percent = if self.total == 0 {
            0.0
        } else {
            f64::from(self.used) * 100.0 / f64::from(self.total)
        };
        format!("{}/{} ({percent:.1} % full)", self.used, self.total)
    }
}

/// One modem's status row: what `status`, `health` and the API show without opening a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModemStatus {
    /// The modem.
    pub modem_id: ModemId,
    /// Its health.
    pub state: ModemState,
    /// The last problem, for people.
    pub last_error: Option<String>,
    /// AT+CGMI.
    pub manufacturer: Option<String>,
    /// AT+CGMM.
    pub model: Option<String>,
    /// AT+CGMR.
    pub firmware: Option<String>,
    /// AT+CGSN.
    pub imei: Option<String>,
    /// AT+CIMI.
    pub imsi: Option<String>,
    /// AT+CCID.
    pub iccid: Option<String>,
    /// AT+COPS?.
    pub operator: Option<String>,
    /// AT+CSQ in dBm.
    pub signal_dbm: Option<i32>,
    /// AT+CREG?/CEREG? as a word (`home`, `roaming`, `searching`, `denied`, …).
    pub registration: Option<String>,
    /// AT+CPMS? per memory.
    pub storage: Vec<StorageUse>,
    /// The last poll cycle that completed without error.
    pub last_cycle_at: Option<SqlTime>,
    /// When the daemon wrote this row.
    pub updated_at: SqlTime,
}

impl ModemStatus {
    /// How long ago the daemon wrote this row; `Duration::MAX` when the time cannot be read
    /// or lies in the future, so a reader judging staleness treats such a row as stale.
    pub fn age(&self, now: Timestamp) -> Duration {
        self.updated_at
            .timestamp()
            .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
            .unwrap_or(Duration::MAX)
    }
}

/// An event to append to the history.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// When (the caller's clock).
    pub at: Timestamp,
    /// What happened, snake_case (`modem_down`, `sim_deleted`, …).
    pub kind: String,
    /// The message concerned.
    pub message_id: Option<MessageId>,
    /// The modem concerned.
    pub modem_id: Option<ModemId>,
    /// Anything else, as JSON.
    pub detail: Option<serde_json::Value>,
}

/// An event from the history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Its row id (events are append-only, so ids order them).
    pub id: i64,
    /// When.
    pub at: SqlTime,
    /// What happened.
    pub kind: String,
    /// The message concerned.
    pub message_id: Option<MessageId>,
    /// The modem concerned.
    pub modem_id: Option<ModemId>,
    /// Details (JSON; text that is not JSON comes back as a JSON string).
    pub detail: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

/// How many messages have one direction and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Total {
    /// The direction.
    pub direction: Direction,
    /// The status.
    pub status: Status,
    /// How many rows.
    pub count: u64,
}

/// Filters for [`crate::Store::list`]; all optional, combined with AND.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this number (compared after [`crate::normalize_number`]).
    pub number: Option<String>,
    /// Only this modem.
    pub modem_id: Option<ModemId>,
    /// `timestamp` at or after.
    pub since: Option<Timestamp>,
    /// `timestamp` before.
    pub until: Option<Timestamp>,
    /// Content contains this text (case-insensitive for ASCII).
    pub text_contains: Option<String>,
    /// Only ids below this one (paging: pass the last id seen).
    pub before_id: Option<MessageId>,
    /// At most this many rows, newest id first (0 means 100).
    pub limit: usize,
}

/// A `messages` row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `id`.
    pub id: MessageId,
    /// `phone_number`: sender (inbound) or recipient (outbound).
    pub phone_number: String,
    /// `content`.
    pub content: String,
    /// `timestamp`.
    pub timestamp: SqlTime,
    /// `status`.
    pub status: Status,
    /// `direction`.
    pub direction: Direction,
    /// `modem_index`: the SIM slot while the copy is on the SIM.
    pub modem_index: Option<i64>,
    /// `created_at`.
    pub created_at: SqlTime,
    /// `updated_at`.
    pub updated_at: SqlTime,
    /// `modem_id`.
    pub modem_id: Option<ModemId>,
    /// `sending_modem`: the modem of the current/last outbound attempt.
    pub sending_modem: Option<ModemId>,
    /// `sim_storage`.
    pub sim_storage: Option<String>,
    /// `smsc_timestamp` (RFC 3339 as sent).
    pub smsc_timestamp: Option<String>,
    /// `encoding`.
    pub encoding: Option<String>,
    /// `fingerprint`.
    pub fingerprint: Option<Fingerprint>,
    /// `parts_total`.
    pub parts_total: i64,
    /// `parts_received`.
    pub parts_received: i64,
    /// `incomplete`.
    pub incomplete: bool,
    /// `reason`.
    pub reason: Option<String>,
    /// `attempts`.
    pub attempts: i64,
    /// `next_attempt_at`.
    pub next_attempt_at: Option<SqlTime>,
    /// `send_at`.
    pub send_at: Option<SqlTime>,
    /// `allow_duplicate`.
    pub allow_duplicate: bool,
    /// `source`.
    pub source: String,
    /// `status_report`.
    pub status_report: Option<bool>,
    /// `raw_pdu`.
    pub raw_pdu: Option<String>,
    /// `message_class`.
    pub message_class: Option<i64>,
    /// `sent_at`.
    pub sent_at: Option<SqlTime>,
    /// `delivered_at`.
    pub delivered_at: Option<SqlTime>,
    /// `priority`: higher goes first.
    pub priority: i64,
    /// `expires_at`.
    pub expires_at: Option<SqlTime>,
    /// `transactional`: sent to blocked numbers and in quiet hours.
    pub transactional: bool,
    /// `held_by`: the limit (or quiet hours, or the modem) that holds a queued row back.
    pub held_by: Option<String>,
}

/// A `message_parts` row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Part {
    /// Row id.
    pub id: i64,
    /// The message, once assembled.
    pub message_id: Option<MessageId>,
    /// Direction.
    pub direction: Direction,
    /// 1-based part number.
    pub seq: i64,
    /// Parts in the message.
    pub total: i64,
    /// Concatenation reference.
    pub concat_ref: Option<i64>,
    /// The SIM memory (inbound).
    pub sim_storage: Option<String>,
    /// The SIM slot, until deleted there (inbound).
    pub sim_slot: Option<i64>,
    /// The modem.
    pub modem_id: Option<ModemId>,
    /// The part's text.
    pub text: String,
    /// The PDU, hex.
    pub pdu: Option<String>,
    /// Outbound: pending, sending, sent, delivered, failed, unknown.
    pub state: Option<String>,
    /// Outbound: TP-MR.
    pub message_ref: Option<i64>,
    /// Outbound: when the network accepted it.
    pub sent_at: Option<SqlTime>,
    /// Outbound: TP-ST of the last report.
    pub report_status: Option<i64>,
    /// Why it failed or is unknown.
    pub reason: Option<String>,
}

/// A `delivery_reports` row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Row id.
    pub id: i64,
    /// When it was received.
    pub received_at: SqlTime,
    /// The modem.
    pub modem_id: ModemId,
    /// TP-MR.
    pub message_ref: i64,
    /// TP-RA.
    pub recipient: String,
    /// TP-ST.
    pub status_code: i64,
    /// `delivered`, `pending`, `failed`.
    pub category: String,
    /// TP-DT.
    pub discharge_time: Option<String>,
    /// The matched part's number.
    pub part_seq: Option<i64>,
}

/// A message with everything known about it (CLI `show`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageDetail {
    /// The row.
    pub message: Message,
    /// Its parts, by number.
    pub parts: Vec<Part>,
    /// Its status reports, oldest first.
    pub reports: Vec<DeliveryReport>,
    /// Its events, oldest first.
    pub history: Vec<Event>,
}
