//! The configuration file: found, read, checked and resolved into typed settings once.
//!
//! Two levels, as ripgrep does with its arguments: [`ConfigFile`] mirrors the JSON the user
//! wrote (serde, unknown fields refused), and [`Config::resolve`] turns it, together with the
//! command-line overrides, into settings nothing downstream validates again. A file holding
//! only `{"database": {"path": "..."}, "modems": [{"id": "...", "device": "..."}]}` is
//! complete: every other field has a default documented on it here, in `config schema` and in
//! the README.
//!
//! Where the file is: `--config`, then `CONDUCTOR_CONFIG`, then `/etc/conductor/config.json`
//! when running as root, else the user's config folder (`~/.config/conductor/config.json`).
//! Relative paths inside it are relative to the file. `--db` / `CONDUCTOR_DB` override the
//! database (DESIGN.md, "Decisions: Database").

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config problem, named by the field's path so the user can find it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config file {path}: {source}; check that it exists and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The JSON is malformed or a field is unknown or has the wrong type.
    #[error("config file {path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field's path, e.g. `modems[1].device`, or `(top level)`.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// `database.lease_expiry` must leave room for at least two heartbeats: a node gives a modem
/// up `expiry - heartbeat` after its last renewal (before any other node may take the lease),
/// so with less than two heartbeats one late renewal would close a healthy modem's port, and
/// with an expiry at or below the heartbeat the lease would lapse between two renewals and
/// nodes would take modems from each other. Four heartbeats (the defaults: 5 s and 20 s)
/// ride out three missed renewals.
fn check_lease_timings(database: &DatabaseSection, file: &Path) -> Result<(), ConfigError> {
    let heartbeat = database
        .lease_heartbeat
        .unwrap_or(conductor_store::DEFAULT_LEASE_HEARTBEAT);
    let expiry = database
        .lease_expiry
        .unwrap_or(conductor_store::DEFAULT_LEASE_EXPIRY);
    if heartbeat.is_zero() {
        return Err(invalid(
            file,
            "database.lease_heartbeat",
            "database.lease_heartbeat must be more than 0 (default \"5s\"): it is how often \
             each modem lease is renewed",
        ));
    }
    if expiry < heartbeat * 2 {
        let field = if database.lease_expiry.is_some() {
            "database.lease_expiry"
        } else {
            "database.lease_heartbeat"
        };
        return Err(invalid(
            file,
            field,
            format!(
                "database.lease_expiry ({}) must be at least twice database.lease_heartbeat \
                 ({}), better four times (the defaults are \"5s\" and \"20s\"): raise \
                 lease_expiry to {} or lower lease_heartbeat",
                humantime::format_duration(expiry),
                humantime::format_duration(heartbeat),
                humantime::format_duration(heartbeat * 4),
            ),
        ));
    }
    Ok(())
}

fn invalid(path: &Path, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        field: field.into(),
        message: message.into(),
    }
}

/// The config file as written. Every field but `modems` has a default.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where messages are kept.
    #[serde(default)]
    pub database: DatabaseSection,
    /// The modems this gateway drives.
    #[serde(default)]
    pub modems: Vec<ModemSection>,
    /// Receiving: sweep interval, multipart timeout, SIM lifecycle.
    #[serde(default)]
    pub inbound: InboundSection,
    /// Sending: duplicates, retries, status reports, delivery guarantee, and the sending
    /// policy (routing, quiet hours, expiry, size, opt-out).
    #[serde(default)]
    pub outbound: OutboundSection,
    /// How recipients are normalised to international form.
    #[serde(default)]
    pub numbers: crate::policy_config::NumbersSection,
    /// Logging to the console and to rotating files.
    #[serde(default)]
    pub logging: LoggingSection,
    /// The HTTP API, dashboard and metrics served by `run` and `demo`.
    #[serde(default)]
    pub http: HttpSection,
    /// Signed webhooks: where events are posted, and how failed deliveries are retried.
    #[serde(default)]
    pub webhooks: WebhooksSection,
    /// Daily backups of the database: folder, time, how many are kept.
    #[serde(default)]
    pub backup: crate::ops_config::BackupSection,
    /// Old messages exported and removed by rules; nothing is removed without rules.
    #[serde(default)]
    pub retention: crate::ops_config::RetentionSection,
    /// Alerts the daemon raises and clears: modem down, SIM storage, queue stuck, failure
    /// rate, disk space, backup failed.
    #[serde(default)]
    pub alerts: crate::alerts_config::AlertsSection,
    /// Event scripts: programs run (never through a shell) on received, sent, delivered,
    /// failed, call, modem_down, modem_up and alert events.
    #[serde(default)]
    pub scripts: Vec<crate::toolbox_config::ScriptSection>,
    /// Event scripts running at once, over all scripts. Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripts_concurrency: Option<usize>,
    /// Script runs waiting for a slot before further ones are dropped (and recorded as
    /// `script_dropped`). Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripts_queue_limit: Option<usize>,
}

/// `http`: the API (`/api/v1`), the dashboard (`/`), `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Serve HTTP at all. Default true.
    pub enabled: bool,
    /// Address and port to listen on. Default `127.0.0.1:8080`. Any address that is not
    /// loopback needs at least one token: the daemon refuses to start otherwise.
    pub listen: String,
    /// Bearer tokens. Only their SHA-256 is stored: `printf %s TOKEN | sha256sum`.
    pub tokens: Vec<TokenSection>,
    /// Serve HTTPS with a certificate chain and key from PEM files. Default: plain HTTP.
    pub tls: Option<TlsSection>,
    /// Largest request body, in KiB. Default 1024.
    pub body_limit_kib: usize,
    /// A request without an answer after this long gets 503. Default `30s`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// How long an `Idempotency-Key` is remembered: a retry inside it gets the first answer,
    /// a reuse after it queues a new message. Default `24h`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub idempotency_ttl: Duration,
}

