//! Serving the virtual network: TCP (one client at a time per modem, like ser2net), a pty
//! behind a stable symlink, an in-memory `tokio::io::duplex`, and the control port.
//!
//! Why a separate layer: the network and its modems are sans-IO; this module owns every
//! socket, file descriptor and timer. One [`VirtualNetwork`] sits behind a tokio mutex in a
//! [`Simulator`] handle. Every operation locks it, passes `now` (tokio's clock, so
//! `tokio::time::pause` gives virtual time), and then hands each modem's output bytes to the
//! connections attached to it. A clock task sleeps until the network's next deadline.
//!
//! Unplugging follows the device: a TCP modem drops its connection and closes its listener
//! (new connections are refused) until it is plugged back, then listens again on the same
//! address; a pty modem closes its master and removes its symlink, then comes back on a new
//! pty behind the same path. Output produced while nobody is connected is lost, as on a
//! serial line.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::faults::{Fault, FaultKind};
use crate::network::{
    HeldMessage, ModemId, ModemInfo, NetworkConfig, NetworkError, SimSnapshot, Stats,
    StatusReportSettings, SubmittedMessage, VirtualNetwork,
};
use crate::virtual_modem::ModemOptions;
use crate::{ModemConfig, SimulatorConfig};

/// Chunks of output queued for one connection before further output is dropped (a UART
/// overflow).
const SINK_DEPTH: usize = 1024;

/// Something that stopped the simulator from starting.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A TCP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The pty could not be created.
    #[error("cannot create a pty at {path}: {source}")]
    Pty {
        /// The symlink path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The control port is not on loopback.
    #[error("the control interface must listen on a loopback address, not {0}")]
    ControlNotLoopback(SocketAddr),
    /// A modem name or number that does not exist.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The modem is unplugged.
    #[error("modem {0} is unplugged")]
    Unplugged(String),
    /// Pty serving is not available on this platform.
    #[error("pty serving needs a unix system")]
    PtyUnsupported,
}

/// The current instant on tokio's clock (virtual under `tokio::time::pause`).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

struct Sink {
    id: u64,
    tx: mpsc::Sender<Vec<u8>>,
}

struct State {
    network: VirtualNetwork,
    sinks: Vec<Vec<Sink>>,
    next_sink: u64,
    /// The network's next deadline as the clock task last saw it.
    deadline: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the clock task: the next deadline moved.
    wake: Notify,
    /// Whether each modem is plugged in.
    links: Vec<watch::Sender<bool>>,
}

/// A handle on a running virtual network: the Rust twin of the control interface. Cheap to
/// clone; every method locks the network briefly.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator").finish_non_exhaustive()
    }
}

