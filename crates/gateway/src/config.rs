//! [`GatewayConfig`]: the gateway's typed, already validated settings.
//!
//! Why typed and separate from the config file: the binary's config layer reads what the user
//! wrote (JSON, field paths in errors) and resolves it once into these values ("parse, don't
//! validate", STYLE "CLI and config"); tests and the demo build them directly with struct update
//! syntax over [`Default`]. Defaults match DESIGN.md: a 10 s sweep, an 80 % capacity threshold,
//! a 10 minute duplicate window, delete-on-read, at-most-once delivery.

use std::time::Duration;

use conductor_modem::ModemConfig;
pub use conductor_store::DeletePolicy;
use conductor_store::policy::{
    DEFAULT_START_KEYWORDS, DEFAULT_STOP_KEYWORDS, Limits, NumberPolicy, Routing,
};

pub use crate::policy::QuietHours;

/// Everything the gateway needs to run.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The modems, each with its own task, inbound pipeline, SIM lifecycle and status row.
    pub modems: Vec<ModemSettings>,
    /// Receiving.
    pub inbound: InboundConfig,
    /// Sending.
    pub outbound: OutboundConfig,
    /// A modem's status row is written whenever it changes and at least this often, so
    /// `status`/`health` can judge staleness by `updated_at` without opening a port.
    pub status_interval: Duration,
    /// How often the database is checked for commits by other processes (`PRAGMA
    /// data_version`, a counter in shared memory): rows they insert are sent, and rows they
    /// mark read are deleted from the SIM, within about this long (promise 4: within a second).
    pub change_poll_interval: Duration,
    /// This node's id and its modem leases, on a database several nodes share (PostgreSQL;
    /// unused on SQLite).
    pub cluster: crate::lease::ClusterConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            modems: Vec::new(),
            inbound: InboundConfig::default(),
            outbound: OutboundConfig::default(),
            status_interval: Duration::from_secs(15),
            change_poll_interval: Duration::from_millis(250),
            cluster: crate::lease::ClusterConfig::default(),
        }
    }
}

/// One modem.
#[derive(Clone, Debug)]
pub struct ModemSettings {
    /// The modem's id: the `modem_id` in every row it touches, and its name in logs. Also the
    /// name of its driver task (`modem.name` is set to it when empty).
    pub id: String,
    /// The driver's settings (device, PIN, storage, backoff, …).
    pub modem: ModemConfig,
    /// At most this many messages sent per minute by this modem (spaced evenly); `None`: no
    /// limit. Some operators block SIMs that send in bursts. Also counts as
    /// `limits.per_minute` when that is not set.
    pub rate_limit_per_minute: Option<u32>,
    /// Sending limits (parts per minute/hour/day, distinct recipients per day/month): a
    /// message that would break one waits, with a reason, until the window frees.
    pub limits: Limits,
    /// Incoming calls: reject, auto-reply (module `calls`).
    pub calls: crate::calls::CallSettings,
    /// The scheduled USSD balance check, if any (module `balance`).
    pub balance: Option<crate::balance::BalanceCheck>,
}

impl ModemSettings {
    /// A modem with the driver's defaults for everything but its id and device.
    pub fn new(id: impl Into<String>, device: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            modem: ModemConfig::new(id.clone(), device),
            id,
            rate_limit_per_minute: None,
            limits: Limits::default(),
            calls: crate::calls::CallSettings::default(),
            balance: None,
        }
    }
}

/// Receiving (DESIGN.md "Receiving", "Lifecycle").
#[derive(Clone, Debug)]
pub struct InboundConfig {
    /// How often the read memory is listed (`AT+CMGL=4`) to catch what a `+CMTI` did not
    /// announce (lost URCs, messages stored while the daemon was down).
    pub sweep_interval: Duration,
    /// How long the parts of a long message are waited for before what arrived is stored as
    /// one message flagged incomplete (a late part still completes that row).
    pub multipart_timeout: Duration,
    /// When a received message's copy leaves the SIM.
    pub delete_policy: DeletePolicy,
    /// Above this fill level (percent) of the receive memory a warning is logged and copies
    /// already safe in the database are deleted, oldest first, even if unread.
    pub capacity_threshold_percent: u8,
    /// How often `AT+CPMS?` is read besides after every sweep.
    pub capacity_check_interval: Duration,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(10),
            multipart_timeout: Duration::from_secs(3600),
            delete_policy: DeletePolicy::OnRead,
            capacity_threshold_percent: 80,
            capacity_check_interval: Duration::from_secs(60),
        }
    }
}