impl Default for HttpSection {
    fn default() -> Self {
        let defaults = conductor_http::HttpConfig::default();
        Self {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
            tokens: Vec::new(),
            tls: None,
            body_limit_kib: 1024,
            request_timeout: Duration::from_secs(30),
            idempotency_ttl: defaults.idempotency_ttl,
        }
    }
}

/// One API token.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// Shown in logs instead of the token, e.g. `"n8n"`.
    pub name: String,
    /// The token's SHA-256, 64 hex digits (`printf %s TOKEN | sha256sum`).
    pub sha256: String,
    /// `read` (GET only) or `full` (default).
    #[serde(default)]
    pub scope: TokenScope,
}

/// What a token may do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// GET requests only (dashboards, Prometheus).
    Read,
    /// Everything, sending included.
    #[default]
    Full,
}

/// TLS certificate and key, PEM, read when the server starts.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Certificate chain (the server's certificate first, then intermediates); relative to the
    /// config file.
    pub cert: PathBuf,
    /// Private key (PKCS#8, RSA or EC, unencrypted); relative to the config file.
    pub key: PathBuf,
}

/// `webhooks`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksSection {
    /// The receivers.
    pub endpoints: Vec<WebhookSection>,
    /// Attempts per delivery before it is marked failed. Default 40 (about 31 hours with the
    /// default backoff).
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubles each time. Default `10s`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub initial_backoff: Duration,
    /// Longest wait between attempts. Default `1h`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub max_backoff: Duration,
    /// One attempt's time limit. Default `10s`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        let defaults = conductor_http::webhooks::WebhookConfig::default();
        Self {
            endpoints: Vec::new(),
            max_attempts: defaults.max_attempts,
            initial_backoff: defaults.initial_backoff,
            max_backoff: defaults.max_backoff,
            timeout: defaults.timeout,
        }
    }
}

/// One webhook receiver.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Its name in logs and in the deliveries list; default: the URL.
    pub name: Option<String>,
    /// `http://host:port/path` or `https://host/path`.
    pub url: String,
    /// Events to send: `message.received`, `message.sent`, `message.delivered`,
    /// `message.failed`, `modem.down`, `modem.up`, `sim.capacity_warning`, `alert.raised`,
    /// `alert.cleared`. Default: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only events of this modem.
    pub modem: Option<String>,
    /// Only messages to or from this number.
    pub number: Option<String>,
    /// The HMAC-SHA256 key for `X-Conductor-Signature`. Never logged.
    pub secret: String,
    /// For https URLs: a PEM file of certificates to trust besides the system's CAs (the
    /// receiver's private CA, or its self-signed certificate); relative to the config file.
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for WebhookSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of any debug output.
        f.debug_struct("WebhookSection")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("modem", &self.modem)
            .field("number", &self.number)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The HTTP server's settings, checked (`http.*` fields named on error).
    pub fn http_settings(&self) -> Result<conductor_http::HttpConfig, ConfigError> {
        let path = match &self.source {
            Source::File(path) => path.clone(),
            Source::Defaults => PathBuf::from("(no config file)"),
        };
        let http = &self.file.http;
        let listen = http.listen.parse().map_err(|_| {
            invalid(
                &path,
                "http.listen",
                format!(
                    "{:?} is not an address:port such as \"127.0.0.1:8080\"",
                    http.listen
                ),
            )
        })?;
        // Relative to the config file; read (and checked) when the server starts, so commands
        // that never serve do not need to read the key.
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let tls = http.tls.as_ref().map(|t| conductor_http::TlsFiles {
            cert: base.join(&t.cert),
            key: base.join(&t.key),
        });
        let mut tokens = Vec::new();
        for (i, token) in http.tokens.iter().enumerate() {
            let scope = match token.scope {
                TokenScope::Read => conductor_http::Scope::Read,
                TokenScope::Full => conductor_http::Scope::Full,
            };
            tokens.push(
                conductor_http::Token::from_hex(token.name.clone(), &token.sha256, scope)
                    .ok_or_else(|| {
                        invalid(
                            &path,
                            format!("http.tokens[{i}].sha256"),
                            "expected 64 hex digits: the output of `printf %s TOKEN | sha256sum`",
                        )
                    })?,
            );
        }
        if http.body_limit_kib == 0 {
            return Err(invalid(&path, "http.body_limit_kib", "must be at least 1"));
        }
        if http.idempotency_ttl < Duration::from_secs(1) {
            return Err(invalid(
                &path,
                "http.idempotency_ttl",
                "must be at least 1s (a retried POST must find its first answer)",
            ));
        }
        let settings = conductor_http::HttpConfig {
            listen,
            tokens,
            body_limit: http.body_limit_kib.saturating_mul(1024),
            request_timeout: http.request_timeout,
            modems: self.file.modems.iter().map(|m| m.id.clone()).collect(),
            tls,
            idempotency_ttl: http.idempotency_ttl,
            sending: self.send_rules(),
            ..conductor_http::HttpConfig::default()
        };
        if http.enabled {
            settings
                .check()
                .map_err(|e| invalid(&path, "http.tokens", e.to_string()))?;
        }
        Ok(settings)
    }

    /// What a message must pass before it is queued (`send`, the API): `numbers`,
    /// `outbound.max_parts`, `outbound.transliterate`.
    pub fn send_rules(&self) -> conductor_store::policy::SendRules {
        conductor_store::policy::SendRules {
            numbers: self.file.numbers.policy(),
            max_parts: self.file.outbound.max_parts,
            transliterate: self.file.outbound.transliterate,
        }
    }

    /// The webhook settings, checked (`webhooks.*` fields named on error).
    pub fn webhook_settings(&self) -> Result<conductor_http::webhooks::WebhookConfig, ConfigError> {
        let path = match &self.source {
            Source::File(path) => path.clone(),
            Source::Defaults => PathBuf::from("(no config file)"),
        };
        let section = &self.file.webhooks;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let settings = conductor_http::webhooks::WebhookConfig {
            endpoints: section
                .endpoints
                .iter()
                .map(|e| conductor_http::webhooks::WebhookEndpoint {
                    name: e.name.clone().unwrap_or_else(|| e.url.clone()),
                    url: e.url.clone(),
                    events: e.events.clone(),
                    modem: e.modem.clone(),
                    number: e.number.clone(),
                    secret: e.secret.clone(),
                    ca: e.ca.as_ref().map(|ca| base.join(ca)),
                })
                .collect(),
            max_attempts: section.max_attempts,
            initial_backoff: section.initial_backoff,
            max_backoff: section.max_backoff,
            timeout: section.timeout,
            ..conductor_http::webhooks::WebhookConfig::default()
        };
        settings
            .check()
            .map_err(|e| invalid(&path, e.path(), e.message))?;
        Ok(settings)
    }
}