impl Simulator {
    /// Builds the network `config` describes (no I/O yet; [`spawn`] starts serving).
    pub fn new(config: &SimulatorConfig) -> Self {
        let start = now();
        let epoch_unix = config.epoch_unix.unwrap_or_else(system_unix);
        let mut network = VirtualNetwork::new(
            start,
            NetworkConfig {
                seed: config.seed,
                status_reports: config.status_reports,
                epoch_unix,
                ..NetworkConfig::default()
            },
        );
        for (i, modem) in modem_configs(config).iter().enumerate() {
            let ordinal = u32::try_from(i).unwrap_or(u32::MAX);
            let options = ModemOptions {
                personality: modem.personality.clone(),
                number: modem.number.clone(),
                pin: modem.pin.clone(),
                sim_capacity: modem.sim_capacity,
                me_capacity: None,
                send_latency: config.send_latency,
                seed: config.seed.wrapping_add(u64::from(ordinal)),
                ordinal,
            };
            let id = network.add_modem(start, &format!("modem{i}"), options);
            if i == 0 {
                for fault in &config.faults {
                    let _ = network.apply_fault(start, id, fault);
                }
            }
        }
        let count = network.len();
        let deadline = network.poll_timeout();
        let links = (0..count)
            .map(|i| watch::channel(network.modem(ModemId(i)).is_some_and(|m| m.is_plugged())).0)
            .collect();
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    network,
                    sinks: (0..count).map(|_| Vec::new()).collect(),
                    next_sink: 0,
                    deadline,
                }),
                wake: Notify::new(),
                links,
            }),
        }
    }

    /// Runs `f` on the network at tokio's `now`, then delivers the output it produced.
    pub async fn with<R>(&self, f: impl FnOnce(&mut VirtualNetwork, Instant) -> R) -> R {
        let mut state = self.shared.state.lock().await;
        let result = f(&mut state.network, now());
        self.dispatch(&mut state);
        result
    }

    fn dispatch(&self, state: &mut State) {
        let State {
            network,
            sinks,
            deadline,
            ..
        } = state;
        for (i, sinks) in sinks.iter_mut().enumerate() {
            while let Some(bytes) = network.poll_output(ModemId(i)) {
                sinks.retain(|sink| match sink.tx.try_send(bytes.clone()) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
            }
            let plugged = network.modem(ModemId(i)).is_some_and(|m| m.is_plugged());
            if let Some(link) = self.shared.links.get(i) {
                link.send_if_modified(|p| std::mem::replace(p, plugged) != plugged);
            }
        }
        let next = network.poll_timeout();
        if next != *deadline {
            *deadline = next;
            self.shared.wake.notify_one();
        }
    }

    /// A modem by name ("modem0"), number or position.
    pub async fn modem(&self, key: &str) -> Result<ModemId, NetworkError> {
        self.with(|n, _| n.find(key)).await
    }

    async fn attach(&self, id: ModemId) -> (u64, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(SINK_DEPTH);
        let mut state = self.shared.state.lock().await;
        state.next_sink += 1;
        let sink = state.next_sink;
        if let Some(sinks) = state.sinks.get_mut(id.0) {
            sinks.push(Sink { id: sink, tx });
        }
        (sink, rx)
    }

    async fn detach(&self, id: ModemId, sink: u64) {
        let mut state = self.shared.state.lock().await;
        if let Some(sinks) = state.sinks.get_mut(id.0) {
            sinks.retain(|s| s.id != sink);
        }
    }

    fn link(&self, id: ModemId) -> Option<watch::Receiver<bool>> {
        self.shared.links.get(id.0).map(watch::Sender::subscribe)
    }

    /// Opens an in-memory connection to a modem, as if opening its serial port; it closes
    /// when the modem is unplugged. Needs the clock task of [`spawn`] for timers to fire.
    pub async fn connect(&self, key: &str) -> Result<DuplexStream, SimError> {
        let id = self.modem(key).await?;
        let link = self
            .link(id)
            .ok_or_else(|| SimError::Unplugged(key.to_owned()))?;
        let plugged_now = *link.borrow();
        if !plugged_now {
            return Err(SimError::Unplugged(key.to_owned()));
        }
        let (client, server) = tokio::io::duplex(64 * 1024);
        let simulator = self.clone();
        tokio::spawn(async move {
            let (_never, shutdown) = watch::channel(false);
            serve_stream(simulator, id, server, shutdown).await;
        });
        Ok(client)
    }

    // ---- the control operations, typed ------------------------------------------------

    /// The modems.
    pub async fn modems(&self) -> Vec<ModemInfo> {
        self.with(|n, _| n.modems()).await
    }

    /// Injects a text from `from` into modem `to` (split and concatenated when long).
    pub async fn inject_text(
        &self,
        to: &str,
        from: &str,
        text: &str,
        flash: bool,
    ) -> Result<Vec<String>, NetworkError> {
        self.with(|n, now| {
            let id = n.find(to)?;
            n.inject_text(now, id, from, text, flash)
        })
        .await
    }

    /// Injects a raw PDU-mode SMS-DELIVER or SMS-STATUS-REPORT into modem `to`.
    pub async fn inject_pdu(&self, to: &str, hex: &str) -> Result<(), NetworkError> {
        self.with(|n, now| {
            let id = n.find(to)?;
            n.inject_pdu(now, id, hex)
        })
        .await
    }

    /// Raw hex into a slot of modem `to`, undecoded (see [`VirtualNetwork::store_raw`]).
    pub async fn store_raw(
        &self,
        to: &str,
        hex: &str,
    ) -> Result<(&'static str, u32), NetworkError> {
        self.with(|n, now| {
            let id = n.find(to)?;
            n.store_raw(now, id, hex)
        })
        .await
    }

    /// Every distinct SUBMIT, with counts.
    pub async fn submitted(&self) -> Vec<SubmittedMessage> {
        self.with(|n, _| n.submitted()).await
    }

    /// SUBMITs to outside numbers.
    pub async fn outside(&self) -> Vec<SubmittedMessage> {
        self.with(|n, _| n.outside()).await
    }

    /// Messages the network holds.
    pub async fn held(&self) -> Vec<HeldMessage> {
        self.with(|n, now| n.held(now)).await
    }

    /// A modem's memories.
    pub async fn sim(&self, key: &str) -> Result<SimSnapshot, NetworkError> {
        self.with(|n, _| n.sim(n.find(key)?)).await
    }

    /// Counters.
    pub async fn stats(&self) -> Stats {
        self.with(|n, _| n.stats()).await
    }

    /// Applies a fault.
    pub async fn fault(&self, key: &str, fault: &Fault) -> Result<(), NetworkError> {
        self.with(|n, now| {
            let id = n.find(key)?;
            n.apply_fault(now, id, fault)
        })
        .await
    }

    /// Clears one lasting fault, or all (`None`).
    pub async fn clear_fault(
        &self,
        key: &str,
        kind: Option<FaultKind>,
    ) -> Result<(), NetworkError> {
        self.with(|n, now| {
            let id = n.find(key)?;
            n.clear_fault(now, id, kind)
        })
        .await
    }

    /// Status report settings.
    pub async fn set_status_reports(&self, settings: StatusReportSettings) {
        self.with(|n, _| n.set_status_reports(settings)).await
    }

    /// The status report settings in force.
    pub async fn status_reports(&self) -> StatusReportSettings {
        self.with(|n, _| n.config().status_reports).await
    }

    /// Waits until `condition` holds on the network or `timeout` passes; `true` if it held.
    /// Tests use it instead of sleeping and hoping.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&VirtualNetwork) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.with(|n, _| condition(n)).await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Where one modem can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModemEndpoint {
    /// "modem0".
    pub name: String,
    /// Its number.
    pub number: String,
    /// Its personality.
    pub personality: &'static str,
    /// The TCP address, with the real port.
    pub tcp: Option<SocketAddr>,
    /// The pty symlink.
    pub pty: Option<PathBuf>,
}

