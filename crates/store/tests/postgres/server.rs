//! A throwaway PostgreSQL server for tests: a fresh cluster in a temp dir, on a free loopback
//! port and a unix socket in that dir, stopped (and deleted) when dropped.
//!
//! Why a real server: the PostgreSQL backend's promises (two nodes never claim the same row,
//! `LISTEN`/`NOTIFY` wakes the dispatcher, migrations under an advisory lock) are about the
//! server's locking and messaging, which no mock reproduces.
//!
//! Where PostgreSQL comes from: `initdb`, `pg_ctl` and `postgres` on `PATH`, in
//! `/usr/local/bin`, or in Debian's `/usr/lib/postgresql/<major>/bin` (`apt-get install -y
//! postgresql`, what `.ci/run` does). Without them a test prints `NOT RUN` and passes, unless
//! `CONDUCTOR_PG_TESTS` is set (CI sets it), when it fails instead.
//!
//! Root: `initdb` refuses to run as root, so as root (CI) the cluster is created and started
//! as the `postgres` system user (Debian's package creates it) through `runuser`, with the temp
//! dir handed to that user first. The server only listens on 127.0.0.1 and trusts local
//! connections: a throwaway for one test process.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running throwaway cluster.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the tools as this system user (set when the tests run as root).
    run_as: Option<String>,
}

/// The user every test connects as (created by `initdb -U`).
const SUPERUSER: &str = "conductor";

impl PgServer {
    /// Starts a fresh cluster, or returns None (after saying why) when PostgreSQL is not
    /// installed and `CONDUCTOR_PG_TESTS` is not set.
    pub fn start() -> Option<Self> {
        let Some(bin) = find_bin_dir() else {
            if std::env::var_os("CONDUCTOR_PG_TESTS").is_some() {
                panic!(
                    "CONDUCTOR_PG_TESTS is set but PostgreSQL is missing: apt-get install -y \
                     postgresql (initdb, pg_ctl and postgres must be on PATH, in /usr/local/bin or \
                     in /usr/lib/postgresql/*/bin)"
                );
            }
            eprintln!(
                "NOT RUN: the PostgreSQL tests need a PostgreSQL server installed (apt-get \
                 install -y postgresql); set CONDUCTOR_PG_TESTS=1 to make its absence a failure"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("conductor-pg-")
            .tempdir()
            .expect("a temp dir for the cluster");
        let run_as = running_as_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            let status = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(
                status.success(),
                "chown {user} {}: the `{user}` system user must exist (Debian's postgresql \
                 package creates it)",
                dir.path().display()
            );
        }
        let mut server = Self {
            bin,
            dir,
            port: 0,
            run_as,
        };
        let data = server.data_dir();
        let out = server.tool(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", describe(&out));
        // A port found free can be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.pg_ctl_start() {
                Ok(()) => return Some(server),
                Err(e) => last = e,
            }
        }
        panic!("pg_ctl start failed five times: {last}");
    }

    /// `pg_ctl start` on this cluster's data dir and port; the error holds pg_ctl's output
    /// and the server log.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.data_dir();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c \
             synchronous_commit=off -c full_page_writes=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self.tool(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "start".as_ref(),
            ],
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}\n{}",
                describe(&out),
                std::fs::read_to_string(&log).unwrap_or_default()
            ))
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`: every session is disconnected), keeping its
    /// data, so a test can show what clients do while the database is gone.
    // Used by the daemon tests (crates/conductor/tests/it/multinode.rs includes this file).
    #[allow(dead_code)]
    pub fn stop(&self) {
        let data = self.data_dir();
        let out = self.tool(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            describe(&out)
        );
    }

    /// Starts the stopped server again on the same port and data dir (clients reconnect to
    /// the same URL).
    // Used by the daemon tests (crates/conductor/tests/it/multinode.rs includes this file).
    #[allow(dead_code)]
    pub fn restart(&self) {
        if let Err(e) = self.pg_ctl_start() {
            panic!("pg_ctl start (restart on port {}) failed: {e}", self.port);
        }
    }

    /// A URL for a database on this server (create it first with [`PgServer::create_db`]).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Creates an empty database and returns its URL.
    pub async fn create_db(&self, name: &str) -> String {
        let admin = self.client("postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        self.url(name)
    }

    /// A plain client connection (the "external writer"), its connection driven on a task.
    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(db), tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tool(&self, name: &str, args: &[&std::ffi::OsStr]) -> Output {
        let program = self.bin.join(name);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.tool(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn find_bin_dir() -> Option<PathBuf> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    candidates.push(PathBuf::from("/usr/local/bin"));
    // Debian: /usr/lib/postgresql/<major>/bin, newest major first.
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    debian.sort_by_key(|p| {
        std::cmp::Reverse(
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });
    candidates.extend(debian);
    candidates.into_iter().find(|dir| has_all(dir)).map(|dir| {
        // Resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) so
        // pg_ctl finds its `postgres` beside the real binary.
        std::fs::canonicalize(dir.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or(dir)
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn describe(out: &Output) -> String {
    format!(
        "{}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