/// `database`: a SQLite file (`path`) or a URL (`sqlite://...` or `postgres://...`).
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// SQLite database file; relative to the config file. Default: `conductor.db` in the
    /// user's data folder (`/var/lib/conductor/conductor.db` for root).
    pub path: Option<PathBuf>,
    /// Instead of `path`: `sqlite:///abs/file.db`, `sqlite://relative.db`, or a
    /// `postgres://` URL (several gateway nodes sharing one database).
    pub url: Option<String>,
    /// PostgreSQL with several nodes: this node's id in modem leases, `status` and logs.
    /// Default: `<hostname>-<pid>`. A fixed id lets a restarted node take its modems back at
    /// once instead of after `lease_expiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How often this node renews each modem lease. Default `5s`.
    #[serde(
        default,
        with = "optional_duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub lease_heartbeat: Option<Duration>,
    /// How long a lease holds without renewal; a standby node takes a dead node's modems over
    /// after this plus one heartbeat. Default `20s` (takeover under 30 s).
    #[serde(
        default,
        with = "optional_duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub lease_expiry: Option<Duration>,
}

/// One modem.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModemSection {
    /// A short name for logs, `status` and the `modem_id` column, e.g. `"sim1"`.
    pub id: String,
    /// A serial device (`/dev/ttyUSB2`, `/dev/serial/by-id/...`, `COM3`) or `tcp://host:port`
    /// for network modems and ser2net. May be left out when `imei` or `iccid` is given; with
    /// one of them it is only the first port tried.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    /// The modem's IMEI (`conductor modem scan` prints it): its port is found by asking each
    /// serial port, at start and after every reconnect, so `/dev/ttyUSBn` renumbering after a
    /// USB reset does not lose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
    /// The SIM's ICCID, matched like `imei` (follows the SIM card from modem to modem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    /// Serial speed. Default 115200; ignored for TCP.
    #[serde(default = "default_baud_rate")]
    pub baud_rate: u32,
    /// Serial flow control: `none` (default), `hardware` (RTS/CTS) or `software` (XON/XOFF).
    #[serde(default)]
    pub flow_control: FlowControl,
    /// SIM PIN, sent only when the SIM asks for it. Never logged. A PIN the SIM rejects is
    /// never sent again (three wrong PINs lock the SIM): the modem shows `pin_wrong` until
    /// this is fixed and the daemon restarted.
    pub pin: Option<String>,
    /// Instead of `pin`: the name of an environment variable holding the PIN (`"SIM1_PIN"`),
    /// so the PIN stays out of the file. Read when the daemon starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_env: Option<String>,
    /// Whether this modem may send while roaming. Default `true` (many IoT SIMs always
    /// roam); `false` pauses sending while roaming (rows wait or go to another modem), to
    /// avoid roaming charges on a home SIM.
    #[serde(default = "default_true")]
    pub allow_roaming: bool,
    /// Whether a modem that stopped answering may be reset with `AT+CFUN=1,1` after ESC and
    /// an `AT` probe failed. Default `false`: the port is reopened instead.
    #[serde(default)]
    pub allow_reset: bool,
    /// Command timeouts in a row after which the modem counts as hung and the driver
    /// escalates (probe, reset if allowed, reopen). Default 3.
    #[serde(default = "default_hang_timeouts")]
    pub max_consecutive_timeouts: u32,
    /// How long a SIM that answers "busy" (or is not found) after power-on is waited for
    /// before it is reported (`sim_busy`, `sim_absent`) and retried with backoff. Default
    /// `30s`.
    #[serde(default = "default_sim_ready_timeout", with = "duration_text")]
    #[schemars(with = "String")]
    pub sim_ready_timeout: Duration,
    /// Corrections of the built-in quirks table for this modem (chosen from the model the
    /// modem reports; the start-up log says which): `index_base` (0 or 1), `cnmi` (settings
    /// such as `"2,1,0,2,0"` to try first), `memories` (`["SM", "ME"]`), `cmgl_may_hang`,
    /// `ignore_urcs` (line prefixes such as `"^RSSI"`).
    #[serde(default, skip_serializing_if = "QuirksSection::is_empty")]
    pub quirks: QuirksSection,
    /// SMSC number to set when the SIM has none (international form, `+...`).
    pub smsc: Option<String>,
    /// Message storage to use (`"SM"`, `"ME"`, `"MT"`); default: what the modem offers,
    /// preferring the SIM.
    pub storage: Option<String>,
    /// At most this many messages sent per minute by this modem, spaced evenly; also counts
    /// as `limits.per_minute` when that is not set. Default: no limit.
    pub rate_limit_per_minute: Option<u32>,
    /// Sending limits in SMS parts (per minute, hour, day; distinct recipients per day and
    /// month): a message that would break one waits until the window frees.
    #[serde(default)]
    pub limits: crate::policy_config::LimitsSection,
    /// Incoming calls: `{"reject": true, "auto_reply": "SMS only, please"}`. Default: logged
    /// as `call` events, nothing else.
    #[serde(default)]
    pub calls: CallsSection,
    /// A scheduled USSD balance check: `{"code": "*100#", "every": "12h", "low_below": 5.0}`.
    /// Each answer is a `balance_checked` event; an amount below `low_below` raises the
    /// `credit_low` alert. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<BalanceSection>,
}