/// Where the simulator listens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Per modem.
    pub modems: Vec<ModemEndpoint>,
    /// The control interface.
    pub control: Option<SocketAddr>,
}

impl fmt::Display for Endpoints {
    /// One line per endpoint: `TCP listening on 127.0.0.1:7001`, `pty: /tmp/…/modem0`,
    /// `control: 127.0.0.1:7002`, each modem introduced by its name, number and personality.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.modems {
            writeln!(f, "{} {} ({})", m.name, m.number, m.personality)?;
            if let Some(tcp) = m.tcp {
                writeln!(f, "TCP listening on {tcp}")?;
            }
            if let Some(pty) = &m.pty {
                writeln!(f, "pty: {}", pty.display())?;
            }
        }
        if let Some(control) = self.control {
            writeln!(f, "control: {control}")?;
        }
        Ok(())
    }
}

/// A simulator that is serving. Dropping it stops the tasks; [`RunningSimulator::shutdown`]
/// also waits for them.
pub struct RunningSimulator {
    /// Where it listens.
    pub endpoints: Endpoints,
    /// The handle to drive and inspect it.
    pub simulator: Simulator,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    pty_dir: Option<(PathBuf, bool)>,
}

impl fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningSimulator")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl RunningSimulator {
    /// Stops serving: connections close, listeners and ptys go away.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.remove_pty_dir();
    }

    fn remove_pty_dir(&mut self) {
        if let Some((dir, created)) = self.pty_dir.take()
            && created
        {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.tasks.abort_all();
    }
}