/// What happens to a send that a crash interrupted after its PDU may have left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// The row becomes `unknown` and is never resent by itself (promise 3); `requeue` resends.
    #[default]
    AtMostOnce,
    /// The row is queued again: the recipient may get it twice, but never zero times.
    AtLeastOnce,
}

/// Sending (DESIGN.md "Sending").
#[derive(Clone, Debug)]
pub struct OutboundConfig {
    /// Same recipient and text inside this window is marked `duplicate`; zero turns it off.
    pub duplicate_window: Duration,
    /// Sources (`cli`, `api`, `sql`, …) whose rows are never checked for duplicates.
    pub duplicate_exempt_sources: Vec<String>,
    /// Ask for status reports when the row does not say (`status_report` NULL).
    pub status_reports: bool,
    /// Attempts in all for a send the modem refuses with a retryable error.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with each further attempt.
    pub retry_backoff: Duration,
    /// At-most-once (default) or at-least-once after a crash.
    pub delivery: Delivery,
    /// TP-VP: how long the network keeps trying to deliver; `None`: the network's default.
    pub validity: Option<Duration>,
    /// The safety net: the queue is checked this often even when nothing signalled new work
    /// (rows whose `send_at` comes due, retries scheduled before a restart).
    pub poll_interval: Duration,
    /// Recipient normalisation (`numbers` in the config file): rows to what cannot be a
    /// phone number fail with the reason.
    pub numbers: NumberPolicy,
    /// Which modem sends a row that names none.
    pub routing: Routing,
    /// SMS parts per hour to one recipient, over every modem; `None`: no limit.
    pub recipient_per_hour: Option<u32>,
    /// Local times during which non-transactional rows wait.
    pub quiet_hours: Option<QuietHours>,
    /// A row still queued this long after it became due becomes `expired`; `None`: never
    /// (unless the row has its own `expires_at`).
    pub default_ttl: Option<Duration>,
    /// Texts needing more SMS parts are refused (`failed`, with the count); `None`: up to
    /// the 255 concatenation allows.
    pub max_parts: Option<u32>,
    /// Replace typographic characters with GSM 7-bit equivalents before encoding, when that
    /// makes the whole text fit 7-bit (`conductor_sms::transliterate`): on by default, because
    /// one curly apostrophe otherwise switches a text to UCS-2 and doubles its parts (and
    /// cost), and only characters with a close plain equivalent are ever replaced.
    pub transliterate: bool,
    /// Inbound texts (the whole text, any case and spacing) that put the sender on the
    /// block list.
    pub stop_keywords: Vec<String>,
    /// Inbound texts that take the sender off the block list.
    pub start_keywords: Vec<String>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(600),
            duplicate_exempt_sources: Vec::new(),
            status_reports: true,
            max_attempts: 5,
            retry_backoff: Duration::from_secs(30),
            delivery: Delivery::AtMostOnce,
            validity: None,
            poll_interval: Duration::from_secs(5),
            numbers: NumberPolicy::default(),
            routing: Routing::default(),
            recipient_per_hour: None,
            quiet_hours: None,
            default_ttl: None,
            max_parts: None,
            transliterate: true,
            stop_keywords: DEFAULT_STOP_KEYWORDS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            start_keywords: DEFAULT_START_KEYWORDS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let config = GatewayConfig::default();
        assert_eq!(config.inbound.sweep_interval, Duration::from_secs(10));
        assert_eq!(config.inbound.capacity_threshold_percent, 80);
        assert_eq!(config.inbound.delete_policy, DeletePolicy::OnRead);
        assert_eq!(config.outbound.duplicate_window, Duration::from_secs(600));
        assert_eq!(config.outbound.delivery, Delivery::AtMostOnce);
        assert!(config.change_poll_interval <= Duration::from_millis(250));
    }

    #[test]
    fn a_modem_takes_its_id_as_the_driver_name() {
        let modem = ModemSettings::new("sim1", "/dev/ttyUSB2");
        assert_eq!(modem.modem.name, "sim1");
        assert_eq!(modem.modem.device, "/dev/ttyUSB2");
    }
}
