//! [`Store`]: the async handle the gateway and the CLI hold, and [`ChangeWatcher`].
//!
//! Every method is one transaction on the backend, run off the async runtime
//! (`spawn_blocking` for SQLite), so awaiting a store call never blocks the modem tasks and no
//! transaction can outlive the call. See the crate docs for why this is a concrete type over a
//! backend enum rather than a trait.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::model::{
    ClaimRequest, Claimed, DeletePolicy, Event, InboundPart, InboundSms, ListFilter, Message,
    MessageDetail, ModemStatus, NewEvent, NewOutbound, PartSending, Recovered, ReportOutcome,
    Retry, SimCopy, StatusReportIn, Stored, StoredPart, Total, UndecodablePdu,
};
use crate::postgres::{self, Postgres};
use crate::sqlite::{self, Sqlite};
use crate::types::{MessageId, ModemId, Status};

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How long a write waits for another process's write lock before failing with
    /// [`StoreError::Busy`]. External writers should use the same (DESIGN.md promise 4).
    pub busy_timeout: Duration,
    /// How long after an incomplete message was stored a late part may still complete it.
    /// Concatenation references wrap (8-bit ones after 256 messages), so a part much later
    /// than its group's flush more likely belongs to a new message with a reused reference.
    pub late_part_window: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            late_part_window: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a WAL checkpoint did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// false when a reader (another process) kept part of the WAL from being copied back.
    pub complete: bool,
    /// Frames in the WAL before.
    pub wal_frames: i64,
    /// Frames copied into the database.
    pub checkpointed_frames: i64,
}

/// The backends; nothing outside this crate knows which one it has.
enum Backend {
    Sqlite(Sqlite),
    /// Several nodes on one database (issue 9, preview: see the crate docs for what is ported).
    Postgres(Postgres),
}

/// The message store: cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.backend {
            Backend::Sqlite(db) => f.debug_struct("Store").field("sqlite", &db.path()).finish(),
            Backend::Postgres(db) => f
                .debug_struct("Store")
                .field("postgres", &db.target())
                .finish(),
        }
    }
}

