//! The supervisor: starts every task of the gateway, owns the shutdown order, and is what
//! [`Gateway`] hands back.
//!
//! Why one owner: STYLE "Graceful shutdown" asks to signal once and wait for everyone, in a
//! fixed order. The supervisor holds every task in one `JoinSet`, so dropping it (an abort, the
//! test's stand-in for `kill -9`) stops them all at once; a graceful shutdown instead runs:
//!
//! 1. the caller cancels the token it passed in (the binary does on SIGTERM/SIGINT);
//! 2. the dispatcher stops claiming rows;
//! 3. each modem worker finishes the operation in flight — a send runs to its `+CMGS` verdict,
//!    never abandoned between the `> ` prompt and the final result, and is committed — writes
//!    its modem's last status row and returns;
//! 4. only then are the modem tasks told to stop (their own token, a child of nothing the
//!    caller holds), and awaited;
//! 5. the database is checkpointed.
//!
//! Rows claimed but not yet started stay `sending` with no part in flight; the next start's
//! [`conductor_store::Store::recover_interrupted`] puts them back in the queue (nothing of
//! theirs reached a modem).
//!
//! # Modems added and removed while running
//! A config reload (SIGHUP in the binary) changes the set of modems without a restart, through
//! [`GatewayHandle::add_modem`] and [`GatewayHandle::remove_modem`]. Every modem has its own
//! pair of tokens (its worker's, a child of the gateway's; its driver's, a child of the one
//! step 4 cancels), so one modem can be stopped in the same order as the whole gateway:
//!
//! 1. the dispatcher forgets its lane and acknowledges, so no job can be handed to it after;
//! 2. its worker finishes the operation in flight (a send to its verdict), gives the jobs it
//!    had not started back to the queue, writes its last status row and returns;
//! 3. its driver task finishes the AT command in flight and closes the port.
//!
//! Rows that name the removed modem stay `queued` (claiming only picks modems that are up),
//! exactly as when the modem is unplugged; they go out if it is added again.
//!
//! # Liveness
//! The dispatcher refreshes a heartbeat on every turn of its loop, which turns at least every
//! `outbound.poll_interval` when idle. [`GatewayHandle::is_live`] reads it: a service
//! manager's watchdog is fed only while it is fresh, so a gateway wedged on a stuck database
//! call is restarted rather than left silently claiming nothing.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conductor_modem::transport::Connect;
use conductor_modem::{Modem, ModemState, OpenError, Phase, spawn, spawn_with};
use conductor_store::{MessageId, ModemId, NewOutbound, Store, StoreError};
use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::clock::Clock;
use crate::config::{Delivery, GatewayConfig, ModemSettings};
use crate::error::GatewayError;
use crate::lease::{LeaseEvent, LeaseStanding};
use crate::outbound::Dispatcher;
use crate::worker::ModemWorker;

/// What every task of one gateway shares.
pub(crate) struct Context {
    pub config: GatewayConfig,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Wakes the dispatcher: new rows, room on a modem, a modem ready, a retry scheduled.
    pub dispatch: Arc<Notify>,
    /// The earliest retry a worker scheduled, so the dispatcher wakes for it.
    pub retry_at: Mutex<Option<Timestamp>>,
    /// The caller's token: stop claiming, stop reading.
    pub shutdown: CancellationToken,
    /// The modems served now, in the order they started: the change poll rings their
    /// lifecycles, and [`GatewayHandle::modems`] reports their states. The supervisor alone
    /// adds and removes entries.
    pub lanes: Mutex<Vec<Arc<Lane>>>,
    /// Refreshed by the dispatcher on every turn of its loop (see the module doc).
    pub heartbeat: Heartbeat,
    /// CMS/CME errors and reconnects, for `/metrics` ([`GatewayHandle::counters`]).
    pub counters: crate::counters::Counters,
    /// On a shared database: where each configured modem's lease stands, written by its
    /// keeper (module `lease`), read by [`GatewayHandle::lease_standings`]. Empty on SQLite.
    pub standings: Mutex<HashMap<String, LeaseStanding>>,
}

