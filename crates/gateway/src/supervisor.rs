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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conductor_modem::transport::Connect;
use conductor_modem::{Modem, ModemState, spawn, spawn_with};
use conductor_store::{MessageId, ModemId, NewOutbound, Store, StoreError};
use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::clock::Clock;
use crate::config::{Delivery, GatewayConfig};
use crate::error::GatewayError;
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
}

impl Context {
    /// Remembers that a row becomes due at `at` and wakes the dispatcher to plan for it.
    pub fn note_retry(&self, at: Timestamp) {
        if let Ok(mut earliest) = self.retry_at.lock() {
            *earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        self.dispatch.notify_one();
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

/// A cheap handle on a running gateway: queue messages so the dispatcher wakes at once.
#[derive(Clone)]
pub struct GatewayHandle {
    store: Store,
    clock: Arc<dyn Clock>,
    dispatch: Arc<Notify>,
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
        let id = self.store.queue_outbound(message, self.clock.now()).await?;
        self.dispatch.notify_one();
        Ok(id)
    }

    /// Wakes the dispatcher (after writing rows some other way).
    pub fn wake(&self) {
        self.dispatch.notify_one();
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
        recover(&config, &store, clock.as_ref()).await?;

        let context = Arc::new(Context {
            config,
            store: store.clone(),
            clock: Arc::clone(&clock),
            dispatch: Arc::new(Notify::new()),
            retry_at: Mutex::new(None),
            // A child: a failing task stops the gateway without cancelling the caller's token.
            shutdown: shutdown.child_token(),
        });
        let modem_shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut modem_tasks = ModemTasks(Vec::new());
        let mut lanes = Vec::new();
        let mut lifecycles = Vec::new();
        for (index, settings) in context.config.modems.iter().enumerate() {
            let mut modem_config = settings.modem.clone();
            if modem_config.name.is_empty() {
                modem_config.name.clone_from(&settings.id);
            }
            let modem: Modem = match connectors.map.remove(&settings.id) {
                Some(connector) => spawn_with(
                    modem_config,
                    BoxedConnector(connector),
                    modem_shutdown.clone(),
                ),
                None => spawn(modem_config, modem_shutdown.clone()).map_err(|source| {
                    GatewayError::Device {
                        index,
                        id: settings.id.clone(),
                        source,
                    }
                })?,
            };
            let Modem {
                handle,
                urcs,
                state,
                task,
            } = modem;
            modem_tasks.0.push(task);
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
            });
            let lifecycle = Arc::new(Notify::new());
            lifecycles.push(Arc::clone(&lifecycle));
            let worker = ModemWorker::new(
                Arc::clone(&context),
                Arc::clone(&lane),
                handle,
                urcs,
                state,
                jobs_rx,
                lifecycle,
            );
            let span = info_span!("gateway", modem = %settings.id);
            tasks.spawn(worker.run().instrument(span));
            lanes.push(lane);
        }
        let dispatcher = Dispatcher::new(Arc::clone(&context), lanes);
        tasks.spawn(dispatcher.run().instrument(info_span!("dispatcher")));
        tasks.spawn(watch_external_changes(Arc::clone(&context), lifecycles));
        tasks.spawn(flush_incomplete(Arc::clone(&context)));

        let handle = GatewayHandle {
            store,
            clock,
            dispatch: Arc::clone(&context.dispatch),
        };
        info!(modems = context.config.modems.len(), "gateway started");
        let task = tokio::spawn(supervise(context, tasks, modem_tasks, modem_shutdown));
        Ok(Gateway { handle, task })
    }

    /// A handle for queueing messages.
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

/// Modem task handles, aborted if the supervisor is dropped before it awaited them.
struct ModemTasks(Vec<JoinHandle<()>>);

impl Drop for ModemTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
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

async fn supervise(
    context: Arc<Context>,
    mut tasks: JoinSet<()>,
    mut modem_tasks: ModemTasks,
    modem_shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    let mut failure = None;
    // Steps 2 and 3: every task of ours ends on the caller's token. A task that ends before
    // it (a panic) takes the gateway down so the service manager restarts it.
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            if e.is_panic() {
                error!(error = %e, "a gateway task panicked; shutting down");
                failure.get_or_insert(GatewayError::TaskFailed {
                    task: "worker".to_owned(),
                    detail: e.to_string(),
                });
            }
            context.shutdown.cancel();
        }
    }
    // Step 4: the modem tasks finish the command in flight and close their ports.
    modem_shutdown.cancel();
    for task in std::mem::take(&mut modem_tasks.0) {
        let _ = task.await;
    }
    // Step 5.
    match context.store.checkpoint().await {
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

/// Promise 4: notices commits by other processes (`PRAGMA data_version`) and wakes the
/// dispatcher (new rows) and every worker (rows marked read: SIM copies due for deletion).
async fn watch_external_changes(context: Arc<Context>, lifecycles: Vec<Arc<Notify>>) {
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
                        for lifecycle in &lifecycles {
                            lifecycle.notify_one();
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
    use crate::config::ModemSettings;

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