impl Store {
    /// Opens (creating and migrating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(
        path: impl Into<PathBuf>,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let path = path.into();
        let db = tokio::task::spawn_blocking(move || Sqlite::open(&path, &options))
            .await
            .map_err(|e| joined("opening the database", e))??;
        Ok(Self {
            backend: Arc::new(Backend::Sqlite(db)),
        })
    }

    /// Opens `database.url`: `sqlite:///abs/path.db`, `sqlite://relative.db`, or a plain path.
    /// `postgres://user:password@host:port/database` (or `postgresql://`) opens PostgreSQL
    /// (preview; see the crate docs for what is ported).
    pub async fn open_url(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(StoreError::UnsupportedUrl {
                    url: url.to_owned(),
                    detail: "the URL names no file",
                });
            }
            return Self::open_sqlite(path, options).await;
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let db = Postgres::open(url, &options).await?;
            return Ok(Self {
                backend: Arc::new(Backend::Postgres(db)),
            });
        }
        if url.contains("://") {
            return Err(StoreError::UnsupportedUrl {
                url: url.to_owned(),
                detail: "unknown scheme",
            });
        }
        Self::open_sqlite(url, options).await
    }

    /// Whether this store is on PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        self.postgres().is_some()
    }

    /// The SQLite file, for messages.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &*self.backend {
            Backend::Sqlite(db) => Some(db.path()),
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL backend, for the `impl Store` blocks in other modules (`crate::stats`,
    /// `crate::alerts`, `crate::maintenance`, `crate::toolbox`): each runs its native async
    /// port on it, and [`Store::run`] only on SQLite.
    pub(crate) fn postgres(&self) -> Option<&Postgres> {
        match &*self.backend {
            Backend::Postgres(db) => Some(db),
            Backend::Sqlite(_) => None,
        }
    }

    /// Runs `f` against the SQLite backend on the blocking pool (also used by the `impl Store`
    /// blocks in `crate::stats`, `crate::alerts` and `crate::maintenance`). Every operation
    /// dispatches PostgreSQL before it gets here; one that did not would get
    /// [`StoreError::NotOnPostgres`], never a panic.
    pub(crate) async fn run<T, F>(&self, doing: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Sqlite) -> Result<T, StoreError> + Send + 'static,
    {
        if let Backend::Postgres(_) = &*self.backend {
            return Err(StoreError::NotOnPostgres { operation: doing });
        }
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || match &*backend {
            Backend::Sqlite(db) => f(db),
            Backend::Postgres(_) => Err(StoreError::NotOnPostgres { operation: doing }),
        })
        .await
        .map_err(|e| joined(doing, e))?
    }

    // --- inbound -------------------------------------------------------------------------

    /// Stores a single-part inbound SMS. A fingerprint stored before returns the existing row
    /// with `newly_created: false` (promise 2). Committed when this returns (promise 1).
    pub async fn store_inbound_single(&self, sms: InboundSms) -> Result<Stored, StoreError> {
        const DOING: &str = "storing an inbound message";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::inbound::store_single(&tx, &sms));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::inbound::store_single(c, &sms))
        })
        .await
    }

    /// Stores one part of a long inbound message, reassembling it in the database (so it
    /// survives restarts) once every part is there; a late part completes the row its group
    /// was flushed into.
    pub async fn store_inbound_part(&self, part: InboundPart) -> Result<StoredPart, StoreError> {
        const DOING: &str = "storing a message part";
        if let Backend::Postgres(pg) = &*self.backend {
            let window = pg.late_part_window;
            return postgres::in_tx!(pg, DOING, |tx| postgres::inbound::store_part(
                &tx, &part, window
            ));
        }
        self.run(DOING, move |db| {
            let window = db.late_part_window;
            db.write(DOING, |c| sqlite::inbound::store_part(c, &part, window))
        })
        .await
    }

    /// Stores a PDU that could not be decoded, raw, with the reason: an `unread` row with empty
    /// content, so it is seen, deleted from the SIM like any other, and never re-read forever.
    pub async fn store_undecodable(&self, pdu: UndecodablePdu) -> Result<Stored, StoreError> {
        const DOING: &str = "storing an undecodable PDU";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::inbound::store_undecodable(
                &tx, &pdu
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::inbound::store_undecodable(c, &pdu))
        })
        .await
    }

    /// Stores every multipart group whose first part arrived at or before `older_than` as one
    /// message flagged `incomplete` (missing parts shown as `[…]`, `reason` naming them).
    /// `now` is the rows' `created_at`.
    pub async fn flush_incomplete(
        &self,
        older_than: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<MessageId>, StoreError> {
        const DOING: &str = "storing incomplete messages";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::inbound::flush_incomplete(
                &tx, older_than, now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::inbound::flush_incomplete(c, older_than, now)
            })
        })
        .await
    }

    // --- SIM lifecycle ---------------------------------------------------------------------

    /// SIM copies on `modem` that may be deleted now under `policy`: under `OnStore` every copy
    /// whose row is committed (also parts still waiting for their group: they are safe in
    /// `message_parts`); under `OnRead` the parts of messages no longer `unread`. Stored status
    /// reports are always due. The gateway re-reads each slot and compares the fingerprint
    /// before deleting it.
    pub async fn sim_deletions_due(
        &self,
        modem: ModemId,
        policy: DeletePolicy,
    ) -> Result<Vec<SimCopy>, StoreError> {
        const DOING: &str = "listing SIM copies due for deletion";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::inbound::sim_deletions_due(
                &tx, &modem, policy
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| {
                sqlite::inbound::sim_deletions_due(c, &modem, policy)
            })
        })
        .await
    }

    /// Up to `n` committed copies on `modem` to free when the SIM fills up (the capacity
    /// guard): stored status reports first, then messages oldest first, read or not.
    pub async fn oldest_sim_copies(
        &self,
        modem: ModemId,
        n: usize,
    ) -> Result<Vec<SimCopy>, StoreError> {
        const DOING: &str = "listing the oldest SIM copies";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::inbound::oldest_sim_copies(
                &tx, &modem, n
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::inbound::oldest_sim_copies(c, &modem, n))
        })
        .await
    }

    /// Records that a SIM copy was deleted on the SIM: clears the part's slot, and the
    /// message's `modem_index` once none of its parts is left on the SIM. Returns false when
    /// nothing matched (already recorded).
    pub async fn sim_copy_deleted(
        &self,
        modem: ModemId,
        storage: String,
        slot: u32,
        fingerprint: Fingerprint,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const DOING: &str = "recording a SIM deletion";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::inbound::sim_copy_deleted(
                &tx,
                &modem,
                &storage,
                slot,
                &fingerprint,
                now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::inbound::sim_copy_deleted(c, &modem, &storage, slot, &fingerprint, now)
            })
        })
        .await
    }

    // --- outbound --------------------------------------------------------------------------

    /// Queues a message (CLI `send`, the API). Rows inserted with plain SQL need no call.
    pub async fn queue_outbound(
        &self,
        message: NewOutbound,
        now: Timestamp,
    ) -> Result<MessageId, StoreError> {
        const DOING: &str = "queueing a message";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::queue(
                &tx, &message, now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::outbound::queue(c, &message, now))
        })
        .await
    }

    /// Claims due rows in one transaction: `queued` outbound rows whose `send_at` and
    /// `next_attempt_at` have passed, for ready modems (a row naming a modem waits for that
    /// modem; a row whose earlier parts went out through one modem waits for that one; other
    /// rows are routed by `policy.routing`), up to `limit`, highest priority first, then in id
    /// order. First, rows queued past their expiry become `expired`. Then each row's recipient
    /// is normalised (written back; the original goes to the event log); rows that cannot be
    /// sent as written (no such number, too many parts) become `failed`, rows to a blocked
    /// number `blocked`, duplicates `duplicate` (DESIGN.md "Sending"); rows that quiet hours or
    /// a limit hold back stay `queued` with `held_by`, a reason and `next_attempt_at` at the
    /// moment they may go; the rest become `sending` with `attempts + 1`, committed before this
    /// returns.
    pub async fn claim_due(&self, request: ClaimRequest) -> Result<Claimed, StoreError> {
        const DOING: &str = "claiming queued messages";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::claim(pg, &tx, &request));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::outbound::claim(db, c, &request))
        })
        .await
    }

    /// Records a part as about to be written with AT+CMGS. Call it, and let it commit, before
    /// sending (promise 3). Fails with [`StoreError::WrongStatus`] if the row is no longer
    /// `sending` (someone changed it meanwhile): then do not send.
    pub async fn part_sending(
        &self,
        id: MessageId,
        part: PartSending,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const DOING: &str = "recording a part being sent";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::lease::part_sending(
                pg, &tx, id, &part, now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::outbound::part_sending(c, id, &part, now))
        })
        .await
    }

    /// Records `+CMGS: <mr>` for a part; returns the message's status (`sent` once every part
    /// is, or already `delivered`/`failed` if reports came first).
    pub async fn part_sent(
        &self,
        id: MessageId,
        seq: u8,
        message_ref: u8,
        now: Timestamp,
    ) -> Result<Status, StoreError> {
        const DOING: &str = "recording a sent part";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::part_sent(
                &tx,
                id,
                seq,
                message_ref,
                now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::outbound::part_sent(c, id, seq, message_ref, now)
            })
        })
        .await
    }

    /// Records that the modem refused a part before taking its PDU (`+CMS ERROR` to the
    /// command). `Retry::At` puts the row back to `queued` with `next_attempt_at`, unless
    /// `max_attempts` are used up; `Retry::Never` fails it. `reason` is kept on the row.
    pub async fn part_rejected(
        &self,
        id: MessageId,
        seq: u8,
        reason: String,
        retry: Retry,
        now: Timestamp,
    ) -> Result<Status, StoreError> {
        const DOING: &str = "recording a rejected part";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::part_rejected(
                &tx, id, seq, &reason, retry, now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::outbound::part_rejected(c, id, seq, &reason, retry, now)
            })
        })
        .await
    }

    /// Records that a part's PDU was written but no answer came (timeout, disconnect, reset):
    /// the row becomes `unknown`, never resent by itself (DESIGN.md "Sending").
    pub async fn part_ambiguous(
        &self,
        id: MessageId,
        seq: u8,
        reason: String,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const DOING: &str = "recording an ambiguous send";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::part_ambiguous(
                &tx, id, seq, &reason, now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::outbound::part_ambiguous(c, id, seq, &reason, now)
            })
        })
        .await
    }

    /// At start-up, before claiming: rows a crash left `sending`. A row with a part recorded
    /// as being sent may have left: it becomes `unknown` with a reason saying to use
    /// `requeue` (or goes back to `queued` when `at_least_once`). A row with no part in flight
    /// never reached the modem and goes back to `queued`.
    pub async fn recover_interrupted(
        &self,
        now: Timestamp,
        at_least_once: bool,
    ) -> Result<Recovered, StoreError> {
        const DOING: &str = "recovering interrupted sends";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::recover_interrupted(
                &tx,
                now,
                at_least_once,
                None
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::outbound::recover_interrupted(c, now, at_least_once, None)
            })
        })
        .await
    }

    /// [`recover_interrupted`](Self::recover_interrupted) for the rows sent through `modems`
    /// only (`sending_modem`): what a node runs for the modems it has just acquired the leases
    /// of, since with several nodes on one database the other rows in flight are other live
    /// nodes' sends (issue 9). On takeover, the dead node's sends through the modem become
    /// `unknown` (or queued again) exactly as after a crash.
    pub async fn recover_interrupted_on(
        &self,
        modems: Vec<ModemId>,
        now: Timestamp,
        at_least_once: bool,
    ) -> Result<Recovered, StoreError> {
        const DOING: &str = "recovering interrupted sends";
        let modems: Vec<String> = modems.into_iter().map(|m| m.0).collect();
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::recover_interrupted(
                &tx,
                now,
                at_least_once,
                Some(&modems)
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::outbound::recover_interrupted(c, now, at_least_once, Some(&modems))
            })
        })
        .await
    }

    /// Sends an `unknown`, `failed`, `cancelled` or `duplicate` row again, from scratch
    /// (`allow_duplicate` is set so it is not caught as a duplicate of itself).
    pub async fn requeue(&self, id: MessageId, now: Timestamp) -> Result<(), StoreError> {
        const DOING: &str = "requeueing a message";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::requeue(&tx, id, now));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::outbound::requeue(c, id, now))
        })
        .await
    }

    /// Cancels a `queued` row.
    pub async fn cancel(&self, id: MessageId, now: Timestamp) -> Result<(), StoreError> {
        const DOING: &str = "cancelling a message";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::outbound::cancel(&tx, id, now));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::outbound::cancel(c, id, now))
        })
        .await
    }

    /// Marks `unread` inbound rows `read`; returns those that changed (others were not
    /// inbound, not unread, or do not exist).
    pub async fn mark_read(
        &self,
        ids: Vec<MessageId>,
        now: Timestamp,
    ) -> Result<Vec<MessageId>, StoreError> {
        const DOING: &str = "marking messages read";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::inbound::mark_read(&tx, &ids, now));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::inbound::mark_read(c, &ids, now))
        })
        .await
    }

    // --- status reports --------------------------------------------------------------------

    /// Records a status report and applies it: matched on (modem, TP-MR, recipient) to the
    /// most recent part still waiting for one; the message becomes `delivered` when every part
    /// is, `failed` when any part failed for good. Pending reports are recorded but change
    /// nothing. A report stored on the SIM is recorded once however often it is read.
    pub async fn record_status_report(
        &self,
        report: StatusReportIn,
    ) -> Result<ReportOutcome, StoreError> {
        const DOING: &str = "recording a status report";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::reports::record(&tx, &report));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::reports::record(c, &report))
        })
        .await
    }

    // --- modems and events -----------------------------------------------------------------

    /// Writes a modem's status row (replacing the previous one and its storage figures).
    pub async fn upsert_modem_status(&self, status: ModemStatus) -> Result<(), StoreError> {
        const DOING: &str = "recording modem status";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::query::upsert_modem_status(
                &tx, &status
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::query::upsert_modem_status(c, &status))
        })
        .await
    }

    /// Every modem's last recorded status, by id.
    pub async fn modem_statuses(&self) -> Result<Vec<ModemStatus>, StoreError> {
        const DOING: &str = "reading modem status";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::query::modem_statuses(&tx));
        }
        self.run(DOING, move |db| {
            db.read(DOING, sqlite::query::modem_statuses)
        })
        .await
    }

    /// Appends an event to the history; returns its id.
    pub async fn append_event(&self, event: NewEvent) -> Result<i64, StoreError> {
        const DOING: &str = "recording an event";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::query::append_event(&tx, &event));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::query::append_event(c, &event))
        })
        .await
    }

    /// A message's events, oldest first.
    pub async fn history(&self, id: MessageId) -> Result<Vec<Event>, StoreError> {
        const DOING: &str = "reading a message's history";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::query::history(&tx, id));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::query::history(c, id))
        })
        .await
    }

    /// Up to `limit` events with ids above `after_id`, oldest first (`watch`, webhooks).
    pub async fn events_since(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        const DOING: &str = "reading events";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::query::events_since(
                &tx, after_id, limit
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::query::events_since(c, after_id, limit))
        })
        .await
    }

    // --- queries ---------------------------------------------------------------------------

    /// Message counts by direction and status (CLI `status`).
    pub async fn totals(&self) -> Result<Vec<Total>, StoreError> {
        const DOING: &str = "counting messages";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::query::totals(&tx));
        }
        self.run(DOING, move |db| db.read(DOING, sqlite::query::totals))
            .await
    }

    /// Messages matching `filter`, newest first (CLI `list`).
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<Message>, StoreError> {
        const DOING: &str = "listing messages";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::query::list(&tx, &filter));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::query::list(c, &filter))
        })
        .await
    }

    /// One message with its parts, status reports and history (CLI `show`); None if absent.
    pub async fn message(&self, id: MessageId) -> Result<Option<MessageDetail>, StoreError> {
        const DOING: &str = "reading a message";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::query::message(&tx, id));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::query::message(c, id))
        })
        .await
    }

    // --- change detection and shutdown ------------------------------------------------------

    /// A counter that changes whenever *another* process (or another `Store` on the same file)
    /// commits; the daemon's own writes leave it alone (`PRAGMA data_version` on the writer
    /// connection). On PostgreSQL: the number of other writers' commits to `messages` this
    /// store has been notified of (`LISTEN`, started by the first call, which returns 0), so
    /// it moves on the same commits; [`Store::watch_external_changes`] waits for them instead
    /// of polling.
    pub async fn data_version(&self) -> Result<i64, StoreError> {
        if let Backend::Postgres(pg) = &*self.backend {
            return pg.data_version().await;
        }
        self.run("reading data_version", |db| db.data_version())
            .await
    }

    /// A watcher that tells when external writers have committed, polled every `interval`.
    pub async fn watch_external_changes(
        &self,
        interval: Duration,
    ) -> Result<ChangeWatcher, StoreError> {
        if let Backend::Postgres(pg) = &*self.backend {
            // LISTEN/NOTIFY instead of polling; `interval` does not apply.
            return Ok(ChangeWatcher {
                store: self.clone(),
                interval,
                last: 0,
                listener: Some(postgres::watch::Listener::start(pg).await?),
            });
        }
        let last = self.data_version().await?;
        Ok(ChangeWatcher {
            store: self.clone(),
            interval,
            last,
            listener: None,
        })
    }

    /// Checks that the database takes writes (the `health` check): takes the write lock and
    /// releases it without changing anything.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        if let Backend::Postgres(pg) = &*self.backend {
            return pg.check_writable().await;
        }
        self.run("checking that the database is writable", |db| {
            db.check_writable()
        })
        .await
    }

    /// Copies the WAL back into the database file and truncates it (shutdown, before a backup).
    pub async fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        if let Backend::Postgres(_) = &*self.backend {
            // The server owns its write-ahead log; there is nothing to copy back.
            return Ok(Checkpoint {
                complete: true,
                wal_frames: 0,
                checkpointed_frames: 0,
            });
        }
        self.run("checkpointing", |db| db.checkpoint()).await
    }

    /// Checkpoints for a clean shutdown. Connections close when the last clone is dropped.
    pub async fn close(self) -> Result<Checkpoint, StoreError> {
        self.checkpoint().await
    }

    // --- HTTP API: idempotency and the webhook outbox (crate::api) --------------------------

    /// Queues every message in one transaction (all or none). With a `key` seen before for
    /// the same request, queues nothing and returns the first call's ids; seen for another
    /// request, [`QueueOutcome::KeyConflict`].
    pub async fn queue_outbound_batch(
        &self,
        messages: Vec<NewOutbound>,
        key: Option<crate::api::IdempotencyKey>,
        now: Timestamp,
    ) -> Result<crate::api::QueueOutcome, StoreError> {
        const DOING: &str = "queueing messages";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::queue_batch(
                &tx,
                &messages,
                key.as_ref(),
                now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::api::queue_batch(c, &messages, key.as_ref(), now)
            })
        })
        .await
    }

    /// Deletes the `Idempotency-Key`s recorded before `older_than` (expired); returns how many.
    pub async fn prune_idempotency_keys(&self, older_than: Timestamp) -> Result<usize, StoreError> {
        const DOING: &str = "pruning expired idempotency keys";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::prune_idempotency(
                &tx, older_than
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::api::prune_idempotency(c, older_than))
        })
        .await
    }

    /// The newest event's id, 0 when there is none (where a live stream starts).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        const DOING: &str = "reading the last event id";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::last_event_id(&tx));
        }
        self.run(DOING, move |db| db.read(DOING, sqlite::api::last_event_id))
            .await
    }

    /// How far a webhook endpoint has read the events; None before its first enqueue.
    pub async fn webhook_cursor(&self, endpoint: String) -> Result<Option<i64>, StoreError> {
        const DOING: &str = "reading a webhook cursor";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::webhook_cursor(
                &tx, &endpoint
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::api::webhook_cursor(c, &endpoint))
        })
        .await
    }

    /// Puts deliveries in the outbox (ignoring any already there for the same event) and
    /// moves the endpoint's cursor to `cursor`, in one transaction; returns how many are new.
    pub async fn enqueue_webhooks(
        &self,
        endpoint: String,
        cursor: i64,
        deliveries: Vec<crate::api::NewDelivery>,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        const DOING: &str = "enqueueing webhook deliveries";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::enqueue(
                &tx,
                &endpoint,
                cursor,
                &deliveries,
                now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::api::enqueue(c, &endpoint, cursor, &deliveries, now)
            })
        })
        .await
    }

    /// `endpoint`'s pending deliveries due at `now`, in event order.
    pub async fn webhooks_due(
        &self,
        endpoint: String,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<crate::api::WebhookDelivery>, StoreError> {
        const DOING: &str = "listing due webhook deliveries";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::due(
                &tx, &endpoint, now, limit
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::api::due(c, &endpoint, now, limit))
        })
        .await
    }

    /// Records the result of one delivery attempt.
    pub async fn webhook_attempted(
        &self,
        id: i64,
        result: crate::api::AttemptResult,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const DOING: &str = "recording a webhook attempt";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::attempted(
                &tx, id, &result, now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::api::attempted(c, id, &result, now))
        })
        .await
    }

    /// Outbox rows, newest first (the API's and the CLI's view of attempts).
    pub async fn webhook_deliveries(
        &self,
        filter: crate::api::DeliveryFilter,
    ) -> Result<Vec<crate::api::WebhookDelivery>, StoreError> {
        const DOING: &str = "listing webhook deliveries";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::deliveries(&tx, &filter));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::api::deliveries(c, &filter))
        })
        .await
    }

    /// Messages since `since` per hour (or day), direction and status (dashboard charts).
    pub async fn volume(
        &self,
        since: Timestamp,
        by_day: bool,
    ) -> Result<Vec<crate::api::VolumeBucket>, StoreError> {
        const DOING: &str = "counting messages per hour";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::volume(&tx, since, by_day));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::api::volume(c, since, by_day))
        })
        .await
    }

    /// A latency histogram over every row with both times (metrics); `bounds` in seconds,
    /// ascending.
    pub async fn latency_histogram(
        &self,
        which: crate::api::Latency,
        bounds: Vec<f64>,
    ) -> Result<crate::api::LatencyHistogram, StoreError> {
        const DOING: &str = "measuring latencies";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::latency_histogram(
                &tx, which, &bounds
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::api::latency_histogram(c, which, &bounds))
        })
        .await
    }

    /// Makes an endpoint's pending deliveries due now (its receiver is back), so they do not
    /// wait out their backoff; returns how many moved.
    pub async fn webhooks_due_now(
        &self,
        endpoint: String,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        const DOING: &str = "rescheduling webhook deliveries";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::due_now(&tx, &endpoint, now));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::api::due_now(c, &endpoint, now))
        })
        .await
    }

    // --- sending policy (crate::policy) ------------------------------------------------------

    /// Puts `number` (already normalised) on the block list: outbound rows to it become
    /// `blocked` unless transactional. False when it was already there.
    pub async fn block_number(
        &self,
        number: String,
        source: String,
        reason: Option<String>,
        message_id: Option<MessageId>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const DOING: &str = "blocking a number";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::policy::block(
                &tx,
                &number,
                &source,
                reason.as_deref(),
                message_id,
                now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::policy::block(c, &number, &source, reason.as_deref(), message_id, now)
            })
        })
        .await
    }

    /// Takes `number` off the block list; false when it was not on it.
    pub async fn unblock_number(
        &self,
        number: String,
        source: String,
        message_id: Option<MessageId>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const DOING: &str = "unblocking a number";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::policy::unblock(
                &tx, &number, &source, message_id, now
            ));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                sqlite::policy::unblock(c, &number, &source, message_id, now)
            })
        })
        .await
    }

    /// The block list, newest first.
    pub async fn blocked_numbers(&self) -> Result<Vec<crate::policy::BlockedNumber>, StoreError> {
        const DOING: &str = "reading the block list";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::policy::blocked_numbers(&tx));
        }
        self.run(DOING, move |db| {
            db.read(DOING, sqlite::policy::blocked_numbers)
        })
        .await
    }

    /// Queued rows per hold (`held_by`: a limit, quiet hours, a modem), for metrics.
    pub async fn held_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        const DOING: &str = "counting held messages";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::policy::held_counts(&tx));
        }
        self.run(DOING, move |db| db.read(DOING, sqlite::policy::held_counts))
            .await
    }

    /// How much of each configured limit is used at `now` (`status`).
    pub async fn limit_usage(
        &self,
        limits: std::collections::HashMap<ModemId, crate::policy::Limits>,
        recipient_per_hour: Option<u32>,
        now: Timestamp,
    ) -> Result<Vec<crate::policy::LimitUsage>, StoreError> {
        const DOING: &str = "measuring limit usage";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::policy::limit_usage(
                &tx,
                &limits,
                recipient_per_hour,
                now
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| {
                sqlite::policy::limit_usage(c, &limits, recipient_per_hour, now)
            })
        })
        .await
    }

    /// Outbox rows and attempts per endpoint and state (metrics).
    pub async fn webhook_counts(&self) -> Result<Vec<crate::api::DeliveryCount>, StoreError> {
        const DOING: &str = "counting webhook deliveries";
        if let Backend::Postgres(pg) = &*self.backend {
            return postgres::in_tx!(pg, DOING, |tx| postgres::api::delivery_counts(&tx));
        }
        self.run(DOING, move |db| {
            db.read(DOING, sqlite::api::delivery_counts)
        })
        .await
    }
}

