//! The scripted modem: a peer on the far end of an in-memory pipe that reads command lines
//! and answers what the test's handler says (h2-support's mock, in our own words).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conductor_modem::transport::{BoxedIo, Connect};
use conductor_modem::{Modem, ModemConfig, ModemState, OpenError, OpenErrorKind, spawn_with};
use conductor_sim::{RunningSimulator, Simulator, SimulatorConfig};
use conductor_sms::{SubmitOptions, encode_submit};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The longest any test waits for a condition (virtual time in paused tests).
pub const PATIENCE: Duration = Duration::from_secs(600);

/// Waits for `future` or fails the test after [`PATIENCE`], naming what it waited for.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// What the scripted modem does in answer to a command line.
#[derive(Debug, Clone)]
pub enum Action {
    /// One line, framed `\r\n…\r\n` as V.250 frames information text and result codes.
    Line(String),
    /// Bytes as they are.
    Raw(Vec<u8>),
    /// The `> ` prompt; then reads the PDU up to Ctrl-Z (or ESC) and runs the actions.
    Prompt(Vec<Action>),
    /// Reads the PDU up to Ctrl-Z (or ESC) without writing a prompt (the script wrote its own
    /// with [`Action::Raw`]), then runs the actions.
    AwaitPdu(Vec<Action>),
    /// Closes the connection.
    Close,
    /// Waits before the next action (a slow modem).
    Sleep(Duration),
}

/// Shorthand: lines, then `OK`.
pub fn ok_with(lines: &[&str]) -> Vec<Action> {
    lines
        .iter()
        .map(|l| Action::Line((*l).to_owned()))
        .chain([Action::Line("OK".to_owned())])
        .collect()
}

/// Shorthand: a bare `OK`.
pub fn ok() -> Vec<Action> {
    ok_with(&[])
}

/// Shorthand: one line.
pub fn line(text: &str) -> Vec<Action> {
    vec![Action::Line(text.to_owned())]
}

/// Shorthand: `ERROR`.
pub fn error() -> Vec<Action> {
    line("ERROR")
}

/// Shorthand: `+CMS ERROR: <code>`.
pub fn cms(code: u16) -> Vec<Action> {
    vec![Action::Line(format!("+CMS ERROR: {code}"))]
}

/// Shorthand: `+CME ERROR: <code>`.
pub fn cme(code: u16) -> Vec<Action> {
    vec![Action::Line(format!("+CME ERROR: {code}"))]
}

/// Shorthand: no answer at all.
pub fn silence() -> Vec<Action> {
    Vec::new()
}

/// A message in slot 0 and slot 1, for listings.
pub const PDU_A: &str = "07913366003051F5040B913366304381F900005180719120348004D4F29C0E";
/// Another message.
pub const PDU_B: &str = "0791534850020200040C9153486507895500006090608164138004D4F29C0E";
/// An SMS-SUBMIT to send (TPDU of 23 octets after a `00` SMSC octet).
pub const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";

