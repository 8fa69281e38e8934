//! The rig: a virtual network (conductor-sim) served in-process, a real SQLite file in a temp
//! dir, and a gateway whose modems are connected to the simulator over in-memory pipes.
//!
//! Real time, short settings: the store works on blocking threads, which paused time does not
//! wait for, so conditions are awaited with deadlines ([`wait_until`]), never with a sleep.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conductor_gateway::{
    Clock, Connectors, DeletePolicy, Gateway, GatewayConfig, GatewayHandle, ManualClock,
    ModemSettings,
};
use conductor_modem::transport::BoxedIo;
use conductor_modem::{ModemConfig, OpenError, OpenErrorKind};
use conductor_sim::network::ModemId as SimModemId;
use conductor_sim::sim_card::{MessageStatus, StoredMessage};
use conductor_sim::{
    Personality, RunningSimulator, SendLatency, Simulator, SimulatorConfig, StatusReportSettings,
};
use conductor_store::{
    Direction, ListFilter, Message, MessageDetail, MessageId, ModemStatus, NewOutbound, Store,
    StoreOptions,
};
use tempfile::TempDir;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The longest a condition is waited for before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Waits until `check` holds, polling every 20 ms; fails the test after `timeout`, naming what
/// it waited for.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Logs go to the test's captured output (shown on failure); `RUST_LOG` filters them.
pub fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A message to `to` with the defaults of `conductor send`: any modem, normal priority, no
/// schedule or expiry. Tests change the fields they are about.
pub fn outbound(to: &str, text: &str) -> NewOutbound {
    NewOutbound {
        to: to.to_owned(),
        text: text.to_owned(),
        modem_id: None,
        source: "test".to_owned(),
        allow_duplicate: false,
        status_report: None,
        send_at: None,
        priority: 0,
        expires_at: None,
        transactional: false,
    }
}

/// The simulator settings most tests want: a generic modem, no send latency, quick reports.
pub fn sim_config() -> SimulatorConfig {
    SimulatorConfig {
        send_latency: SendLatency::ZERO,
        status_reports: StatusReportSettings {
            enabled: true,
            delay: Duration::from_millis(100),
            status: 0,
        },
        ..SimulatorConfig::default()
    }
}

/// A second (or third) modem on the network.
pub fn extra_modem(number: &str) -> conductor_sim::ModemConfig {
    conductor_sim::ModemConfig {
        number: number.to_owned(),
        personality: Personality::generic(),
        sim_capacity: 30,
        pin: None,
        tcp: None,
        pty: false,
    }
}

/// Gateway settings with short intervals, for `modems` gateway ids ("m0" ↔ "modem0", …).
pub fn gateway_config(modems: usize) -> GatewayConfig {
    let modems = (0..modems)
        .map(|i| {
            let id = format!("m{i}");
            ModemSettings {
                modem: ModemConfig {
                    refresh_interval: None,
                    backoff_initial: Duration::from_millis(100),
                    backoff_max: Duration::from_millis(400),
                    reinit_settle: Duration::from_millis(100),
                    ..ModemConfig::new(id.clone(), format!("sim:modem{i}"))
                },
                id,
                rate_limit_per_minute: None,
                limits: conductor_gateway::Limits::default(),
                calls: conductor_gateway::CallSettings::default(),
                balance: None,
            }
        })
        .collect();
    let mut config = GatewayConfig {
        modems,
        ..GatewayConfig::default()
    };
    config.inbound.sweep_interval = Duration::from_secs(1);
    config.inbound.capacity_check_interval = Duration::from_secs(2);
    config.inbound.delete_policy = DeletePolicy::OnRead;
    config.outbound.retry_backoff = Duration::from_millis(100);
    config.outbound.poll_interval = Duration::from_millis(500);
    config.status_interval = Duration::from_secs(1);
    config.change_poll_interval = Duration::from_millis(100);
    config
}

/// Opens modem `key` of the simulator over an in-memory pipe, as opening its serial port.
pub fn connector(simulator: Simulator, key: String) -> impl conductor_modem::transport::Connect {
    move || {
        let simulator = simulator.clone();
        let key = key.clone();
        async move {
            simulator
                .connect(&key)
                .await
                .map(|stream| Box::new(stream) as BoxedIo)
                .map_err(|e| OpenError {
                    device: format!("sim:{key}"),
                    kind: OpenErrorKind::Unplugged,
                    detail: e.to_string(),
                })
        }
    }
}

/// A simulator, a database and a gateway.
pub struct Rig {
    pub dir: TempDir,
    pub db: PathBuf,
    pub store: Store,
    pub running: RunningSimulator,
    pub clock: ManualClock,
    pub config: GatewayConfig,
    pub shutdown: CancellationToken,
    pub gateway: Option<Gateway>,
}

impl Rig {
    /// Starts the simulator and the database, and the gateway unless `start` is false.
    pub async fn new(sim: SimulatorConfig, config: GatewayConfig, start: bool) -> Rig {
        logs();
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = dir.path().join("conductor.db");
        let store = Store::open_sqlite(&db, StoreOptions::default())
            .await
            .expect("the database opens");
        let running = conductor_sim::spawn(sim)
            .await
            .expect("the simulator starts");
        let mut rig = Rig {
            dir,
            db,
            store,
            running,
            clock: ManualClock::new(),
            config,
            shutdown: CancellationToken::new(),
            gateway: None,
        };
        if start {
            rig.start_gateway().await;
        }
        rig
    }

