//! The PostgreSQL backend (issue 9, preview): several gateway nodes on one database.
//!
//! Why this shape: PostgreSQL is a server, so unlike SQLite nothing here blocks a thread; every
//! operation is native async on a small pool of connections (deadpool-postgres), one
//! transaction per call, committed before the method returns, so no transaction can outlive
//! the call or span an AT command (DESIGN.md "Database"). Row locks replace SQLite's single
//! writer: [`outbound::claim`] reads due rows with `FOR UPDATE SKIP LOCKED`, so two nodes
//! claiming at once get disjoint rows (promise 3 across hosts). `LISTEN`/`NOTIFY` replaces
//! `PRAGMA data_version` (see [`watch`]).
//!
//! Times are `timestamptz` and cross the wire as `SystemTime`; what reads them back turns them
//! into [`SqlTime`]s in the contract's UTC text form, so callers see the same values from both
//! backends.
//!
//! TLS follows libpq's `sslmode` (see [`tls`]). Every store operation has a native port here;
//! the only backend-specific answers are online backups (`pg_dump` instead, see
//! [`crate::MaintenanceError::PostgresBackup`]) and the journal mode (always write-ahead
//! logged).

pub(crate) mod alerts;
pub(crate) mod api;
pub(crate) mod inbound;
pub(crate) mod lease;
pub(crate) mod maintenance;
pub(crate) mod migrate;
pub(crate) mod outbound;
pub(crate) mod policy;
pub(crate) mod query;
pub(crate) mod reports;
pub(crate) mod stats;
pub(crate) mod tls;
pub(crate) mod watch;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use jiff::Timestamp;

use crate::error::StoreError;
use crate::store::StoreOptions;
use crate::types::{MessageId, SqlTime, Status};

/// The channel the `messages` trigger notifies (migrations/postgres/0005_initial.sql).
pub(crate) const CHANNEL: &str = "conductor_messages";

/// Connections per store: the dispatcher, the inbound path, the API and the CLI rarely need
/// more at once, and every node holds its own pool against the server's `max_connections`.
const POOL_SIZE: usize = 8;

/// A failure inside a transaction: the server's, or one of the store's own checks.
pub(crate) enum DbError {
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Results inside the backend.
pub(crate) type Db<T> = Result<T, DbError>;

/// The transaction every operation runs in.
pub(crate) type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// An open PostgreSQL database.
pub(crate) struct Postgres {
    pool: Pool,
    /// The parsed `database.url`, for the listener's own connection.
    config: tokio_postgres::Config,
    /// TLS as `sslmode` asks (see [`tls`]), for the listener's connections too.
    pub(crate) tls: tls::MakeRustls,
    /// `host:port/database`: names the database in errors without the password.
    target: String,
    /// This store's connections set `conductor.writer` to this, so the notify trigger's
    /// payload tells the listener which commits were its own (see [`watch`]).
    pub(crate) writer_token: String,
    /// Breaks ties between equally loaded modems, as the SQLite backend's.
    pub(crate) rotation: AtomicUsize,
    /// The node this store claims and sends for, once a gateway joined (see [`lease`]): claims
    /// and part records then check this node's modem leases, so a node whose lease another
    /// node took over cannot hand a PDU to that modem. `None` (the CLI, tests): unchecked.
    pub(crate) fence: std::sync::RwLock<Option<String>>,
    /// See [`StoreOptions::late_part_window`].
    pub(crate) late_part_window: Duration,
    /// The `LISTEN` session behind [`Postgres::data_version`], started by its first call.
    /// (Boxed: most stores never ask, and the backend enum stays small.)
    version_listener: Box<tokio::sync::OnceCell<watch::Listener>>,
    /// Other writers' commits noticed by that session.
    version: std::sync::atomic::AtomicI64,
}

impl Postgres {
    /// Connects to `url`, checks the server answers, and migrates the schema.
    pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        // libpq's `verify-ca`/`verify-full`/`sslrootcert` are ours to apply (see [`tls`]).
        let (parsed_url, tls_settings) = tls::prepare(url);
        let mut config: tokio_postgres::Config =
            parsed_url
                .parse()
                .map_err(|e: tokio_postgres::Error| StoreError::UnsupportedUrl {
                    url: redact(url),
                    detail: if e.to_string().contains("invalid") {
                        "not a valid postgres:// URL (postgres://user:password@host:port/database)"
                    } else {
                        "the URL cannot be read as a PostgreSQL connection string"
                    },
                })?;
        let target = target_of(&config);
        let tls = tls::MakeRustls::new(&tls_settings, &target)?;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let writer_token = format!(
            "conductor-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("conductor");
        }
        let mut pool_config = config.clone();
        let user_options = config.get_options().unwrap_or_default().to_owned();
        pool_config.options(format!("{user_options} -c conductor.writer={writer_token}").trim());
        let manager = Manager::from_config(
            pool_config,
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            // Waiting for a free connection is like SQLite's busy timeout.
            .wait_timeout(Some(options.busy_timeout))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::PostgresUnavailable {
                target: target.clone(),
                doing: "opening the database",
                detail: e.to_string(),
            })?;
        let db = Self {
            pool,
            config,
            tls,
            target,
            writer_token,
            rotation: AtomicUsize::new(0),
            fence: std::sync::RwLock::new(None),
            late_part_window: options.late_part_window,
            version_listener: Box::default(),
            version: std::sync::atomic::AtomicI64::new(0),
        };
        migrate::migrate(&db).await?;
        Ok(db)
    }