/// A healthy modem's answers to everything the driver sends.
pub fn healthy(line: &str) -> Vec<Action> {
    match line {
        "AT" | "ATE0" | "AT+CMEE=1" | "AT+CMGF=0" | "AT+CSMS=0" | "AT+CNMI=2,1,0,2,0" => ok(),
        "AT+CGMI" => ok_with(&["Conductor"]),
        "AT+CGMM" => ok_with(&["Scripted"]),
        "AT+CGMR" => ok_with(&["1.0.0"]),
        "AT+CGSN" => ok_with(&["356938035643809"]),
        "AT+CIMI" => ok_with(&["234150123456789"]),
        "AT+CCID" => ok_with(&["+CCID: 89441000123456789012"]),
        "AT+CPIN?" => ok_with(&["+CPIN: READY"]),
        "AT+CPMS=?" => ok_with(&["+CPMS: (\"SM\",\"ME\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")"]),
        "AT+CPMS=\"SM\",\"SM\",\"SM\"" => ok_with(&["+CPMS: 2,30,2,30,2,30"]),
        "AT+CPMS?" => ok_with(&["+CPMS: \"SM\",2,30,\"SM\",2,30,\"SM\",2,30"]),
        "AT+CNMI=?" => ok_with(&["+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"]),
        "AT+CSMS?" => ok_with(&["+CSMS: 0,1,1,1"]),
        "AT+CSCA?" => ok_with(&["+CSCA: \"+447785016005\",145"]),
        "AT+CSQ" => ok_with(&["+CSQ: 20,99"]),
        "AT+CREG?" => ok_with(&["+CREG: 0,1"]),
        "AT+CGREG?" => ok_with(&["+CGREG: 0,1"]),
        "AT+CEREG?" => ok_with(&["+CEREG: 0,5"]),
        "AT+COPS?" => ok_with(&["+COPS: 0,0,\"Test Net\",7"]),
        "AT+CMGL=4" => vec![
            Action::Line("+CMGL: 0,1,,23".into()),
            Action::Line(PDU_A.into()),
            Action::Line("+CMGL: 1,0,,23".into()),
            Action::Line(PDU_B.into()),
            Action::Line("OK".into()),
        ],
        "AT+CMGR=0" => vec![
            Action::Line("+CMGR: 1,,23".into()),
            Action::Line(PDU_A.into()),
            Action::Line("OK".into()),
        ],
        "AT+CMGR=5" => ok(),
        l if l.starts_with("AT+CMGD=") => ok(),
        l if l.starts_with("AT+CMGS=") => vec![Action::Prompt(ok_with(&["+CMGS: 7"]))],
        _ => error(),
    }
}

/// The handler a peer consults for each command line.
pub type Handler = Arc<Mutex<dyn FnMut(&str) -> Vec<Action> + Send>>;

/// Wraps a closure as a [`Handler`].
pub fn handler(f: impl FnMut(&str) -> Vec<Action> + Send + 'static) -> Handler {
    Arc::new(Mutex::new(f))
}

/// One end of a conversation: what the driver sent, and a way to speak out of turn.
#[derive(Clone)]
pub struct Peer {
    /// Everything received: command lines, `PDU <hex>` for data phases, `ESC` for cancels.
    log: watch::Receiver<Vec<String>>,
    writer: Writer,
    /// Cancelled when the test closes the connection, so the reading half goes too.
    closed: CancellationToken,
}

/// The peer's writing half, shared with tests that inject URCs; `None` once closed.
type Writer = Arc<tokio::sync::Mutex<Option<Box<dyn AsyncWrite + Send + Unpin>>>>;

impl Peer {
    /// Starts answering on `stream` (an in-memory pipe, a TCP stream, a pty master).
    pub fn spawn<S>(stream: S, handler: Handler) -> Peer
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let (log_tx, log) = watch::channel(Vec::new());
        let writer: Box<dyn AsyncWrite + Send + Unpin> = Box::new(writer);
        let peer = Peer {
            log,
            writer: Arc::new(tokio::sync::Mutex::new(Some(writer))),
            closed: CancellationToken::new(),
        };
        tokio::spawn(serve(
            Box::new(reader),
            peer.writer.clone(),
            handler,
            log_tx,
            peer.closed.clone(),
        ));
        peer
    }

    /// The log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    /// The command lines received so far.
    pub fn commands(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.starts_with("AT") || l.starts_with("at"))
            .collect()
    }

    /// Waits until `entry` has been received `times` times in all.
    pub async fn wait_for_count(&self, entry: &str, times: usize) {
        let mut log = self.log.clone();
        within(&format!("{entry:?} x{times} at the peer"), async {
            let _ = log
                .wait_for(|l| l.iter().filter(|e| *e == entry).count() >= times)
                .await;
        })
        .await;
    }

    /// Waits until `entry` has been received.
    pub async fn wait_for(&self, entry: &str) {
        self.wait_for_count(entry, 1).await;
    }

    /// Writes a line out of turn (a URC).
    pub async fn inject(&self, text: &str) {
        self.write(format!("\r\n{text}\r\n").as_bytes()).await;
    }

    /// Writes raw bytes out of turn.
    pub async fn write(&self, bytes: &[u8]) {
        if let Some(writer) = self.writer.lock().await.as_mut() {
            let _ = writer.write_all(bytes).await;
        }
    }

    /// Closes the connection from the modem's side.
    pub async fn close(&self) {
        self.writer.lock().await.take();
        self.closed.cancel();
    }
}