    /// A rig with the default simulator and `modems` modems, started.
    pub async fn start(config: GatewayConfig) -> Rig {
        Rig::new(sim_config(), config, true).await
    }

    /// Starts a gateway on the rig's database and simulator.
    pub async fn start_gateway(&mut self) {
        let mut connectors = Connectors::new();
        for (i, modem) in self.config.modems.iter().enumerate() {
            connectors.insert(
                modem.id.clone(),
                connector(self.sim().clone(), format!("modem{i}")),
            );
        }
        self.shutdown = CancellationToken::new();
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let gateway = Gateway::start(
            self.config.clone(),
            self.store.clone(),
            clock,
            connectors,
            self.shutdown.clone(),
        )
        .await
        .expect("the gateway starts");
        self.gateway = Some(gateway);
    }

    /// Stops the gateway gracefully and waits for it.
    pub async fn stop_gateway(&mut self) {
        self.shutdown.cancel();
        if let Some(gateway) = self.gateway.take() {
            tokio::time::timeout(PATIENCE, gateway.join())
                .await
                .expect("the gateway stops in time")
                .expect("the gateway stops cleanly");
        }
    }

    /// Kills the gateway with no graceful step (kill -9).
    pub async fn crash_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.abort().await;
        }
    }

    pub fn handle(&self) -> GatewayHandle {
        self.gateway.as_ref().expect("a running gateway").handle()
    }

    pub fn sim(&self) -> &Simulator {
        &self.running.simulator
    }

    /// A connection of another process: what n8n or a script would use.
    pub fn external(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.db).expect("an external connection");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("a busy timeout");
        conn
    }

    /// Queues a message through the gateway.
    pub async fn queue(&self, to: &str, text: &str) -> MessageId {
        self.queue_with(outbound(to, text)).await
    }

    pub async fn queue_with(&self, message: NewOutbound) -> MessageId {
        self.handle().queue(message).await.expect("queued")
    }

    /// Every row of one direction, oldest first.
    pub async fn messages(&self, direction: Direction) -> Vec<Message> {
        let mut rows = self
            .store
            .list(ListFilter {
                direction: Some(direction),
                limit: 10_000,
                ..ListFilter::default()
            })
            .await
            .expect("a listing");
        rows.reverse();
        rows
    }

    pub async fn inbound(&self) -> Vec<Message> {
        self.messages(Direction::Inbound).await
    }

    pub async fn message(&self, id: MessageId) -> MessageDetail {
        self.store
            .message(id)
            .await
            .expect("a read")
            .expect("the row exists")
    }

    pub async fn status_of(&self, id: MessageId) -> conductor_store::Status {
        self.message(id).await.message.status
    }

    pub async fn modem_status(&self, id: &str) -> Option<ModemStatus> {
        self.store
            .modem_statuses()
            .await
            .expect("statuses")
            .into_iter()
            .find(|s| s.modem_id.as_str() == id)
    }

    /// Waits until modem `id`'s status row says `state`.
    pub async fn wait_modem(&self, id: &str, state: conductor_store::ModemState) {
        wait_until(
            &format!("{id} to be {}", state.as_str()),
            PATIENCE,
            || async {
                self.modem_status(id)
                    .await
                    .is_some_and(|s| s.state == state)
            },
        )
        .await;
    }

    /// Occupied slots of a simulator modem's memory ("SM", "SR").
    pub async fn slots(&self, modem: &str, memory: &str) -> usize {
        let snapshot = self.sim().sim(modem).await.expect("a snapshot");
        snapshot.slots.iter().filter(|s| s.memory == memory).count()
    }

    /// Puts a PDU (hex) straight into a SIM slot, with no URC: what a lost `+CMTI` looks like.
    pub async fn store_on_sim(&self, modem: &str, memory: &'static str, pdu_hex: &str) {
        let pdu = conductor_sms::decode_hex(pdu_hex).expect("hex");
        let id = self.sim().modem(modem).await.expect("the modem exists");
        let placed = self
            .sim()
            .with(move |network, _| {
                network.modem_mut(id).and_then(|m| {
                    m.sim_card_mut().store(
                        memory,
                        StoredMessage {
                            status: MessageStatus::ReceivedUnread,
                            pdu,
                        },
                    )
                })
            })
            .await;
        assert!(placed.is_some(), "the SIM has room");
    }

    /// The SMS-DELIVER PDUs the network would hand a modem for `text` from `from`, made on the
    /// spare modem `spare` (which then holds copies of its own, never looked at).
    pub async fn deliver_pdus(&self, spare: &str, from: &str, text: &str) -> Vec<String> {
        self.sim()
            .inject_text(spare, from, text, false)
            .await
            .expect("the network builds the PDUs")
    }

    pub async fn sim_modem_id(&self, key: &str) -> SimModemId {
        self.sim().modem(key).await.expect("the modem exists")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
