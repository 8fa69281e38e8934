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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway daemon (until SIGTERM or Ctrl-C).
    Run {
        /// A modem device (serial path or `tcp://host:port`), replacing the config's modems;
        /// repeat for several. Only `run` has it: elsewhere `--modem` names a configured
        /// modem's id.
        #[arg(long = "modem", value_name = "DEVICE")]
        modems: Vec<String>,
    },
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
    /// Queue again a message that is `unknown`, `failed`, `cancelled`, `duplicate`, `expired`
    /// or `blocked`.
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
    /// The opt-out block list: numbers that answered STOP (or that you add) get no messages
    /// unless they are marked transactional.
    #[command(subcommand)]
    Block(BlockCommand),
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
    /// Back up the database now: a checked, compressed copy taken while the daemon runs
    /// (into `backup.dir` unless `--to`), named by UTC date and time; old ones are pruned to
    /// `backup.keep`.
    Backup {
        /// Folder to write the backup to, instead of the config's `backup.dir`.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replace the database with a backup (`.db.gz` or `.db`), after checking the backup's
    /// integrity. Stop the daemon first: restore refuses while anything has the database open.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Export old messages to compressed JSON lines and remove them, by the config's
    /// `retention.rules` (what the daemon does daily).
    Prune {
        /// Only print what would be exported and removed, by direction and status.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Install or remove Conductor as a systemd service.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Traffic statistics per day, week or month (local time): volume, success rate,
    /// failures by reason, median send and inbound latency, busiest hours.
    Stats(StatsArgs),
    /// Check the whole installation (config, database, modems, SIM, disk, service, backups,
    /// ModemManager, alerts) and say what to fix; exit 1 when a check fails.
    Doctor {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Bring in messages from the original system's database, gammu-smsd's SQL tables
    /// (SQLite) or smstools3's spool folder; running it again imports nothing twice, and
    /// the source is only read.
    Import(ImportArgs),
    /// Loopback self-test: send a tagged SMS through the running daemon to NUMBER (the SIM's
    /// own number, or a second SIM) and wait for it to come back; prints each step's time and
    /// a verdict (exit 1 on failure).
    Selftest(SelftestArgs),
    /// Send a USSD code (`*100#`) from a modem and print the decoded answer: through the
    /// running daemon's API when it answers at `http.listen`, else on the port directly.
    Ussd {
        /// The modem's id in the config. (Its own clap id: the global `--modem` is `modem`,
        /// and clap would hand this value to it, replacing the config's modems.)
        #[arg(id = "ussd_modem", value_name = "MODEM")]
        modem: String,
        /// The code, e.g. `*100#` (quote it in the shell).
        code: String,
        /// A full-scope API token, when the API has tokens (or `CONDUCTOR_TOKEN`).
        #[arg(long)]
        token: Option<String>,
        /// Print JSON (status, text, dcs, raw) instead of the text.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `conductor import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The format: `original`, `gammu` or `smstools`.
    #[arg(value_parser = ["original", "gammu", "smstools"])]
    pub kind: String,
    /// The SQLite file (original, gammu) or the spool folder (smstools).
    pub source: PathBuf,
    /// Only report what would be imported; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The zone the source's times are in: `UTC`, `local` or a name like `Europe/Berlin`.
    /// Default: UTC for `original`, the host's zone for gammu and smstools.
    #[arg(long, value_name = "ZONE")]
    pub source_tz: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `conductor selftest`.
#[derive(Debug, Args)]
pub struct SelftestArgs {
    /// The number to send to: the modem's own number, or another SIM that forwards back.
    #[arg(long)]
    pub to: String,
    /// Send through this modem (default: any ready modem).
    #[arg(long)]
    pub modem: Option<String>,
    /// Give up after this long.
    #[arg(long, default_value = "3m")]
    pub timeout: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `conductor stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Period length: `day`, `week` (ISO, from Monday) or `month`, in local time.
    #[arg(long, default_value = "day")]
    pub by: String,
    /// Only this modem (messages it received or sent).
    #[arg(long)]
    pub modem: Option<String>,
    /// From: a local date (`2024-03-01`), a month (`2024-03`), RFC 3339, or a duration ago
    /// (`30days`). Default: 31 days, 12 weeks or 12 months back, from a period's start.
    #[arg(long)]
    pub since: Option<String>,
    /// Until (exclusive), same forms. Default: now.
    #[arg(long)]
    pub until: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `conductor service ...`
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write a systemd unit that runs `conductor run --config FILE` (watchdog, sandbox, serial
    /// access through `dialout`), then `systemctl daemon-reload` and `enable --now`.
    Install(ServiceInstallArgs),
    /// Stop and disable the service and remove its unit (the data stays).
    Uninstall(ServiceUninstallArgs),
}

/// Arguments of `conductor service install`; the config file is the global `--config`
/// (default: the config in force).
#[derive(Debug, Args)]
pub struct ServiceInstallArgs {
    /// The account the daemon runs as (default: the user who ran `sudo`, else you); it needs
    /// the `dialout` group for serial ports, which the unit adds.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only print the unit; write and start nothing.
    #[arg(long)]
    pub print: bool,
    /// Also write a udev rule that makes ModemManager leave the configured USB modems alone
    /// (it opens modem ports and breaks the daemon's AT conversation).
    #[arg(long)]
    pub modemmanager_ignore: bool,
    /// Where to write the unit instead of /etc/systemd/system (tests).
    #[arg(long, hide = true, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Where to write the udev rule instead of /etc/udev/rules.d (tests).
    #[arg(long, hide = true, value_name = "DIR")]
    pub udev_dir: Option<PathBuf>,
    /// Do not call systemctl (tests).
    #[arg(long, hide = true)]
    pub no_systemctl: bool,
}

/// Arguments of `conductor service uninstall`.
#[derive(Debug, Args)]
pub struct ServiceUninstallArgs {
    /// Where the unit is instead of /etc/systemd/system (tests).
    #[arg(long, hide = true, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Where the udev rule is instead of /etc/udev/rules.d (tests).
    #[arg(long, hide = true, value_name = "DIR")]
    pub udev_dir: Option<PathBuf>,
    /// Do not call systemctl (tests).
    #[arg(long, hide = true)]
    pub no_systemctl: bool,
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
    /// Replace typographic quotes, dashes and accents outside the GSM table first, as the
    /// daemon does with `outbound.transliterate` (when that keeps the text in 7-bit).
    #[arg(long)]
    pub transliterate: bool,
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
    /// Higher goes first (a login code overtakes a bulk send); default 0.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// Send even to a number on the block list and during quiet hours (codes, receipts).
    #[arg(long)]
    pub transactional: bool,
    /// Print the queued ids as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `conductor block ...`.
#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Put numbers on the block list.
    Add {
        /// Phone numbers (normalised as `numbers` in the config says).
        #[arg(required = true)]
        numbers: Vec<String>,
        /// Why, kept with the entry.
        #[arg(long)]
        note: Option<String>,
    },
    /// Take numbers off the block list.
    Remove {
        /// Phone numbers.
        #[arg(required = true)]
        numbers: Vec<String>,
    },
    /// Show the block list.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `conductor list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status (`unread`, `read`, `queued`, `sending`, `sent`, `delivered`, `failed`,
    /// `duplicate`, `unknown`, `cancelled`, `expired`, `blocked`).
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
    /// List the machine's serial ports (by-id names, USB ids, driver), probe each briefly and
    /// read-only, say which answer AT and which port to use for SMS, and print a config snippet.
    Scan(ScanArgs),
}

/// `conductor modem scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Probe only these devices instead of every port found.
    pub devices: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Serial speed for the probes (USB modems ignore it).
    #[arg(long, default_value_t = 115_200)]
    pub baud_rate: u32,
    /// How long a port has to answer `AT`, e.g. `2s`.
    #[arg(long, default_value = "2s")]
    pub timeout: String,
    /// sysfs root (tests; default /sys, or CONDUCTOR_SYS_ROOT).
    #[arg(long, hide = true)]
    pub sys_root: Option<std::path::PathBuf>,
    /// /dev root (tests; default /dev, or CONDUCTOR_DEV_ROOT).
    #[arg(long, hide = true)]
    pub dev_root: Option<std::path::PathBuf>,
    /// procfs root (tests; default /proc, or CONDUCTOR_PROC_ROOT).
    #[arg(long, hide = true)]
    pub proc_root: Option<std::path::PathBuf>,
}