/// `modems[].calls`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CallsSection {
    /// Hang up ringing calls (`AT+CHUP`, else `ATH`), so the line is free for SMS.
    pub reject: bool,
    /// Send this SMS to the caller (at most once per `auto_reply_interval` per caller; never
    /// to a withheld number).
    pub auto_reply: Option<String>,
    /// Default `1h`.
    #[serde(
        with = "optional_duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub auto_reply_interval: Option<Duration>,
}

/// `modems[].balance`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BalanceSection {
    /// The USSD code, e.g. `*100#`.
    pub code: String,
    /// How often, e.g. `12h`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub every: Duration,
    /// An amount below this raises `credit_low`.
    #[serde(default)]
    pub low_below: Option<f64>,
}

impl ModemSection {
    /// A modem with every optional field at its default: what `--modem DEVICE`, the demo
    /// and `config init` start from.
    pub fn new(id: impl Into<String>, device: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            device: device.into(),
            imei: None,
            iccid: None,
            baud_rate: default_baud_rate(),
            flow_control: FlowControl::None,
            pin: None,
            pin_env: None,
            allow_roaming: true,
            allow_reset: false,
            max_consecutive_timeouts: default_hang_timeouts(),
            sim_ready_timeout: default_sim_ready_timeout(),
            quirks: QuirksSection::default(),
            smsc: None,
            storage: None,
            rate_limit_per_minute: None,
            limits: crate::policy_config::LimitsSection::default(),
            calls: CallsSection::default(),
            balance: None,
        }
    }
}

fn default_baud_rate() -> u32 {
    115_200
}

fn default_true() -> bool {
    true
}

fn default_hang_timeouts() -> u32 {
    3
}

fn default_sim_ready_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `modems[].quirks`: each field given replaces the quirks table's value for this modem.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuirksSection {
    /// First storage index: 0 or 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_base: Option<u32>,
    /// `AT+CNMI` settings to try first, e.g. `["2,1,0,1,0"]` (`<mt>` must be 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnmi: Option<Vec<String>>,
    /// Memories the modem accepts in `AT+CPMS`, preferred first, e.g. `["SM", "ME"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memories: Option<Vec<String>>,
    /// `AT+CMGL` may hang with a full store: read a full store slot by slot instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmgl_may_hang: Option<bool>,
    /// Line prefixes that are vendor noise on this modem, e.g. `["^RSSI", "^HCSQ"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_urcs: Option<Vec<String>>,
}

impl QuirksSection {
    fn is_empty(&self) -> bool {
        *self == QuirksSection::default()
    }
}

/// Serial flow control.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowControl {
    /// No flow control (most USB modems).
    #[default]
    None,
    /// RTS/CTS.
    Hardware,
    /// XON/XOFF.
    Software,
}

/// When a received message's copy leaves the SIM.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeletePolicy {
    /// Keep it on the SIM until its row is no longer `unread`, then delete it ("option A").
    #[default]
    OnRead,
    /// Delete it as soon as its row is committed ("option B").
    OnStore,
}

/// `inbound`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSection {
    /// How often the SIM is listed to catch anything a `+CMTI` did not announce. Default `10s`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub sweep_interval: Duration,
    /// How long the parts of a long message are waited for before what arrived is stored,
    /// flagged incomplete (a late part still completes it). Default `1h`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub multipart_timeout: Duration,
    /// `on_read` (default) or `on_store`.
    pub delete_policy: DeletePolicy,
    /// Above this SIM fill level (percent) a warning is logged and messages already safe in
    /// the database are deleted from the SIM, oldest first. Default 80.
    pub capacity_threshold_percent: u8,
}

impl Default for InboundSection {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(10),
            multipart_timeout: Duration::from_secs(3600),
            delete_policy: DeletePolicy::OnRead,
            capacity_threshold_percent: 80,
        }
    }
}

/// What happens to a send a crash interrupted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Marked `unknown`, never resent by itself (promise 3; `requeue` resends).
    #[default]
    AtMostOnce,
    /// Queued again: the recipient may get it twice, but never zero times.
    AtLeastOnce,
}

/// `outbound`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSection {
    /// Same text to the same number inside this window is marked `duplicate`; `0s` turns it
    /// off. Default `10m`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub duplicate_window: Duration,
    /// Ask the network for delivery reports. Default true.
    pub status_reports: bool,
    /// Tries for a send the modem refuses with a retryable error. Default 5.
    pub max_attempts: u32,
    /// First wait before a retry; doubles each time. Default `30s`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub retry_backoff: Duration,
    /// `at_most_once` (default) or `at_least_once`.
    pub delivery: Delivery,
    /// How long the network keeps trying to deliver (TP-VP); default: the network's own.
    #[serde(with = "optional_duration_text")]
    #[schemars(with = "Option<String>")]
    pub validity: Option<Duration>,
    /// Which modem sends a row that names none: `strategy`, `sticky`, `prefixes`.
    pub routing: crate::policy_config::RoutingSection,
    /// SMS parts per hour to one recipient, over every modem. Default: no limit.
    pub recipient_per_hour: Option<u32>,
    /// `{"start": "21:00", "end": "08:00"}` (local time): rows that are not transactional
    /// wait, with a reason. Default: none.
    pub quiet_hours: Option<crate::policy_config::QuietHoursSection>,
    /// A row still queued this long after it became due becomes `expired` instead of going
    /// out late. Default: none.
    #[serde(with = "optional_duration_text")]
    #[schemars(with = "Option<String>")]
    pub default_ttl: Option<Duration>,
    /// Texts needing more SMS parts are refused with the count. Default: none (up to 255).
    pub max_parts: Option<u32>,
    /// Replace typographic quotes, dashes, ellipses and accents outside the GSM table with
    /// plain equivalents when that keeps the whole text in GSM 7-bit (half the parts of
    /// UCS-2). Default true.
    pub transliterate: bool,
    /// Inbound texts (whole message, any case and spacing) that block their sender. Default:
    /// STOP, STOPP, STOPALL, UNSUBSCRIBE, ARRET, ARRÊT, BAJA, ABMELDEN, AFMELDEN, STOPPA,
    /// DESATIVAR.
    pub stop_keywords: Vec<String>,
    /// Inbound texts that unblock their sender. Default: START, UNSTOP.
    pub start_keywords: Vec<String>,
}