/// Notices commits by external writers (promise 4: rows they insert are picked up within a
/// second) without querying any table: one `PRAGMA data_version` per poll, which reads a
/// counter in shared memory.
#[derive(Debug)]
pub struct ChangeWatcher {
    store: Store,
    interval: Duration,
    last: i64,
    /// PostgreSQL: the `LISTEN` session that replaces polling `data_version`.
    listener: Option<postgres::watch::Listener>,
}

impl ChangeWatcher {
    /// Checks once: true when someone else committed since the last check.
    pub async fn poll(&mut self) -> Result<bool, StoreError> {
        if let Some(listener) = &self.listener {
            return Ok(listener.poll());
        }
        let now = self.store.data_version().await?;
        let changed = now != self.last;
        self.last = now;
        Ok(changed)
    }

    /// Waits until someone else commits, checking every interval (tokio's clock, so tests
    /// with a paused clock control it). Cancel-safe: dropping the future loses nothing.
    /// On PostgreSQL: until a notification from another writer arrives, or at most
    /// `postgres::watch::SAFETY_NET` (the periodic scan).
    pub async fn changed(&mut self) -> Result<(), StoreError> {
        if let Some(listener) = &self.listener {
            listener.changed().await;
            return Ok(());
        }
        loop {
            if self.poll().await? {
                return Ok(());
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

fn joined(doing: &'static str, e: tokio::task::JoinError) -> StoreError {
    StoreError::Internal {
        doing,
        detail: e.to_string(),
    }
}