/// Starts serving `config`: binds every TCP address, creates the ptys, starts the clock and
/// the control port, and returns where they are. Needs a tokio runtime.
pub async fn spawn(config: SimulatorConfig) -> Result<RunningSimulator, SimError> {
    let simulator = Simulator::new(&config);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut endpoints = Endpoints::default();
    let mut pty_dir: Option<(PathBuf, bool)> = None;
    let modems = modem_configs(&config);
    for (i, modem) in modems.iter().enumerate() {
        let id = ModemId(i);
        let name = format!("modem{i}");
        let mut endpoint = ModemEndpoint {
            name: name.clone(),
            number: modem.number.clone(),
            personality: modem.personality.name,
            tcp: None,
            pty: None,
        };
        if let Some(addr) = modem.tcp {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| SimError::Bind { addr, source })?;
            endpoint.tcp = Some(bound);
            tasks.spawn(tcp_port(
                simulator.clone(),
                id,
                listener,
                bound,
                shutdown_rx.clone(),
            ));
        }
        if modem.pty {
            let dir = match &pty_dir {
                Some((dir, _)) => dir.clone(),
                None => {
                    let (dir, created) = pty_folder(config.pty_dir.as_ref())?;
                    pty_dir = Some((dir.clone(), created));
                    dir
                }
            };
            let path = dir.join(&name);
            start_pty(&simulator, id, &path, &shutdown_rx, &mut tasks)?;
            endpoint.pty = Some(path);
        }
        endpoints.modems.push(endpoint);
    }
    if let Some(addr) = config.control {
        if !addr.ip().is_loopback() {
            return Err(SimError::ControlNotLoopback(addr));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        endpoints.control = Some(
            listener
                .local_addr()
                .map_err(|source| SimError::Bind { addr, source })?,
        );
        tasks.spawn(crate::control::serve_control(
            simulator.clone(),
            listener,
            shutdown_rx.clone(),
        ));
    }
    tasks.spawn(clock(simulator.clone(), shutdown_rx));
    Ok(RunningSimulator {
        endpoints,
        simulator,
        shutdown,
        tasks,
        pty_dir,
    })
}

/// The `conductor sim` entry point: starts serving, prints where (see [`Endpoints`]'s
/// `Display`), runs until `shutdown` completes, then stops cleanly.
pub async fn serve(
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let running = spawn(config).await?;
    print!("{}", running.endpoints);
    shutdown.await;
    running.shutdown().await;
    Ok(())
}

fn modem_configs(config: &SimulatorConfig) -> Vec<ModemConfig> {
    let first = ModemConfig {
        number: config.own_number.clone(),
        personality: config.personality.clone(),
        sim_capacity: config.sim_capacity,
        pin: config.pin.clone(),
        tcp: config.tcp,
        pty: config.pty,
    };
    std::iter::once(first)
        .chain(config.extra_modems.iter().cloned())
        .collect()
}

fn system_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn pty_folder(dir: Option<&PathBuf>) -> Result<(PathBuf, bool), SimError> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|source| SimError::Pty {
            path: dir.clone(),
            source,
        })?;
        return Ok((dir.clone(), false));
    }
    let base = std::env::temp_dir();
    for attempt in 0u32..100 {
        let dir = base.join(format!("conductor-sim-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((dir, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(SimError::Pty { path: dir, source }),
        }
    }
    Err(SimError::Pty {
        path: base,
        source: std::io::Error::other("no free folder name"),
    })
}