impl Default for OutboundSection {
    fn default() -> Self {
        let gateway = conductor_gateway::OutboundConfig::default();
        Self {
            duplicate_window: Duration::from_secs(600),
            status_reports: true,
            max_attempts: 5,
            retry_backoff: Duration::from_secs(30),
            delivery: Delivery::AtMostOnce,
            validity: None,
            routing: crate::policy_config::RoutingSection::default(),
            recipient_per_hour: None,
            quiet_hours: None,
            default_ttl: None,
            max_parts: None,
            transliterate: gateway.transliterate,
            stop_keywords: gateway.stop_keywords,
            start_keywords: gateway.start_keywords,
        }
    }
}

/// `logging`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    /// `error`, `warn`, `info` (default), `debug` (modem traffic) or a `RUST_LOG`-style filter.
    /// `RUST_LOG` in the environment wins.
    pub level: String,
    /// Log file; relative to the config file. Default: none (console only).
    pub file: Option<PathBuf>,
    /// Rotate the file when it reaches this many mebibytes. Default 10.
    pub max_file_mib: u64,
    /// Rotated files kept, gzip-compressed (`FILE.1.gz` is the newest); the total stays under
    /// `max_file_mib` × (this + 1). Default 5.
    pub max_files: usize,
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
            file: None,
            max_file_mib: 10,
            max_files: 5,
        }
    }
}

/// Durations written as text: `10s`, `5m`, `1h 30m`, `2days`.
mod duration_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "{e}: expected a duration such as \"10s\", \"5m\", \"1h 30m\", \"2days\""
            ))
        })
    }
}

/// Like [`duration_text`], for optional durations (`null` or absent = none).
mod optional_duration_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => humantime::parse_duration(&text).map(Some).map_err(|e| {
                serde::de::Error::custom(format!(
                    "{e}: expected a duration such as \"30m\", \"1day\" or null"
                ))
            }),
        }
    }
}

/// Where the config was found, for messages that tell the user which file is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file (from `--config`, `CONDUCTOR_CONFIG` or the default location).
    File(PathBuf),
    /// No file: defaults plus command-line overrides.
    Defaults,
}

/// Command-line and environment overrides that win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config FILE` (or `CONDUCTOR_CONFIG`).
    pub config: Option<PathBuf>,
    /// `--db PATH` (or `CONDUCTOR_DB`): a SQLite path or a database URL.
    pub db: Option<String>,
    /// `--modem DEVICE` (repeatable), for `run`: replaces the file's modems.
    pub modems: Vec<String>,
}

/// The database in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// A URL with its password replaced, for logs and messages.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    /// Where it came from.
    pub source: Source,
    /// The database in force.
    pub database: Database,
    /// The file's sections, checked; paths in them made absolute.
    pub file: ConfigFile,
}