async fn serve(
    mut reader: Box<dyn AsyncRead + Send + Unpin>,
    writer: Writer,
    handler: Handler,
    log: watch::Sender<Vec<String>>,
    closed: CancellationToken,
) {
    let mut pending: VecDeque<u8> = VecDeque::new();
    let mut buf = [0u8; 1024];
    let mut line = Vec::new();
    // Actions waiting for the PDU of a data phase.
    let mut data_phase: Option<Vec<Action>> = None;
    loop {
        let Some(byte) = pending.pop_front() else {
            let read = tokio::select! {
                _ = closed.cancelled() => return,
                read = reader.read(&mut buf) => read,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend(&buf[..n]),
            }
            continue;
        };
        if writer.lock().await.is_none() {
            return;
        }
        if let Some(after) = data_phase.take() {
            match byte {
                0x1A => {
                    let pdu = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    log.send_modify(|l| l.push(format!("PDU {pdu}")));
                    if !run(&writer, after, &mut data_phase).await {
                        return;
                    }
                }
                0x1B => {
                    line.clear();
                    log.send_modify(|l| l.push("ESC".to_owned()));
                }
                b => {
                    line.push(b);
                    data_phase = Some(after);
                }
            }
            continue;
        }
        match byte {
            b'\r' | b'\n' => {
                let text: String = String::from_utf8_lossy(&line)
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                line.clear();
                let text = text.trim().to_owned();
                if text.is_empty() {
                    continue;
                }
                log.send_modify(|l| l.push(text.clone()));
                let actions = {
                    let mut handler = match handler.lock() {
                        Ok(guard) => guard,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    handler(&text)
                };
                if !run(&writer, actions, &mut data_phase).await {
                    return;
                }
            }
            0x1B => log.send_modify(|l| l.push("ESC".to_owned())),
            b => line.push(b),
        }
    }
}

/// Runs actions; returns `false` once the connection is closed.
async fn run(writer: &Writer, actions: Vec<Action>, data_phase: &mut Option<Vec<Action>>) -> bool {
    let mut guard = writer.lock().await;
    for action in actions {
        let Some(w) = guard.as_mut() else {
            return false;
        };
        let result = match action {
            Action::Line(text) => w.write_all(format!("\r\n{text}\r\n").as_bytes()).await,
            Action::Raw(bytes) => w.write_all(&bytes).await,
            Action::Prompt(after) => {
                *data_phase = Some(after);
                w.write_all(b"\r\n> ").await
            }
            Action::AwaitPdu(after) => {
                *data_phase = Some(after);
                Ok(())
            }
            Action::Close => {
                guard.take();
                return false;
            }
            Action::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
        };
        if result.is_err() {
            return false;
        }
    }
    true
}

/// A config for scripted tests: no periodic refresh (the scripts would see unexpected
/// commands), everything else default.
pub fn config() -> ModemConfig {
    ModemConfig {
        refresh_interval: None,
        ..ModemConfig::new("test", "scripted")
    }
}

/// A running task whose every connection is answered by the same handler.
pub struct Bench {
    /// The task.
    pub modem: Modem,
    /// One peer per connection, in connection order.
    pub peers: mpsc::UnboundedReceiver<Peer>,
    /// When each connection attempt happened.
    pub attempts: Arc<Mutex<Vec<Instant>>>,
    /// Cancels the task.
    pub shutdown: CancellationToken,
}

impl Bench {
    /// Starts a task with `config`, answering with `handler`; the first `failures` connection
    /// attempts fail as "not found".
    pub fn start_with(config: ModemConfig, handler: Handler, failures: usize) -> Bench {
        Bench::start_each(config, failures, move |_| handler.clone())
    }

    /// Starts a task whose `n`-th successful connection (from 0) is answered by
    /// `handlers(n)`; the first `failures` attempts fail as "not found".
    pub fn start_each(
        config: ModemConfig,
        failures: usize,
        mut handlers: impl FnMut(usize) -> Handler + Send + 'static,
    ) -> Bench {
        let (peers_tx, peers) = mpsc::unbounded_channel();
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let attempts_log = attempts.clone();
        let mut count = 0usize;
        let connector = move || {
            count += 1;
            if let Ok(mut a) = attempts_log.lock() {
                a.push(Instant::now());
            }
            let result = if count <= failures {
                Err(OpenError {
                    device: "scripted".into(),
                    kind: OpenErrorKind::NotFound,
                    detail: "No such file or directory".into(),
                })
            } else {
                let (ours, theirs) = tokio::io::duplex(64 * 1024);
                let _ = peers_tx.send(Peer::spawn(theirs, handlers(count - failures - 1)));
                Ok(Box::new(ours) as BoxedIo)
            };
            async move { result }
        };
        let shutdown = CancellationToken::new();
        let modem = spawn_with(config, connector, shutdown.clone());
        Bench {
            modem,
            peers,
            attempts,
            shutdown,
        }
    }

    /// Starts a task with the scripted config.
    pub fn start(handler: Handler) -> Bench {
        Bench::start_with(config(), handler, 0)
    }

    /// The next connection's peer.
    pub async fn next_peer(&mut self) -> Peer {
        within("a connection", self.peers.recv())
            .await
            .expect("the connector is alive")
    }

    /// Waits until the state satisfies `check`, and returns it.
    pub async fn wait_state(
        &self,
        what: &str,
        check: impl FnMut(&ModemState) -> bool,
    ) -> ModemState {
        let mut state = self.modem.state.clone();
        within(what, async move {
            state
                .wait_for(check)
                .await
                .map(|s| s.clone())
                .expect("the task publishes state")
        })
        .await
    }

    /// Waits until the modem is ready.
    pub async fn ready(&self) -> ModemState {
        self.wait_state("the modem to be ready", |s| s.is_ready())
            .await
    }

    /// Connection attempt times.
    pub fn attempt_times(&self) -> Vec<Instant> {
        self.attempts.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// A connector to the virtual modem `modem0` of `simulator`, in-process: what the tests and
/// the round-trip bench give `spawn_with` to drive the simulator without a port.
pub fn sim_connector(simulator: Simulator) -> impl Connect {
    move || {
        let simulator = simulator.clone();
        async move {
            simulator
                .connect("modem0")
                .await
                .map(|stream| Box::new(stream) as BoxedIo)
                .map_err(|e| OpenError {
                    device: "sim:modem0".into(),
                    kind: OpenErrorKind::Unplugged,
                    detail: e.to_string(),
                })
        }
    }
}

/// A config for the virtual modem: no periodic refresh (tests count commands), everything
/// else default.
pub fn sim_config() -> ModemConfig {
    ModemConfig {
        refresh_interval: None,
        ..ModemConfig::new("sim", "sim:modem0")
    }
}

/// The hex PDU of a single-part SMS-SUBMIT of `text` to `to`.
pub fn submit_pdu(to: &str, text: &str) -> String {
    let encoded = encode_submit(to, text, &SubmitOptions::default()).expect("encodable");
    encoded.parts[0].pdu.to_hex()
}

/// A running simulator, and a driver task connected to its first modem in-process.
pub struct Rig {
    /// The driver task.
    pub modem: Modem,
    /// The simulator.
    pub running: RunningSimulator,
    /// Stops the driver task.
    pub shutdown: CancellationToken,
}

impl Rig {
    /// Starts a simulator with `sim` and a driver task with `config` connected to it.
    pub async fn start(sim: SimulatorConfig, config: ModemConfig) -> Rig {
        let running = conductor_sim::spawn(sim)
            .await
            .expect("the simulator starts");
        let connector = sim_connector(running.simulator.clone());
        let shutdown = CancellationToken::new();
        let modem = spawn_with(config, connector, shutdown.clone());
        Rig {
            modem,
            running,
            shutdown,
        }
    }

    /// The virtual network.
    pub fn sim(&self) -> &Simulator {
        &self.running.simulator
    }

    /// Waits until the published state passes `check`; returns that state.
    pub async fn wait(&self, what: &str, check: impl FnMut(&ModemState) -> bool) -> ModemState {
        let mut state = self.modem.state.clone();
        within(what, state.wait_for(check))
            .await
            .map(|s| s.clone())
            .expect("the task publishes state")
    }

    /// Waits until the modem is ready; returns its state.
    pub async fn ready(&self) -> ModemState {
        self.wait("the modem to be ready", |s| s.is_ready()).await
    }
}