#[cfg(unix)]
fn start_pty(
    simulator: &Simulator,
    id: ModemId,
    path: &std::path::Path,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<(), SimError> {
    let pty = crate::pty::Pty::open(path).map_err(|source| SimError::Pty {
        path: path.to_owned(),
        source,
    })?;
    tasks.spawn(pty_port(
        simulator.clone(),
        id,
        pty,
        path.to_owned(),
        shutdown.clone(),
    ));
    Ok(())
}

#[cfg(not(unix))]
fn start_pty(
    _simulator: &Simulator,
    _id: ModemId,
    _path: &std::path::Path,
    _shutdown: &watch::Receiver<bool>,
    _tasks: &mut JoinSet<()>,
) -> Result<(), SimError> {
    Err(SimError::PtyUnsupported)
}

/// Sleeps until the network's next deadline and runs its timers.
async fn clock(simulator: Simulator, mut shutdown: watch::Receiver<bool>) {
    loop {
        let deadline = simulator.shared.state.lock().await.deadline;
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => simulator.with(|n, now| n.handle_timeout(now)).await,
            () = simulator.shared.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Waits until the flag has the value `want`; `false` if its sender is gone. (A helper so that
/// no `watch` guard lives in a `select!`, which would make the task `!Send`.)
pub(crate) async fn until(rx: &mut watch::Receiver<bool>, want: bool) -> bool {
    rx.wait_for(|v| *v == want).await.is_ok()
}

/// Waits until the modem is plugged in; `false` on shutdown.
async fn plugged(link: &mut watch::Receiver<bool>, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        r = until(link, true) => r,
        _ = until(shutdown, true) => false,
    }
}

/// One TCP port: one client at a time, closed while the modem is unplugged.
async fn tcp_port(
    simulator: Simulator,
    id: ModemId,
    listener: TcpListener,
    addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mut link) = simulator.link(id) else {
        return;
    };
    let mut listener = Some(listener);
    loop {
        let plugged_now = *link.borrow();
        if !plugged_now {
            // Unplugged before the first accept (a fault in the config): refuse from now.
            listener = None;
        }
        if !plugged(&mut link, &mut shutdown).await {
            return;
        }
        let current = match listener.take() {
            Some(l) => l,
            None => match rebind(addr, &mut link, &mut shutdown).await {
                Some(l) => l,
                None if *shutdown.borrow() => return,
                None => continue,
            },
        };
        let for_connections = shutdown.clone();
        loop {
            tokio::select! {
                accepted = current.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    tracing::debug!(%peer, modem = id.0, "client connected");
                    let _ = stream.set_nodelay(true);
                    let serving = serve_stream(simulator.clone(), id, stream, for_connections.clone());
                    tokio::pin!(serving);
                    loop {
                        tokio::select! {
                            () = &mut serving => break,
                            // A second client is turned away: a serial port has one user.
                            extra = current.accept() => drop(extra),
                        }
                    }
                }
                r = until(&mut link, false) => {
                    if !r { return; }
                    break;
                }
                _ = until(&mut shutdown, true) => return,
            }
        }
        // Unplugged: the listener is dropped here, so connections are refused.
    }
}

async fn rebind(
    addr: SocketAddr,
    link: &mut watch::Receiver<bool>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<TcpListener> {
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => tracing::warn!(%addr, error = %e, "cannot listen again; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = until(link, false) => return None,
            _ = until(shutdown, true) => return None,
        }
    }
}

/// Serves one connection until it closes, the modem is unplugged, or shutdown.
async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    simulator: Simulator,
    id: ModemId,
    stream: S,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mut link) = simulator.link(id) else {
        return;
    };
    let plugged_now = *link.borrow_and_update();
    if !plugged_now {
        return;
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (sink, mut output) = simulator.attach(id).await;
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    simulator.with(|net, now| net.handle_input(now, id, bytes)).await;
                }
            },
            Some(bytes) = output.recv() => {
                if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
            }
            changed = link.changed() => {
                let plugged_now = changed.is_ok() && *link.borrow_and_update();
                if !plugged_now { break; }
            }
            _ = until(&mut shutdown, true) => break,
        }
    }
    simulator.detach(id, sink).await;
    let _ = writer.shutdown().await;
}

/// One pty: recreated behind the same symlink after every replug.
#[cfg(unix)]
async fn pty_port(
    simulator: Simulator,
    id: ModemId,
    pty: crate::pty::Pty,
    path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mut link) = simulator.link(id) else {
        return;
    };
    let mut pty = Some(pty);
    loop {
        let plugged_now = *link.borrow();
        if !plugged_now {
            // Unplugged before this task first ran: the pty and its link go now.
            pty = None;
        }
        if !plugged(&mut link, &mut shutdown).await {
            return;
        }
        let mut current = match pty.take() {
            Some(p) => p,
            None => match crate::pty::Pty::open(&path) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot recreate the pty");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        _ = until(&mut shutdown, true) => return,
                    }
                }
            },
        };
        let (sink, mut output) = simulator.attach(id).await;
        let mut buf = [0u8; 4096];
        let stop = loop {
            tokio::select! {
                read = current.read(&mut buf) => match read {
                    Ok(0) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Ok(n) => {
                        let bytes = buf.get(..n).unwrap_or_default();
                        simulator.with(|net, now| net.handle_input(now, id, bytes)).await;
                    }
                    Err(e) if e.raw_os_error() == Some(5) => {
                        // EIO: no slave open right now; wait a little.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(_) => break false,
                },
                Some(bytes) = output.recv() => {
                    if current.write(&bytes).await.is_err() { break false; }
                }
                changed = link.changed() => {
                    if changed.is_err() { break true; }
                    let plugged_now = *link.borrow_and_update();
                    if !plugged_now { break false; }
                }
                _ = until(&mut shutdown, true) => break true,
            }
        };
        simulator.detach(id, sink).await;
        drop(current);
        if stop {
            return;
        }
    }
}

impl Simulator {
    /// The modem's name.
    pub async fn name(&self, id: ModemId) -> Option<String> {
        self.with(|n, _| n.name(id).map(str::to_owned)).await
    }
}