impl Config {
    /// Finds, reads and resolves the configuration.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let env_config = std::env::var_os("CONDUCTOR_CONFIG").map(PathBuf::from);
        let explicit = overrides.config.clone().or(env_config);
        let (source, file) = match explicit {
            // Named explicitly: it must exist.
            Some(path) => {
                let file = read_file(&path)?;
                (Source::File(path), file)
            }
            None => match default_config_path().filter(|p| p.exists()) {
                Some(path) => {
                    let file = read_file(&path)?;
                    (Source::File(path), file)
                }
                None => (Source::Defaults, ConfigFile::default()),
            },
        };
        Self::resolve(source, file, overrides)
    }

    /// Checks the file's values and applies the overrides.
    pub fn resolve(
        source: Source,
        mut file: ConfigFile,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let (base, file_path) = match &source {
            Source::File(path) => (
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
                path.clone(),
            ),
            Source::Defaults => (PathBuf::new(), PathBuf::from("(no config file)")),
        };
        let env_db = std::env::var("CONDUCTOR_DB").ok();
        let database = match overrides.db.clone().or(env_db) {
            Some(db) => {
                parse_database(&db, Path::new("")).map_err(|m| invalid(&file_path, "--db", m))?
            }
            None => match (&file.database.path, &file.database.url) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &file_path,
                        "database",
                        "give either `path` or `url`, not both",
                    ));
                }
                (Some(path), None) => Database::Sqlite(base.join(path)),
                (None, Some(url)) => parse_database(url, &base)
                    .map_err(|m| invalid(&file_path, "database.url", m))?,
                (None, None) => Database::Sqlite(default_database_path()),
            },
        };
        check_lease_timings(&file.database, &file_path)?;
        if !overrides.modems.is_empty() {
            file.modems = overrides
                .modems
                .iter()
                .enumerate()
                .map(|(i, device)| ModemSection::new(format!("modem{}", i + 1), device.clone()))
                .collect();
        }
        let mut seen = std::collections::HashSet::new();
        for (i, modem) in file.modems.iter().enumerate() {
            if modem.id.trim().is_empty() {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].id"),
                    "must not be empty",
                ));
            }
            if !seen.insert(modem.id.clone()) {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].id"),
                    format!(
                        "\"{}\" is used twice; each modem needs its own id",
                        modem.id
                    ),
                ));
            }
            if modem.device.trim().is_empty() && modem.imei.is_none() && modem.iccid.is_none() {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].device"),
                    "expected a serial device such as \"/dev/ttyUSB2\" or \"tcp://host:port\", \
                     or an \"imei\"/\"iccid\" to find the modem by (`conductor modem scan` \
                     prints both)",
                ));
            }
            for (field, value, lengths) in [
                ("imei", &modem.imei, 14..=17),
                ("iccid", &modem.iccid, 18..=22),
            ] {
                if let Some(value) = value
                    && (!lengths.contains(&value.len())
                        || !value.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(invalid(
                        &file_path,
                        format!("modems[{i}].{field}"),
                        format!(
                            "expected {} to {} digits, as `conductor modem scan` prints it",
                            lengths.start(),
                            lengths.end()
                        ),
                    ));
                }
            }
            if modem.pin.is_some() && modem.pin_env.is_some() {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].pin_env"),
                    "give either `pin` or `pin_env` (the name of an environment variable \
                     holding the PIN), not both",
                ));
            }
            if let Some(var) = &modem.pin_env
                && (var.is_empty() || var.contains('=') || var.contains('\0'))
            {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].pin_env"),
                    "expected the name of an environment variable, such as \"SIM1_PIN\"",
                ));
            }
            if modem.max_consecutive_timeouts == 0 {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].max_consecutive_timeouts"),
                    "must be at least 1",
                ));
            }
            if let Some(base) = modem.quirks.index_base
                && base > 1
            {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].quirks.index_base"),
                    "expected 0 or 1",
                ));
            }
            if let Some(pin) = &modem.pin
                && (!(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].pin"),
                    "a SIM PIN is 4 to 8 digits",
                ));
            }
        }
        if !(1..=100).contains(&file.inbound.capacity_threshold_percent) {
            return Err(invalid(
                &file_path,
                "inbound.capacity_threshold_percent",
                "expected a percentage from 1 to 100",
            ));
        }
        if file.outbound.max_attempts == 0 {
            return Err(invalid(
                &file_path,
                "outbound.max_attempts",
                "must be at least 1",
            ));
        }
        if file.inbound.sweep_interval < Duration::from_secs(1) {
            return Err(invalid(
                &file_path,
                "inbound.sweep_interval",
                "must be at least 1s",
            ));
        }
        if !is_level_filter(&file.logging.level) {
            // EnvFilter takes a bare word as a target name, so a typo such as "warning" would
            // silently log nothing at all: refuse it here, naming the field (promise 5).
            return Err(invalid(
                &file_path,
                "logging.level",
                format!(
                    "{:?} is not a level: use error, warn, info, debug, trace or off, or a \
                     filter such as \"info,conductor_modem=debug\"",
                    file.logging.level
                ),
            ));
        }
        if let Some(log) = &file.logging.file {
            file.logging.file = Some(base.join(log));
        }
        file.backup.resolve_paths(&base);
        file.retention.resolve_paths(&base);
        let config = Self {
            source,
            database,
            file,
        };
        // `http` and `webhooks` are checked here too, so `config check` reports them.
        config.http_settings()?;
        config.webhook_settings()?;
        config.backup_plan()?;
        config.retention_plan()?;
        config.alert_settings()?;
        config.script_settings()?;
        config.alert_sms_settings()?;
        Ok(config)
    }
}

/// Whether `filter` is a level or a `RUST_LOG`-style list whose every directive ends in a
/// level (`info`, `warn,conductor_modem=debug`).
fn is_level_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let is_level = |word: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(word.trim()));
    !filter.trim().is_empty()
        && filter
            .split(',')
            .filter(|d| !d.trim().is_empty())
            .all(|directive| match directive.rsplit_once('=') {
                Some((target, level)) => !target.trim().is_empty() && is_level(level),
                None => is_level(directive),
            })
}

/// Reads and parses a config file, naming the failing field's path.
pub fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses config JSON; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().to_string();
        let field = if field == "." {
            "(top level)".into()
        } else {
            field
        };
        invalid(path, field, error.into_inner().to_string())
    })
}

fn parse_database(text: &str, base: &Path) -> Result<Database, String> {
    if let Some(rest) = text.strip_prefix("sqlite://") {
        if rest.is_empty() {
            return Err("`sqlite://` needs a file, e.g. sqlite:///var/lib/conductor/gw.db".into());
        }
        return Ok(Database::Sqlite(base.join(rest)));
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(Database::Postgres(text.to_owned()));
    }
    if text.contains("://") {
        return Err(format!(
            "unsupported database URL \"{}\": use a file path, sqlite://FILE or postgres://...",
            redact_url(text)
        ));
    }
    if text.trim().is_empty() {
        return Err("expected a SQLite file path or a database URL".into());
    }
    Ok(Database::Sqlite(base.join(text)))
}

fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        std::env::var("USER").is_ok_and(|u| u == "root")
            || std::env::var("HOME").is_ok_and(|h| h == "/root")
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// `/etc/conductor/config.json` for root, else `<config dir>/conductor/config.json`.
pub fn default_config_path() -> Option<PathBuf> {
    if running_as_root() && cfg!(unix) {
        return Some(PathBuf::from("/etc/conductor/config.json"));
    }
    dirs::config_dir().map(|d| d.join("conductor").join("config.json"))
}

/// `/var/lib/conductor/conductor.db` for root, else `<data dir>/conductor/conductor.db`,
/// else `conductor.db` in the working folder.
pub fn default_database_path() -> PathBuf {
    if running_as_root() && cfg!(unix) {
        return PathBuf::from("/var/lib/conductor/conductor.db");
    }
    dirs::data_dir()
        .map(|d| d.join("conductor").join("conductor.db"))
        .unwrap_or_else(|| PathBuf::from("conductor.db"))
}