impl Context {
    /// Remembers that a row becomes due at `at` and wakes the dispatcher to plan for it.
    pub fn note_retry(&self, at: Timestamp) {
        if let Ok(mut earliest) = self.retry_at.lock() {
            *earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        self.dispatch.notify_one();
    }

    /// The lanes served now (a copy: the lock is never held across an await).
    pub(crate) fn lanes(&self) -> Vec<Arc<Lane>> {
        match self.lanes.lock() {
            Ok(lanes) => lanes.clone(),
            // Only pushes and removals happen under this lock; the list is whole either way.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn edit_lanes(&self, edit: impl FnOnce(&mut Vec<Arc<Lane>>)) {
        match self.lanes.lock() {
            Ok(mut lanes) => edit(&mut lanes),
            Err(poisoned) => edit(&mut poisoned.into_inner()),
        }
    }
}

/// When the dispatcher's loop last turned, on tokio's clock (so paused-time tests agree with
/// the timers the loop sleeps on).
pub(crate) struct Heartbeat {
    origin: Instant,
    /// Milliseconds from `origin` to the last beat.
    last: AtomicU64,
}

impl Heartbeat {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// The loop is turning.
    pub fn beat(&self) {
        let millis = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(millis, Ordering::Relaxed);
    }

    /// How long ago the last beat was.
    fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

/// What the dispatcher knows about one modem; the worker holds the same `Arc`.
pub(crate) struct Lane {
    pub id: ModemId,
    /// Jobs handed to the worker and not finished yet (the dispatcher keeps a few per modem
    /// so sends go back to back without claiming far ahead).
    pub in_flight: AtomicUsize,
    /// The modem task's state: the dispatcher claims only for modems that can send.
    pub state: watch::Receiver<ModemState>,
    /// The worker's job queue.
    pub jobs: mpsc::UnboundedSender<conductor_store::OutboundJob>,
    /// Minimum time between two messages (the rate limit), if any.
    pub spacing: Option<Duration>,
    /// The modem's sending limits (`rate_limit_per_minute` counts as `per_minute`), applied
    /// by the claim (crate::policy).
    pub limits: conductor_store::policy::Limits,
    /// Rung when rows changed (external `UPDATE … SET status='read'`, a flush): the worker's
    /// SIM deletions may be due.
    pub lifecycle: Arc<Notify>,
    /// Stops this modem's worker alone (the modem was removed); a child of the gateway's
    /// token, so a shutdown stops it too.
    pub stop: CancellationToken,
    /// The driver's handle, for requests from outside the worker (USSD through the API).
    pub handle: conductor_modem::ModemHandle,
}

/// A change to the modems the dispatcher claims for, sent by the supervisor.
pub(crate) enum LaneChange {
    /// Claim for this modem from now on.
    Add(Arc<Lane>),
    /// Stop claiming for this modem; the sender is answered once no job can reach it any more.
    Remove(ModemId, oneshot::Sender<()>),
}

/// Per-modem transports for tests and the demo: a modem listed here is opened with its
/// connector (an in-memory pipe to the simulator, say); the others open their configured
/// device (`ModemConfig::device`).
#[derive(Default)]
pub struct Connectors {
    map: HashMap<String, Box<dyn Connect>>,
}

impl Connectors {
    /// No custom transports: every modem opens its device.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens modem `id` with `connector` (builder style).
    pub fn with(mut self, id: impl Into<String>, connector: impl Connect) -> Self {
        self.insert(id, connector);
        self
    }

    /// Opens modem `id` with `connector`.
    pub fn insert(&mut self, id: impl Into<String>, connector: impl Connect) {
        self.map.insert(id.into(), Box::new(connector));
    }
}

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

/// A boxed connector, handed to the driver (which wants a `Connect` by value).
struct BoxedConnector(Box<dyn Connect>);

impl Connect for BoxedConnector {
    fn connect(
        &mut self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<
                        conductor_modem::transport::BoxedIo,
                        conductor_modem::OpenError,
                    >,
                > + Send
                + '_,
        >,
    > {
        self.0.connect()
    }
}

/// One modem the gateway serves, as its driver task last published it.
#[derive(Clone, Debug)]
pub struct ModemSnapshot {
    /// The modem's id (`modems[].id`).
    pub id: String,
    /// The driver's published state (phase, last error, identity, signal, …).
    pub state: ModemState,
}

impl ModemSnapshot {
    /// Whether the driver's first attempt to open and initialise the modem has finished,
    /// whichever way it went: ready, or failed and now retrying with backoff.
    ///
    /// Why not "ready": a service manager waits for readiness before starting what depends on
    /// the daemon, and an unplugged modem must not hold the whole gateway (and the other
    /// modems' traffic) back forever. The driver sets `last_error` when an attempt fails and
    /// clears it only once ready; an outage after readiness counts in `outages`; so the answer
    /// needs no history.
    pub fn first_attempt_done(&self) -> bool {
        matches!(
            self.state.phase,
            Phase::Ready | Phase::Disconnected | Phase::Stopped
        ) || self.state.last_error.is_some()
            || self.state.outages > 0
    }
}

/// A request to the supervisor, from a [`GatewayHandle`].
enum Command {
    Add {
        // Boxed: a modem's settings are large beside a removal's id.
        settings: Box<ModemSettings>,
        connector: Option<Box<dyn Connect>>,
        reply: oneshot::Sender<Result<(), GatewayError>>,
    },
    Remove {
        id: String,
        reply: oneshot::Sender<Result<(), GatewayError>>,
    },
}

/// A cheap handle on a running gateway: queue messages so the dispatcher wakes at once, see
/// its modems and its liveness, add and remove modems.
#[derive(Clone)]
pub struct GatewayHandle {
    context: Arc<Context>,
    commands: mpsc::UnboundedSender<Command>,
}

impl fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayHandle").finish_non_exhaustive()
    }
}

impl GatewayHandle {
    /// Queues a message (committed when this returns) and wakes the dispatcher, so it goes out
    /// without waiting for the change poll.
    pub async fn queue(&self, message: NewOutbound) -> Result<MessageId, StoreError> {
        let id = self
            .context
            .store
            .queue_outbound(message, self.context.clock.now())
            .await?;
        self.context.dispatch.notify_one();
        Ok(id)
    }

    /// Wakes the dispatcher (after writing rows some other way).
    pub fn wake(&self) {
        self.context.dispatch.notify_one();
    }

    /// CMS/CME errors by modem and code, and reconnects, since the gateway started.
    pub fn counters(&self) -> crate::counters::CounterSnapshot {
        self.context.counters.snapshot()
    }

    /// The modems served now, in the order they started.
    pub fn modems(&self) -> Vec<ModemSnapshot> {
        self.context
            .lanes()
            .iter()
            .map(|lane| ModemSnapshot {
                id: lane.id.0.clone(),
                state: lane.state.borrow().clone(),
            })
            .collect()
    }

    /// On a shared database (PostgreSQL): where each configured modem's lease stands, by
    /// modem id — whether this node holds it, stands by for another node, or cannot reach the
    /// database. Empty on SQLite, where every modem is simply served.
    pub fn lease_standings(&self) -> Vec<(String, LeaseStanding)> {
        let mut standings: Vec<(String, LeaseStanding)> = match self.context.standings.lock() {
            Ok(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(poisoned) => poisoned
                .into_inner()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        standings.sort_by(|a, b| a.0.cmp(&b.0));
        standings
    }

    /// The driver handle of a served modem.
    pub(crate) fn modem_handle(&self, id: &str) -> Option<conductor_modem::ModemHandle> {
        self.context
            .lanes()
            .iter()
            .find(|lane| lane.id.0 == id)
            .map(|lane| lane.handle.clone())
    }

    /// How long ago the dispatcher's loop last turned.
    pub fn heartbeat_age(&self) -> Duration {
        self.context.heartbeat.age()
    }

    /// The longest [`heartbeat_age`](Self::heartbeat_age) of a healthy gateway: three idle
    /// turns of the dispatcher (`outbound.poll_interval` each), and never under 15 s so a
    /// claim that waits out SQLite's busy timeout is not taken for a hang.
    pub fn stall_limit(&self) -> Duration {
        (self.context.config.outbound.poll_interval * 3).max(Duration::from_secs(15))
    }

    /// Whether the gateway's loop is healthy: it has not stopped (or begun to) and its
    /// heartbeat is fresher than [`stall_limit`](Self::stall_limit). What feeds a watchdog.
    pub fn is_live(&self) -> bool {
        !self.context.shutdown.is_cancelled() && self.heartbeat_age() <= self.stall_limit()
    }

    /// Starts serving one more modem, which opens its configured device. Returns once its
    /// tasks run (not once it is ready: see [`modems`](Self::modems)).
    pub async fn add_modem(&self, settings: ModemSettings) -> Result<(), GatewayError> {
        self.request(|reply| Command::Add {
            settings: Box::new(settings),
            connector: None,
            reply,
        })
        .await
    }

    /// [`add_modem`](Self::add_modem) with a custom transport (tests, the demo).
    pub async fn add_modem_with(
        &self,
        settings: ModemSettings,
        connector: impl Connect,
    ) -> Result<(), GatewayError> {
        self.request(|reply| Command::Add {
            settings: Box::new(settings),
            connector: Some(Box::new(connector)),
            reply,
        })
        .await
    }

    /// Stops serving modem `id`, in the order of a graceful shutdown (see the module doc):
    /// returns once its worker has finished the operation in flight and its port is closed.
    pub async fn remove_modem(&self, id: &str) -> Result<(), GatewayError> {
        let id = id.to_owned();
        self.request(|reply| Command::Remove { id, reply }).await
    }

    async fn request(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), GatewayError>>) -> Command,
    ) -> Result<(), GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.unwrap_or(Err(GatewayError::Stopped))
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    handle: GatewayHandle,
    task: JoinHandle<Result<(), GatewayError>>,
}

impl Gateway {
    /// Runs the gateway until `shutdown` is cancelled, then shuts down gracefully (see the
    /// module doc). Every modem opens its configured device.
    pub async fn run(
        config: GatewayConfig,
        store: Store,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> Result<(), GatewayError> {
        Self::start(config, store, clock, Connectors::new(), shutdown)
            .await?
            .join()
            .await
    }

    /// Checks the config, recovers what a crash left in flight, starts every task and
    /// returns. Modems named in `connectors` use those transports.
    pub async fn start(
        config: GatewayConfig,
        store: Store,
        clock: Arc<dyn Clock>,
        mut connectors: Connectors,
        shutdown: CancellationToken,
    ) -> Result<Gateway, GatewayError> {
        validate(&config)?;
        // On a shared database (PostgreSQL) each modem is recovered when its lease is acquired
        // (module `lease`): other nodes' sends in flight are theirs.
        let leased = store.needs_leases();
        // Refuse to start as a node id another running process already is (see
        // `Store::lock_node`); held for the supervisor's lifetime.
        let node_lock = if leased {
            Some(
                store
                    .lock_node(&config.cluster.node)
                    .await
                    .map_err(GatewayError::store(
                        "starting as a node on the shared database",
                    ))?,
            )
        } else {
            None
        };
        if leased {
            store.fence_node(&config.cluster.node);
        } else {
            recover(&config, &store, clock.as_ref()).await?;
        }

        let context = Arc::new(Context {
            config,
            store,
            clock,
            dispatch: Arc::new(Notify::new()),
            retry_at: Mutex::new(None),
            // A child: a failing task stops the gateway without cancelling the caller's token.
            shutdown: shutdown.child_token(),
            lanes: Mutex::new(Vec::new()),
            heartbeat: Heartbeat::new(),
            counters: crate::counters::Counters::default(),
            standings: Mutex::new(HashMap::new()),
        });
        let (lane_changes, lane_changes_rx) = mpsc::unbounded_channel();
        let (lease_events, lease_events_rx) = mpsc::unbounded_channel();
        let mut supervisor = Supervisor {
            context: Arc::clone(&context),
            tasks: JoinSet::new(),
            modem_shutdown: CancellationToken::new(),
            modems: HashMap::new(),
            lane_changes,
            leases: leased.then(|| Leases {
                events: lease_events,
                keepers: HashMap::new(),
                settings: HashMap::new(),
                connectors: HashMap::new(),
                held: std::collections::HashSet::new(),
            }),
            _node_lock: node_lock,
        };
        for (index, settings) in context.config.modems.iter().enumerate() {
            let connector = connectors.map.remove(&settings.id);
            if supervisor.leases.is_some() {
                supervisor.keep_lease(settings.clone(), connector);
                continue;
            }
            supervisor
                .start_modem(settings.clone(), connector)
                .map_err(|source| GatewayError::Device {
                    index,
                    id: settings.id.clone(),
                    source,
                })?;
        }
        // The dispatcher learns the lanes from `LaneChange::Add`, already queued above.
        let dispatcher = Dispatcher::new(Arc::clone(&context), lane_changes_rx);
        let tasks = &mut supervisor.tasks;
        tasks.spawn(dispatcher.run().instrument(info_span!("dispatcher")));
        tasks.spawn(watch_external_changes(Arc::clone(&context)));
        tasks.spawn(flush_incomplete(Arc::clone(&context)));

        let (commands, commands_rx) = mpsc::unbounded_channel();
        let handle = GatewayHandle {
            context: Arc::clone(&context),
            commands,
        };
        if leased {
            info!(
                node = %context.config.cluster.node,
                modems = context.config.modems.len(),
                "gateway started as node {}: each modem opens once its lease is held",
                context.config.cluster.node
            );
        } else {
            info!(modems = context.config.modems.len(), "gateway started");
        }
        let task = tokio::spawn(supervisor.run(commands_rx, lease_events_rx));
        Ok(Gateway { handle, task })
    }

    /// A handle for queueing messages, reading liveness and changing the modems.
    pub fn handle(&self) -> GatewayHandle {
        self.handle.clone()
    }

    /// Waits until the gateway has shut down (after the token was cancelled, or a task failed).
    pub async fn join(self) -> Result<(), GatewayError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(GatewayError::TaskFailed {
                task: "supervisor".to_owned(),
                detail: e.to_string(),
            }),
        }
    }

    /// Stops every task at once, with no graceful step: what `kill -9` does to the daemon, for
    /// crash tests. Whatever was committed stays; a send in flight is left `sending` for the
    /// next start's recovery.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A modem driver task, aborted if dropped before it finished: dropping the supervisor (an
/// abort, the crash path) must close every port at once.
struct DriverTask(JoinHandle<()>);

impl Drop for DriverTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One modem the supervisor serves.
struct Served {
    lane: Arc<Lane>,
    /// The driver task's own token (a child of `Supervisor::modem_shutdown`).
    modem_stop: CancellationToken,
    driver: DriverTask,
    /// Answered (or dropped) when the worker's task has returned.
    worker_done: oneshot::Receiver<()>,
    /// Stops the worker where it is (its lease was lost: nothing may reach the modem after).
    worker_abort: tokio::task::AbortHandle,
}

/// The modem leases of a node on a shared database (module `lease`).
struct Leases {
    /// Given to every keeper.
    events: mpsc::UnboundedSender<LeaseEvent>,
    /// Each configured modem's keeper, stopped by its token.
    keepers: HashMap<String, CancellationToken>,
    /// What to start when a lease is acquired.
    settings: HashMap<String, ModemSettings>,
    /// Custom transports not used yet (a modem started again opens its device).
    connectors: HashMap<String, Box<dyn Connect>>,
    /// The modems whose leases this node holds now, released after a graceful stop.
    held: std::collections::HashSet<String>,
}

/// Owns every task of the gateway and the shutdown order (see the module doc).
struct Supervisor {
    context: Arc<Context>,
    tasks: JoinSet<()>,
    /// Cancelled in step 4: the parent of every driver task's token.
    modem_shutdown: CancellationToken,
    modems: HashMap<String, Served>,
    lane_changes: mpsc::UnboundedSender<LaneChange>,
    /// Some on a shared database: modems start only under their leases.
    leases: Option<Leases>,
    /// This process's hold on its node id (shared database), released when the supervisor
    /// ends.
    _node_lock: Option<conductor_store::NodeLock>,
}

impl Supervisor {
    /// Starts the lease keeper of modem `settings` (module `lease`); the modem itself starts
    /// when its lease is acquired.
    fn keep_lease(&mut self, settings: ModemSettings, connector: Option<Box<dyn Connect>>) {
        let Some(leases) = &mut self.leases else {
            return;
        };
        let id = settings.id.clone();
        let stop = self.context.shutdown.child_token();
        leases.keepers.insert(id.clone(), stop.clone());
        if let Some(connector) = connector {
            leases.connectors.insert(id.clone(), connector);
        }
        leases.settings.insert(id.clone(), settings);
        let keeper = crate::lease::keep(
            Arc::clone(&self.context),
            ModemId(id.clone()),
            leases.events.clone(),
            stop,
        );
        self.tasks
            .spawn(keeper.instrument(info_span!("lease", modem = %id)));
    }

    /// A keeper's news: open the modem under its lease, or stop it at once.
    fn on_lease(&mut self, event: LeaseEvent) {
        let Some(leases) = &mut self.leases else {
            return;
        };
        match event {
            LeaseEvent::Acquired(id) => {
                let Some(settings) = leases.settings.get(&id).cloned() else {
                    return;
                };
                leases.held.insert(id.clone());
                let connector = leases.connectors.remove(&id);
                if self.modems.contains_key(&id) {
                    return;
                }
                if let Err(e) = self.start_modem(settings, connector) {
                    error!(error = %e, "modem {id} cannot be opened; its lease is kept and the keeper retries at its next loss");
                }
            }
            LeaseEvent::Lost(id) => {
                leases.held.remove(&id);
                self.drop_modem(&id);
            }
            LeaseEvent::Unusable(id, closed) => {
                leases.held.remove(&id);
                self.drop_modem(&id);
                let _ = closed.send(());
            }
        }
    }

    /// Stops modem `id` at once, with no graceful step (its lease is lost: another node may
    /// drive it any moment). Whatever was in flight stays recorded for the next holder's
    /// recovery.
    fn drop_modem(&mut self, id: &str) {
        let Some(served) = self.modems.remove(id) else {
            return;
        };
        let lane_id = served.lane.id.clone();
        self.context
            .edit_lanes(|lanes| lanes.retain(|lane| lane.id != lane_id));
        let (ack, _) = oneshot::channel();
        let _ = self.lane_changes.send(LaneChange::Remove(lane_id, ack));
        served.lane.stop.cancel();
        served.worker_abort.abort();
        served.modem_stop.cancel();
        // Dropping the driver task aborts it: the port closes now.
        drop(served.driver);
        warn!("modem {id} stopped: its port is closed");
    }

    /// Spawns modem `settings`' driver task and worker, and hands its lane to the dispatcher.
    fn start_modem(
        &mut self,
        settings: ModemSettings,
        connector: Option<Box<dyn Connect>>,
    ) -> Result<(), OpenError> {
        let mut modem_config = settings.modem.clone();
        if modem_config.name.is_empty() {
            modem_config.name.clone_from(&settings.id);
        }
        let modem_stop = self.modem_shutdown.child_token();
        let modem: Modem = match connector {
            Some(connector) => {
                spawn_with(modem_config, BoxedConnector(connector), modem_stop.clone())
            }
            None => spawn(modem_config, modem_stop.clone())?,
        };
        let Modem {
            handle,
            urcs,
            state,
            task,
        } = modem;
        let driver = DriverTask(task);
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let spacing = settings
            .rate_limit_per_minute
            .filter(|&n| n > 0)
            .map(|n| Duration::from_secs(60) / n);
        let lane = Arc::new(Lane {
            id: ModemId(settings.id.clone()),
            in_flight: AtomicUsize::new(0),
            state: state.clone(),
            jobs: jobs_tx,
            spacing,
            limits: crate::policy::modem_limits(&settings),
            lifecycle: Arc::new(Notify::new()),
            stop: self.context.shutdown.child_token(),
            handle: handle.clone(),
        });
        let mut worker = ModemWorker::new(
            Arc::clone(&self.context),
            Arc::clone(&lane),
            handle,
            urcs,
            state,
            jobs_rx,
            Arc::clone(&lane.lifecycle),
        );
        worker.calls_settings = settings.calls.clone();
        worker.balance_settings = settings.balance.clone();
        let (done, worker_done) = oneshot::channel();
        let span = info_span!("gateway", modem = %settings.id);
        let worker_abort = self.tasks.spawn(
            async move {
                worker.run().await;
                let _ = done.send(());
            }
            .instrument(span),
        );
        self.context
            .edit_lanes(|lanes| lanes.push(Arc::clone(&lane)));
        // The dispatcher holds the receiver until it stops; after that nothing is claimed.
        let _ = self.lane_changes.send(LaneChange::Add(Arc::clone(&lane)));
        self.modems.insert(
            settings.id,
            Served {
                lane,
                modem_stop,
                driver,
                worker_done,
                worker_abort,
            },
        );
        Ok(())
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Add {
                settings,
                connector,
                reply,
            } => {
                let _ = reply.send(self.add(*settings, connector));
            }
            Command::Remove { id, reply } => {
                crate::lease::set_standing(&self.context, &id, None);
                let keeper = self.leases.as_mut().and_then(|leases| {
                    leases.settings.remove(&id);
                    leases.held.remove(&id);
                    leases.keepers.remove(&id)
                });
                let release = keeper.map(|stop| {
                    stop.cancel();
                    let store = self.context.store.clone();
                    let node = self.context.config.cluster.node.clone();
                    (store, node)
                });
                let Some(served) = self.modems.remove(&id) else {
                    if let Some((store, node)) = release {
                        // Standing by, never opened: only the lease row (if any) to give up.
                        let modem = ModemId(id.clone());
                        self.tasks.spawn(async move {
                            let _ = store.release_lease(&modem, &node).await;
                        });
                        let _ = reply.send(Ok(()));
                        return;
                    }
                    let _ = reply.send(Err(GatewayError::UnknownModem { id }));
                    return;
                };
                info!("modem {id} removed from the gateway: finishing its operation in flight");
                let lane_id = served.lane.id.clone();
                self.context
                    .edit_lanes(|lanes| lanes.retain(|lane| lane.id != lane_id));
                let retiring = retire(served, self.lane_changes.clone(), reply);
                let modem = ModemId(id.clone());
                self.tasks.spawn(
                    async move {
                        retiring.await;
                        if let Some((store, node)) = release {
                            let _ = store.release_lease(&modem, &node).await;
                        }
                    }
                    .instrument(info_span!("gateway", modem = %id)),
                );
            }
        }
    }

    fn add(
        &mut self,
        settings: ModemSettings,
        connector: Option<Box<dyn Connect>>,
    ) -> Result<(), GatewayError> {
        let id = settings.id.clone();
        let refuse = |reason: &str| GatewayError::AddModem {
            id: id.clone(),
            reason: reason.to_owned(),
        };
        if id.trim().is_empty() {
            return Err(refuse(
                "its id is empty: give every modem a short unique name such as \"sim1\"",
            ));
        }
        if self.modems.contains_key(&id) {
            return Err(refuse(
                "a modem with this id is served already: remove it first or choose another id",
            ));
        }
        if self.leases.is_some() {
            if self
                .leases
                .as_ref()
                .is_some_and(|l| l.keepers.contains_key(&id))
            {
                return Err(refuse(
                    "a modem with this id is served already: remove it first or choose another id",
                ));
            }
            self.keep_lease(settings, connector);
            info!("modem {id} added to the gateway: it opens once its lease is held");
            return Ok(());
        }
        self.start_modem(settings, connector)
            .map_err(|e| refuse(&e.to_string()))?;
        info!("modem {id} added to the gateway");
        Ok(())
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut lease_events: mpsc::UnboundedReceiver<LeaseEvent>,
    ) -> Result<(), GatewayError> {
        let mut failure = None;
        // Steps 2 and 3: every task of ours ends on the caller's token. A task that ends before
        // it (a panic) takes the gateway down so the service manager restarts it. Modems are
        // added and removed meanwhile, until the shutdown begins.
        loop {
            tokio::select! {
                joined = self.tasks.join_next() => match joined {
                    None => break,
                    Some(Ok(())) => {}
                    // A worker stopped at once because its lease was lost.
                    Some(Err(e)) if e.is_cancelled() => {}
                    Some(Err(e)) => {
                        if e.is_panic() {
                            error!(error = %e, "a gateway task panicked; shutting down");
                            failure.get_or_insert(GatewayError::TaskFailed {
                                task: "worker".to_owned(),
                                detail: e.to_string(),
                            });
                        }
                        self.context.shutdown.cancel();
                    }
                },
                Some(command) = commands.recv(), if !self.context.shutdown.is_cancelled() => {
                    self.handle(command);
                }
                Some(event) = lease_events.recv(), if !self.context.shutdown.is_cancelled() => {
                    self.on_lease(event);
                }
            }
        }
        // Step 4: the modem tasks finish the command in flight and close their ports.
        self.modem_shutdown.cancel();
        for (_, mut served) in self.modems.drain() {
            let _ = (&mut served.driver.0).await;
        }
        // Ports closed: give the leases up so a standby takes over without waiting.
        if let Some(leases) = &self.leases {
            let node = &self.context.config.cluster.node;
            for id in &leases.held {
                let modem = ModemId(id.clone());
                match self.context.store.release_lease(&modem, node).await {
                    Ok(()) => info!("node {node} released the lease of modem {id}"),
                    Err(e) => {
                        warn!(error = %e, "could not release the lease of modem {id}; it expires by itself")
                    }
                }
            }
        }
        // Step 5.
        match self.context.store.checkpoint().await {
            Ok(checkpoint) => info!(
                complete = checkpoint.complete,
                frames = checkpoint.checkpointed_frames,
                "database checkpointed; gateway stopped"
            ),
            Err(e) => warn!(error = %e, "could not checkpoint the database at shutdown"),
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Stops one modem in the order of a graceful shutdown (module doc, "Modems added and
/// removed"), then answers the caller.
async fn retire(
    served: Served,
    lane_changes: mpsc::UnboundedSender<LaneChange>,
    reply: oneshot::Sender<Result<(), GatewayError>>,
) {
    let Served {
        lane,
        modem_stop,
        mut driver,
        worker_done,
        ..
    } = served;
    let (ack, acked) = oneshot::channel();
    if lane_changes
        .send(LaneChange::Remove(lane.id.clone(), ack))
        .is_ok()
    {
        // An error means the dispatcher has stopped: it claims nothing any more either.
        let _ = acked.await;
    }
    lane.stop.cancel();
    let _ = worker_done.await;
    modem_stop.cancel();
    let _ = (&mut driver.0).await;
    info!("modem {} stopped: its port is closed", lane.id);
    let _ = reply.send(Ok(()));
}

fn validate(config: &GatewayConfig) -> Result<(), GatewayError> {
    if config.modems.is_empty() {
        return Err(GatewayError::NoModems);
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, modem) in config.modems.iter().enumerate() {
        if modem.id.trim().is_empty() {
            return Err(GatewayError::EmptyModemId { index });
        }
        if let Some(&first) = seen.get(modem.id.as_str()) {
            return Err(GatewayError::DuplicateModemId {
                id: modem.id.clone(),
                first,
                second: index,
            });
        }
        seen.insert(&modem.id, index);
    }
    Ok(())
}

/// Promise 3 at start-up: what a crash left `sending` is resolved before anything is claimed.
async fn recover(
    config: &GatewayConfig,
    store: &Store,
    clock: &dyn Clock,
) -> Result<(), GatewayError> {
    let at_least_once = config.outbound.delivery == Delivery::AtLeastOnce;
    let recovered = store
        .recover_interrupted(clock.now(), at_least_once)
        .await
        .map_err(GatewayError::store("recovering sends a crash interrupted"))?;
    for id in &recovered.unknown {
        warn!(
            id = id.0,
            "message #{id} was interrupted while sending: not resent; `conductor requeue {id}` \
             resends it"
        );
    }
    for id in &recovered.requeued {
        info!(
            id = id.0,
            "message #{id} was interrupted before it was sent: queued again"
        );
    }
    Ok(())
}

/// Promise 4: notices commits by other processes (`PRAGMA data_version`) and wakes the
/// dispatcher (new rows) and every worker (rows marked read: SIM copies due for deletion).
async fn watch_external_changes(context: Arc<Context>) {
    let interval = context.config.change_poll_interval;
    let mut logged = false;
    loop {
        let mut watcher = tokio::select! {
            _ = context.shutdown.cancelled() => return,
            watcher = context.store.watch_external_changes(interval) => match watcher {
                Ok(watcher) => watcher,
                Err(e) => {
                    if !logged {
                        warn!(error = %e, "cannot watch the database for external changes; retrying");
                        logged = true;
                    }
                    tokio::select! {
                        _ = context.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        loop {
            tokio::select! {
                _ = context.shutdown.cancelled() => return,
                changed = watcher.changed() => match changed {
                    Ok(()) => {
                        logged = false;
                        context.dispatch.notify_one();
                        for lane in context.lanes() {
                            lane.lifecycle.notify_one();
                        }
                    }
                    Err(e) => {
                        if !logged {
                            warn!(error = %e, "watching the database for external changes failed; retrying");
                            logged = true;
                        }
                        break;
                    }
                },
            }
        }
        tokio::select! {
            _ = context.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Stores multipart groups whose parts stopped coming as incomplete messages, flagged, never
/// dropped (DESIGN.md "Receiving"). Runs for the whole store, not per modem.
async fn flush_incomplete(context: Arc<Context>) {
    let timeout = context.config.inbound.multipart_timeout;
    let period = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = context.shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = context.clock.now();
        let older_than = crate::clock::sub(now, timeout);
        match context.store.flush_incomplete(older_than, now).await {
            Ok(ids) => {
                for id in ids {
                    warn!(
                        id = id.0,
                        "message #{id} is stored incomplete: some parts did not arrive within \
                         {timeout:?} (a late part still completes it)"
                    );
                }
            }
            Err(e) => warn!(error = %e, "could not store incomplete multipart messages; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modem_ids_must_be_present_and_unique() {
        let mut config = GatewayConfig::default();
        assert!(matches!(validate(&config), Err(GatewayError::NoModems)));
        config.modems = vec![
            ModemSettings::new("a", "/dev/ttyUSB0"),
            ModemSettings::new("a", "/dev/ttyUSB1"),
        ];
        let error = validate(&config).err();
        assert!(
            matches!(
                error,
                Some(GatewayError::DuplicateModemId {
                    first: 0,
                    second: 1,
                    ..
                })
            ),
            "{error:?}"
        );
        config.modems[1].id = " ".into();
        assert!(matches!(
            validate(&config),
            Err(GatewayError::EmptyModemId { index: 1 })
        ));
    }
}