    /// `host:port/database`, for messages.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// A pooled connection.
    pub(crate) async fn client(
        &self,
        doing: &'static str,
    ) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(source) => StoreError::Postgres {
                target: self.target.clone(),
                doing,
                source,
            },
            other => StoreError::PostgresUnavailable {
                target: self.target.clone(),
                doing,
                detail: other.to_string(),
            },
        })
    }

    /// Turns an error inside an operation into the operator's [`StoreError`].
    pub(crate) fn error(&self, doing: &'static str, e: DbError) -> StoreError {
        match e {
            DbError::Pg(source) => StoreError::Postgres {
                target: self.target.clone(),
                doing,
                source,
            },
            DbError::Store(e) => e,
        }
    }

    /// The twin of SQLite's `PRAGMA data_version`: a counter that moves when another writer
    /// (an external program, another node) committed a change to `messages`, and not on this
    /// store's own writes. PostgreSQL has no such counter, so it counts the notifications of
    /// the `messages` trigger on a `LISTEN` session of its own, started by the first call
    /// (which returns the count so far, 0). Commits before that first call are not counted,
    /// as a SQLite counter read for the first time says nothing about earlier commits either.
    pub(crate) async fn data_version(&self) -> Result<i64, StoreError> {
        let listener = self
            .version_listener
            .get_or_try_init(|| watch::Listener::start(self))
            .await?;
        if listener.poll() {
            return Ok(self.version.fetch_add(1, Ordering::SeqCst) + 1);
        }
        Ok(self.version.load(Ordering::SeqCst))
    }

    /// Proves the database takes writes: a transaction that takes a row lock on nothing but
    /// must be able to write (`txid_current()` assigns a transaction id, which a read-only
    /// server or a standby refuses).
    pub(crate) async fn check_writable(&self) -> Result<(), StoreError> {
        const DOING: &str = "checking that the database is writable";
        let client = self.client(DOING).await?;
        client
            .batch_execute("BEGIN; SELECT txid_current(); ROLLBACK")
            .await
            .map_err(|e| self.error(DOING, e.into()))
    }
}

/// Runs `$body` (an async expression using `$tx`, a [`Tx`]) in one transaction of `$pg` and
/// commits it; any error rolls back (the transaction is dropped) and is classified once.
macro_rules! in_tx {
    ($pg:expr, $doing:expr, |$tx:ident| $body:expr) => {{
        let pg: &$crate::postgres::Postgres = $pg;
        let doing: &'static str = $doing;
        let mut client = pg.client(doing).await?;
        let $tx = client
            .transaction()
            .await
            .map_err(|e| pg.error(doing, e.into()))?;
        let value = match $body.await {
            Ok(value) => value,
            Err(e) => return Err(pg.error(doing, e)),
        };
        $tx.commit().await.map_err(|e| pg.error(doing, e.into()))?;
        Ok(value)
    }};
}
pub(crate) use in_tx;

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn target_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// A caller's instant as the driver sends it (`timestamptz`).
pub(crate) fn at(t: Timestamp) -> SystemTime {
    let since_epoch = t.as_duration();
    let magnitude = Duration::try_from(since_epoch.abs()).unwrap_or(Duration::MAX);
    let shifted = if since_epoch.is_negative() {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    };
    // Only instants beyond what the OS clock type can hold fail; jiff's range is ±9999 years.
    shifted.unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A stored `timestamptz` in the contract's text form (UTC, seconds), as SQLite returns it.
pub(crate) fn sql_time(t: SystemTime) -> SqlTime {
    match Timestamp::try_from(t) {
        Ok(t) => SqlTime::from_timestamp(t),
        Err(_) => SqlTime(format!("{t:?}")),
    }
}

/// Appends an event in the current transaction.
pub(crate) async fn event(
    tx: &Tx<'_>,
    at: SystemTime,
    kind: &str,
    message_id: Option<i64>,
    modem_id: Option<&str>,
    detail: Option<serde_json::Value>,
) -> Db<()> {
    tx.execute(
        "INSERT INTO events (at, kind, message_id, modem_id, detail) VALUES ($1, $2, $3, $4, $5)",
        &[
            &at,
            &kind,
            &message_id,
            &modem_id,
            &detail.map(|d| d.to_string()),
        ],
    )
    .await?;
    Ok(())
}

/// The status of a message, or [`StoreError::NotFound`].
pub(crate) async fn status_of(tx: &Tx<'_>, id: i64) -> Db<Status> {
    let row = tx
        .query_opt("SELECT status FROM messages WHERE id = $1", &[&id])
        .await?;
    let row = row.ok_or(StoreError::NotFound { id: MessageId(id) })?;
    parse_status(id, row.get(0))
}

pub(crate) fn parse_status(id: i64, text: &str) -> Db<Status> {
    text.parse().map_err(|e: crate::types::UnknownSpelling| {
        DbError::Store(StoreError::BadRow {
            table: "messages",
            id,
            column: "status",
            detail: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://gw:s3cret@db.example:5432/conductor"),
            "postgres://gw:***@db.example:5432/conductor"
        );
        assert_eq!(redact("postgres://db/conductor"), "postgres://db/conductor");
    }

    #[test]
    fn the_target_names_host_port_and_database() {
        let config: tokio_postgres::Config =
            "postgres://gw:pw@10.0.0.5:6432/sms".parse().expect("url");
        assert_eq!(target_of(&config), "10.0.0.5:6432/sms");
    }
}