/// The JSON Schema of the config file, for editors (`conductor config schema`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ConfigFile)).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Resolves config text as if read from `/etc/gw/config.json`, without overrides: the one
    /// way the config modules' tests build a [`Config`].
    pub(crate) fn resolve_text(text: &str) -> Result<Config, ConfigError> {
        let path = PathBuf::from("/etc/gw/config.json");
        let file = parse(text, &path)?;
        Config::resolve(Source::File(path), file, &Overrides::default())
    }

    #[test]
    fn a_lease_expiry_within_two_heartbeats_is_refused_naming_the_field_and_the_fix() {
        let config = |database: &str| {
            resolve_text(&format!(
                r#"{{"modems": [{{"id": "a", "device": "tcp://127.0.0.1:7"}}],
                    "database": {{"url": "postgres://u@h/db", {database}}}}}"#
            ))
        };
        for (database, field) in [
            (
                r#""lease_heartbeat": "5s", "lease_expiry": "9s""#,
                "database.lease_expiry",
            ),
            (
                r#""lease_heartbeat": "5s", "lease_expiry": "5s""#,
                "database.lease_expiry",
            ),
            // Only the heartbeat set: it is compared with the default expiry (20 s).
            (r#""lease_heartbeat": "15s""#, "database.lease_heartbeat"),
            (r#""lease_heartbeat": "0s""#, "database.lease_heartbeat"),
        ] {
            match config(database) {
                Err(ConfigError::Invalid {
                    field: f, message, ..
                }) => {
                    assert_eq!(f, field, "{database}");
                    assert!(message.contains("lease_heartbeat"), "{message}");
                }
                other => panic!("{database} was not refused: {other:?}"),
            }
        }
        let Err(ConfigError::Invalid { message, .. }) =
            config(r#""lease_heartbeat": "5s", "lease_expiry": "9s""#)
        else {
            panic!("refused above");
        };
        assert!(message.contains("raise lease_expiry to 20s"), "{message}");
        for good in [
            r#""lease_heartbeat": "5s", "lease_expiry": "10s""#,
            r#""lease_heartbeat": "1s", "lease_expiry": "6s""#,
            r#""node": "a""#,
        ] {
            assert!(config(good).is_ok(), "{good}: {:?}", config(good).err());
        }
    }

    #[test]
    fn a_log_level_typo_is_refused_naming_the_field_and_filters_still_work() {
        let base = r#"{"modems": [{"id": "a", "device": "/dev/ttyUSB2"}], "logging": {"level": "#;
        for good in [
            "info",
            "WARN",
            "off",
            "warn,conductor_modem=debug",
            "conductor=trace",
        ] {
            let config = resolve_text(&format!("{base}\"{good}\"}}}}"));
            assert!(config.is_ok(), "{good}: {config:?}");
        }
        for bad in ["loud", "warning", "", "info,conductor_modem"] {
            let error = resolve_text(&format!("{base}\"{bad}\"}}}}"))
                .expect_err(bad)
                .to_string();
            assert!(error.contains("logging.level"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_modem_may_be_named_by_imei_or_iccid_instead_of_a_device() {
        let by_imei = resolve_text(r#"{"modems": [{"id": "a", "imei": "353123456789012"}]}"#)
            .expect("an IMEI is enough");
        assert_eq!(by_imei.file.modems[0].device, "");
        let nothing = resolve_text(r#"{"modems": [{"id": "a"}]}"#).expect_err("no way to find it");
        assert!(nothing.to_string().contains("imei"), "{nothing}");
        let bad =
            resolve_text(r#"{"modems": [{"id": "a", "iccid": "89-49"}]}"#).expect_err("not digits");
        assert!(bad.to_string().contains("modems[0].iccid"), "{bad}");
    }

    #[test]
    fn a_file_with_only_database_and_modems_is_complete() {
        let config = resolve_text(
            r#"{"database": {"path": "gw.db"}, "modems": [{"id": "sim1", "device": "/dev/ttyUSB2"}]}"#,
        )
        .expect("minimal config resolves");
        assert_eq!(config.database, Database::Sqlite("/etc/gw/gw.db".into()));
        assert_eq!(config.file.modems[0].baud_rate, 115_200);
        assert_eq!(config.file.inbound.sweep_interval, Duration::from_secs(10));
        assert_eq!(config.file.inbound.delete_policy, DeletePolicy::OnRead);
        assert_eq!(
            config.file.outbound.duplicate_window,
            Duration::from_secs(600)
        );
        assert_eq!(config.file.outbound.delivery, Delivery::AtMostOnce);
    }

    #[test]
    fn an_unknown_field_is_named_by_its_path() {
        let error = resolve_text(r#"{"modems": [{"id": "a", "device": "x", "baud": 9600}]}"#)
            .expect_err("unknown field");
        let text = error.to_string();
        assert!(text.contains("modems[0]"), "{text}");
        assert!(text.contains("baud"), "{text}");
    }

    #[test]
    fn a_bad_duration_names_the_field_and_the_expected_form() {
        let error =
            resolve_text(r#"{"inbound": {"sweep_interval": "often"}}"#).expect_err("bad duration");
        let text = error.to_string();
        assert!(text.contains("inbound.sweep_interval"), "{text}");
        assert!(text.contains("\"10s\""), "{text}");
    }

    #[test]
    fn duplicate_modem_ids_and_bad_pins_are_refused() {
        let twice = r#"{"modems": [{"id": "a", "device": "x"}, {"id": "a", "device": "y"}]}"#;
        assert!(
            resolve_text(twice)
                .expect_err("dup")
                .to_string()
                .contains("modems[1].id")
        );
        let pin = r#"{"modems": [{"id": "a", "device": "x", "pin": "12ab"}]}"#;
        assert!(
            resolve_text(pin)
                .expect_err("pin")
                .to_string()
                .contains("modems[0].pin")
        );
    }

    #[test]
    fn hardware_settings_have_their_defaults_and_pin_env_excludes_pin() {
        let plain = r#"{"modems": [{"id": "a", "device": "x"}]}"#;
        let config = resolve_text(plain).expect("valid");
        let modem = &config.file.modems[0];
        assert!(modem.allow_roaming && !modem.allow_reset);
        assert_eq!(modem.max_consecutive_timeouts, 3);
        assert_eq!(modem.sim_ready_timeout, Duration::from_secs(30));
        let env = r#"{"modems": [{"id": "a", "device": "x", "pin_env": "SIM1_PIN",
            "allow_roaming": false, "quirks": {"index_base": 0, "cmgl_may_hang": true}}]}"#;
        let config = resolve_text(env).expect("valid");
        assert_eq!(config.file.modems[0].pin_env.as_deref(), Some("SIM1_PIN"));
        assert_eq!(config.file.modems[0].quirks.index_base, Some(0));
        let both = r#"{"modems": [{"id": "a", "device": "x", "pin": "1234", "pin_env": "P"}]}"#;
        assert!(
            resolve_text(both)
                .expect_err("both")
                .to_string()
                .contains("modems[0].pin_env")
        );
    }

    #[test]
    fn database_urls_resolve_and_passwords_stay_out_of_messages() {
        let config = resolve_text(r#"{"database": {"url": "sqlite://data/gw.db"}}"#).expect("url");
        assert_eq!(
            config.database,
            Database::Sqlite("/etc/gw/data/gw.db".into())
        );
        let config =
            resolve_text(r#"{"database": {"url": "postgres://gw:secret@db/sms"}}"#).expect("pg");
        assert_eq!(config.database.to_string(), "postgres://gw:***@db/sms");
        let error = resolve_text(r#"{"database": {"url": "mysql://x"}}"#).expect_err("mysql");
        assert!(error.to_string().contains("database.url"));
    }

    #[test]
    fn command_line_overrides_win_over_the_file() {
        let path = PathBuf::from("/etc/gw/config.json");
        let file = parse(
            r#"{"database": {"path": "gw.db"}, "modems": [{"id": "a", "device": "x"}]}"#,
            &path,
        )
        .expect("parses");
        let overrides = Overrides {
            config: None,
            db: Some("/tmp/other.db".into()),
            modems: vec!["tcp://127.0.0.1:7001".into()],
        };
        let config = Config::resolve(Source::File(path), file, &overrides).expect("resolves");
        assert_eq!(config.database, Database::Sqlite("/tmp/other.db".into()));
        assert_eq!(config.file.modems.len(), 1);
        assert_eq!(config.file.modems[0].device, "tcp://127.0.0.1:7001");
        assert_eq!(config.file.modems[0].id, "modem1");
    }

    #[test]
    fn the_schema_describes_every_section() {
        let schema = schema().to_string();
        for key in [
            "database",
            "modems",
            "inbound",
            "outbound",
            "logging",
            "delete_policy",
            "http",
            "webhooks",
            "alerts",
        ] {
            assert!(schema.contains(key), "schema lacks {key}");
        }
    }

    #[test]
    fn http_defaults_to_loopback_port_8080_and_refuses_an_open_public_listener() {
        let config =
            resolve_text(r#"{"modems": [{"id": "a", "device": "/dev/ttyUSB0"}]}"#).expect("valid");
        let http = config.http_settings().expect("http settings");
        assert_eq!(http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(http.modems, vec!["a".to_owned()]);
        let open = resolve_text(r#"{"http": {"listen": "0.0.0.0:8080"}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            open.contains("http.tokens") && open.contains("not a loopback"),
            "{open}"
        );
        let hash = "0".repeat(64);
        let guarded = format!(
            r#"{{"http": {{"listen": "0.0.0.0:8080", "tokens": [{{"name": "n8n", "sha256": "{hash}", "scope": "read"}}]}}}}"#
        );
        assert!(resolve_text(&guarded).is_ok());
        let bad_hash = resolve_text(r#"{"http": {"tokens": [{"name": "x", "sha256": "abc"}]}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(bad_hash.contains("http.tokens[0].sha256"), "{bad_hash}");
        let tls = resolve_text(r#"{"http": {"tls": {"cert": "c.pem", "key": "/k.pem"}}}"#)
            .expect("TLS files are read at start, not here")
            .http_settings()
            .expect("http settings")
            .tls;
        assert_eq!(
            tls,
            Some(conductor_http::TlsFiles {
                cert: PathBuf::from("/etc/gw/c.pem"),
                key: PathBuf::from("/k.pem"),
            })
        );
        let ttl = resolve_text(r#"{"http": {"idempotency_ttl": "90s"}}"#)
            .expect("valid")
            .http_settings()
            .expect("http settings")
            .idempotency_ttl;
        assert_eq!(ttl, Duration::from_secs(90));
        let zero = resolve_text(r#"{"http": {"idempotency_ttl": "0s"}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(zero.contains("http.idempotency_ttl"), "{zero}");
    }

    #[test]
    fn webhook_endpoints_are_checked_with_their_path() {
        let https = resolve_text(
            r#"{"webhooks": {"endpoints": [{"url": "https://example.invalid/x", "secret": "s", "ca": "ca.pem"}]}}"#,
        )
        .expect("https with a CA file is valid")
        .webhook_settings()
        .expect("webhook settings");
        assert_eq!(
            https.endpoints[0].ca.as_deref(),
            Some(Path::new("/etc/gw/ca.pem"))
        );
        let ftp = resolve_text(
            r#"{"webhooks": {"endpoints": [{"url": "ftp://example.invalid/x", "secret": "s"}]}}"#,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(ftp.contains("webhooks.endpoints[0].url"), "{ftp}");
        let config = resolve_text(
            r#"{"webhooks": {"endpoints": [{"url": "http://127.0.0.1:5678/hook", "secret": "s", "events": ["message.received"]}]}}"#,
        )
        .expect("valid");
        let hooks = config.webhook_settings().expect("webhooks");
        assert_eq!(hooks.endpoints[0].name, "http://127.0.0.1:5678/hook");
        assert_eq!(hooks.max_attempts, 40);
    }
}
