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
    /// Sending: duplicates, retries, status reports, delivery guarantee.
    #[serde(default)]
    pub outbound: OutboundSection,
    /// Logging to the console and to rotating files.
    #[serde(default)]
    pub logging: LoggingSection,
    /// The HTTP API, dashboard and metrics served by `run` and `demo`.
    #[serde(default)]
    pub http: HttpSection,
    /// Signed webhooks: where events are posted, and how failed deliveries are retried.
    #[serde(default)]
    pub webhooks: WebhooksSection,
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
    /// TLS from PEM files. Not supported by this build yet: put a reverse proxy in front.
    pub tls: Option<TlsSection>,
    /// Largest request body, in KiB. Default 1024.
    pub body_limit_kib: usize,
    /// A request without an answer after this long gets 503. Default `30s`.
    #[serde(with = "duration_text")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
            tokens: Vec::new(),
            tls: None,
            body_limit_kib: 1024,
            request_timeout: Duration::from_secs(30),
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

/// TLS certificate and key, PEM.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Certificate chain; relative to the config file.
    pub cert: PathBuf,
    /// Private key; relative to the config file.
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
    /// `http://host:port/path`.
    pub url: String,
    /// Events to send: `message.received`, `message.sent`, `message.delivered`,
    /// `message.failed`, `modem.down`, `modem.up`, `sim.capacity_warning`. Default: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only events of this modem.
    pub modem: Option<String>,
    /// Only messages to or from this number.
    pub number: Option<String>,
    /// The HMAC-SHA256 key for `X-Conductor-Signature`. Never logged.
    pub secret: String,
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
        if http.tls.is_some() {
            return Err(invalid(
                &path,
                "http.tls",
                "TLS is not supported by this build yet: remove it and put a reverse proxy \
                 (nginx, caddy) in front for HTTPS",
            ));
        }
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
        let settings = conductor_http::HttpConfig {
            listen,
            tokens,
            body_limit: http.body_limit_kib.saturating_mul(1024),
            request_timeout: http.request_timeout,
            modems: self.file.modems.iter().map(|m| m.id.clone()).collect(),
            ..conductor_http::HttpConfig::default()
        };
        if http.enabled {
            settings
                .check()
                .map_err(|e| invalid(&path, "http.tokens", e.to_string()))?;
        }
        Ok(settings)
    }

    /// The webhook settings, checked (`webhooks.*` fields named on error).
    pub fn webhook_settings(&self) -> Result<conductor_http::webhooks::WebhookConfig, ConfigError> {
        let path = match &self.source {
            Source::File(path) => path.clone(),
            Source::Defaults => PathBuf::from("(no config file)"),
        };
        let section = &self.file.webhooks;
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
                })
                .collect(),
            max_attempts: section.max_attempts,
            initial_backoff: section.initial_backoff,
            max_backoff: section.max_backoff,
            timeout: section.timeout,
            ..conductor_http::webhooks::WebhookConfig::default()
        };
        settings.check().map_err(|e| {
            let field = if e.field == "max_attempts" {
                "webhooks.max_attempts".to_owned()
            } else {
                format!("webhooks.endpoints[{}].{}", e.index, e.field)
            };
            invalid(&path, field, e.message)
        })?;
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
}

/// One modem.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModemSection {
    /// A short name for logs, `status` and the `modem_id` column, e.g. `"sim1"`.
    pub id: String,
    /// A serial device (`/dev/ttyUSB2`, `/dev/serial/by-id/...`, `COM3`) or `tcp://host:port`
    /// for network modems and ser2net.
    pub device: String,
    /// Serial speed. Default 115200; ignored for TCP.
    #[serde(default = "default_baud_rate")]
    pub baud_rate: u32,
    /// Serial flow control: `none` (default), `hardware` (RTS/CTS) or `software` (XON/XOFF).
    #[serde(default)]
    pub flow_control: FlowControl,
    /// SIM PIN, sent only when the SIM asks for it. Never logged.
    pub pin: Option<String>,
    /// SMSC number to set when the SIM has none (international form, `+...`).
    pub smsc: Option<String>,
    /// Message storage to use (`"SM"`, `"ME"`, `"MT"`); default: what the modem offers,
    /// preferring the SIM.
    pub storage: Option<String>,
    /// At most this many messages sent per minute by this modem; default: no limit.
    pub rate_limit_per_minute: Option<u32>,
}

impl ModemSection {
    /// A modem with every optional field at its default: what `--modem DEVICE`, the demo
    /// and `config init` start from.
    pub fn new(id: impl Into<String>, device: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            device: device.into(),
            baud_rate: default_baud_rate(),
            flow_control: FlowControl::None,
            pin: None,
            smsc: None,
            storage: None,
            rate_limit_per_minute: None,
        }
    }
}

fn default_baud_rate() -> u32 {
    115_200
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
}

impl Default for OutboundSection {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(600),
            status_reports: true,
            max_attempts: 5,
            retry_backoff: Duration::from_secs(30),
            delivery: Delivery::AtMostOnce,
            validity: None,
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
    /// Rotated files kept (the total is capped at `max_file_mib` × this). Default 5.
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
            if modem.device.trim().is_empty() {
                return Err(invalid(
                    &file_path,
                    format!("modems[{i}].device"),
                    "expected a serial device such as \"/dev/ttyUSB2\" or \"tcp://host:port\"",
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
        let config = Self {
            source,
            database,
            file,
        };
        // `http` and `webhooks` are checked here too, so `config check` reports them.
        config.http_settings()?;
        config.webhook_settings()?;
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
mod tests {
    use super::*;

    fn resolve_text(text: &str) -> Result<Config, ConfigError> {
        let path = PathBuf::from("/etc/gw/config.json");
        let file = parse(text, &path)?;
        Config::resolve(Source::File(path), file, &Overrides::default())
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
        let tls = resolve_text(r#"{"http": {"tls": {"cert": "c.pem", "key": "k.pem"}}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(tls.contains("http.tls"), "{tls}");
    }

    #[test]
    fn webhook_endpoints_are_checked_with_their_path() {
        let https = resolve_text(
            r#"{"webhooks": {"endpoints": [{"url": "https://example.invalid/x", "secret": "s"}]}}"#,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(https.contains("webhooks.endpoints[0].url"), "{https}");
        let config = resolve_text(
            r#"{"webhooks": {"endpoints": [{"url": "http://127.0.0.1:5678/hook", "secret": "s", "events": ["message.received"]}]}}"#,
        )
        .expect("valid");
        let hooks = config.webhook_settings().expect("webhooks");
        assert_eq!(hooks.endpoints[0].name, "http://127.0.0.1:5678/hook");
        assert_eq!(hooks.max_attempts, 40);
    }
}
