//! The command line as the user types it (clap derive), one `Subcommand` variant per verb.
//!
//! Nothing here validates beyond what clap does; each command module turns these raw
//! arguments into typed settings once.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Conductor: an SMS gateway for GSM/LTE modems.
#[derive(Debug, Parser)]
#[command(name = "conductor", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (default: `CONDUCTOR_CONFIG`, then `/etc/conductor/config.json` for root
    /// or `~/.config/conductor/config.json`).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database, overriding the config: a SQLite file, `sqlite://FILE` or `postgres://...`
    /// (also `CONDUCTOR_DB`).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<String>,
    /// For `run`: a modem device (serial path or `tcp://host:port`), replacing the config's
    /// modems; repeat for several.
    #[arg(long, global = true, value_name = "DEVICE")]
    pub modem: Vec<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway daemon (until SIGTERM or Ctrl-C).
    Run,
    /// The daemon against two built-in virtual modems and a local database
    /// (`conductor-demo.db` unless `--db`), with a simulated phone that answers.
    Demo,
    /// Decode and encode SMS PDUs (TS 23.040 in TS 27.005 PDU-mode hex).
    #[command(subcommand)]
    Pdu(PduCommand),
    /// Queue a message (alias `test`, as in the original system); `--file` queues many.
    #[command(visible_alias = "test")]
    Send(SendArgs),
    /// Mark inbound messages as read (with `delete_policy: on_read` this lets the daemon
    /// delete their SIM copies).
    MarkRead {
        /// Message ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Queue again a message that is `unknown`, `failed`, `cancelled` or `duplicate`.
    Requeue {
        /// Message ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Withdraw queued messages before they are sent.
    Cancel {
        /// Message ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// List messages, newest first.
    List(ListArgs),
    /// One message with its parts, delivery reports and history.
    Show {
        /// Message id.
        id: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Totals by direction and status, and each modem's last recorded state.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Talk to a modem directly: probe it, or send raw AT commands.
    #[command(subcommand)]
    Modem(ModemCommand),
    /// Run a virtual modem (and its virtual network) until interrupted: for tests, demos and
    /// trying Conductor without hardware.
    Sim(SimArgs),
    /// A live terminal view of the database: modems, queue, newest messages, redrawn in
    /// place whenever anything changes.
    Watch {
        /// Print one frame and exit (for scripts).
        #[arg(long)]
        once: bool,
        /// Newest messages shown per direction.
        #[arg(long, default_value_t = 8)]
        rows: usize,
    },
    /// Each health check with its state; exit 0 only when the database takes writes and
    /// every configured modem is ready.
    Health {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Webhook deliveries with their attempts, newest first (the persistent outbox).
    Webhooks {
        /// Only this endpoint (its `name`, else its URL).
        #[arg(long)]
        endpoint: Option<String>,
        /// Only `pending`, `delivered` or `failed` deliveries.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write, check or describe the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `conductor config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a starting config file with every default spelled out.
    Init {
        /// Where to write it (default: the config location in force).
        #[arg(long, value_name = "FILE")]
        path: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check the config in force and print what it resolves to.
    Check,
    /// Print the JSON Schema of the config file, for editors.
    Schema,
}

/// `conductor pdu ...`
#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Decode PDU-mode hex (SMSC address first, as AT+CMGL/AT+CMGR/+CDS print it) to JSON.
    ///
    /// With no HEX argument, reads one PDU per line from standard input and prints one JSON
    /// object per line (an `error` object for a bad line), so a capture of `AT+CMGL` output
    /// can be decoded at once; lines that are not hex (such as `+CMGL: ...` headers or `OK`)
    /// are skipped.
    Decode {
        /// The PDU in hex. Omit to read lines from standard input.
        hex: Option<String>,
    },
    /// Encode a text as SMS-SUBMIT PDUs, split into parts when needed, as JSON.
    Encode(EncodeArgs),
}

/// Arguments of `conductor pdu encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Recipient: `+` and digits for an international number, or digits only.
    #[arg(long)]
    pub to: String,
    /// The message text; GSM 7-bit when every character fits, else UCS-2.
    #[arg(long)]
    pub text: String,
    /// Ask the network for a delivery status report.
    #[arg(long)]
    pub status_report: bool,
    /// Send as class 0 ("flash"): shown at once and not stored by the phone.
    #[arg(long)]
    pub flash: bool,
    /// How long the network keeps trying, e.g. `30m`, `12h`, `2days`, `1week` (rounded up
    /// to the next value TS 23.040 can express; at most 63 weeks).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub validity: Option<Duration>,
    /// Concatenation reference for multipart messages (0-255).
    #[arg(long, default_value_t = 0)]
    pub concat_ref: u8,
}

/// Arguments of `conductor send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Recipient (`+` and digits for international numbers).
    #[arg(required_unless_present = "file")]
    pub number: Option<String>,
    /// The text.
    #[arg(required_unless_present = "file")]
    pub text: Option<String>,
    /// Many messages at once: CSV with a header (`to,text` and optionally `modem`) or JSON
    /// lines (`{"to": ..., "text": ..., "modem": ...}`); `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["number", "text"])]
    pub file: Option<PathBuf>,
    /// Send through this modem (its `id` in the config); default: any modem that is up.
    #[arg(long)]
    pub modem: Option<String>,
    /// Send even if the same text went to the same number inside the duplicate window.
    #[arg(long)]
    pub allow_duplicate: bool,
    /// Do not ask for a delivery report (default: the config's `outbound.status_reports`).
    #[arg(long)]
    pub no_status_report: bool,
    /// Print the queued ids as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `conductor list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status (`unread`, `read`, `queued`, `sending`, `sent`, `delivered`, `failed`,
    /// `duplicate`, `unknown`, `cancelled`).
    #[arg(long)]
    pub status: Option<String>,
    /// Only `inbound` or `outbound`.
    #[arg(long)]
    pub direction: Option<String>,
    /// Only this phone number.
    #[arg(long)]
    pub number: Option<String>,
    /// Only this modem.
    #[arg(long)]
    pub modem: Option<String>,
    /// Only since: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or a duration ago (`2h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only until: same forms as `--since`.
    #[arg(long)]
    pub until: Option<String>,
    /// Only texts containing this.
    #[arg(long)]
    pub search: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Rows older than this id (the next page after the last id shown).
    #[arg(long)]
    pub before: Option<i64>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `conductor sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Serve the modem over TCP at this address (port 0 picks a free one).
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp: Option<std::net::SocketAddr>,
    /// Serve it on a pseudo-terminal as well (the path is printed), like a USB serial port.
    #[arg(long)]
    pub pty: bool,
    /// SIM message slots.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub sim_capacity: usize,
    /// How long a send takes, in seconds: `0`, `0.5`, or a range such as `1-3`.
    #[arg(long, default_value = "1-3", value_name = "SECONDS")]
    pub send_latency: String,
    /// JSON-lines control interface (inject messages, list submissions, faults) on loopback.
    #[arg(long, value_name = "HOST:PORT")]
    pub control: Option<std::net::SocketAddr>,
    /// Seed of every random choice: same seed and inputs, same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Which real modem to imitate: generic, huawei_e173, huawei_e3372, simcom_sim800,
    /// simcom_sim7600, quectel_ec25.
    #[arg(long, default_value = "generic")]
    pub personality: String,
    /// The modem's own phone number.
    #[arg(long, default_value = "+15550000001")]
    pub number: String,
    /// Lock the SIM with this PIN.
    #[arg(long)]
    pub pin: Option<String>,
}

/// `conductor modem ...`
#[derive(Debug, Subcommand)]
pub enum ModemCommand {
    /// Connect, initialise read-only (no setting that survives a power cycle is changed) and
    /// report what an operator checks first: identity, SIM, signal, network, SMSC, storage.
    Probe {
        /// A serial device (`/dev/ttyUSB2`, `COM3`) or `tcp://host:port`.
        device: String,
        /// Serial speed.
        #[arg(long, default_value_t = 115_200)]
        baud_rate: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send raw AT commands one by one and print each answer (the minicom session).
    At {
        /// A serial device (`/dev/ttyUSB2`, `COM3`) or `tcp://host:port`.
        device: String,
        /// Commands, e.g. `AT+CSQ` `AT+CPMS?`.
        #[arg(required = true)]
        commands: Vec<String>,
        /// Serial speed.
        #[arg(long, default_value_t = 115_200)]
        baud_rate: u32,
    },
}
