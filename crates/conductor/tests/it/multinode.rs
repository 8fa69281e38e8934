//! Several `conductor run` nodes on one PostgreSQL database (issue 9), end to end: the real
//! binary, virtual modems over TCP, a throwaway server (crates/store/tests/postgres/server.rs,
//! included by path), and an external SQL client writing the rows.
//!
//! Three nodes with two modems each share the queue; a fourth node stands by for the first
//! node's modems (TCP modems, so two configs can name the same device). Mid-run the first node
//! is killed with SIGKILL and the second is restarted. Afterwards every inbound message is
//! stored exactly once, no outbound message was submitted twice to any modem, every row is
//! final or `unknown`, and the standby holds the dead node's modems (taken over within 30 s).
//!
//! Sized by `MULTINODE_MESSAGES` (each way; default 600 so CI stays near a minute, the
//! figures for 3 000 are in BENCHMARKS.md). Skipped with `NOT RUN` without PostgreSQL unless
//! `CONDUCTOR_PG_TESTS` is set.

#[allow(dead_code)]
#[path = "../../../store/tests/postgres/server.rs"]
mod pg_server;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pg_server::PgServer;
use serde_json::{Value, json};

use crate::support::{
    Control, DaemonProcess, VirtualModemProcess, conductor, env_or, http_get, poll, write_config,
};

/// Lease timings for the test: a takeover within seconds, not the default 25.
const HEARTBEAT: &str = "1s";
const EXPIRY: &str = "6s";

/// A synchronous face on the async SQL client, for a synchronous test.
struct Sql {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Sql {
    fn connect(pg: &PgServer, db: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the SQL client");
        let client = runtime.block_on(pg.client(db));
        Self { runtime, client }
    }

    fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.runtime
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn count(&self, sql: &str) -> i64 {
        self.query(sql)[0].get(0)
    }

    /// `texts` as queued rows, with the SQL contract's INSERT columns, in batches of 500.
    fn insert_outbound(&self, texts: &[String]) {
        for chunk in texts.chunks(500) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            self.runtime
                .block_on(self.client.execute(
                    "INSERT INTO messages (phone_number, content, timestamp, status, direction)
                     SELECT '+15550100', t, now(), 'queued', 'outbound' FROM unnest($1::text[]) t",
                    &[&chunk],
                ))
                .expect("the contract INSERT");
        }
    }
}

fn node_config(dir: &Path, url: &str, node: &str, modems: &[(&str, String)]) -> std::path::PathBuf {
    let path = dir.join(format!("{node}.json"));
    let modems: Vec<Value> = modems
        .iter()
        .map(|(id, device)| json!({"id": id, "device": device}))
        .collect();
    write_config(
        &path,
        &json!({
            "database": {"url": url, "node": node, "lease_heartbeat": HEARTBEAT,
                         "lease_expiry": EXPIRY},
            "modems": modems,
            "http": {"listen": "127.0.0.1:0"},
            "inbound": {"sweep_interval": "1s"},
            "outbound": {"retry_backoff": "1s"},
        }),
    );
    path
}

/// Modem → node, for the live leases.
fn live_leases(sql: &Sql) -> HashMap<String, String> {
    sql.query("SELECT modem_id, node_id FROM modem_leases WHERE expires_at > now()")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn logs(daemons: &[(&str, &DaemonProcess)]) -> String {
    daemons
        .iter()
        .map(|(name, d)| format!("--- {name}\n{}", d.log_tail(30)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn three_nodes_share_the_queue_and_a_standby_takes_a_killed_nodes_modems_over() {
    let Some(pg) = PgServer::start() else { return };
    let messages: usize = env_or("MULTINODE_MESSAGES", 600);
    println!(
        "multinode: {messages} outbound rows + {messages} inbound messages, 3 nodes + standby"
    );
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(pg.create_db("multinode"));
    let dir = tempfile::tempdir().expect("temp dir");

    let sims: Vec<VirtualModemProcess> = (0..6)
        .map(|_| VirtualModemProcess::start_with_control(&[]))
        .collect();
    let device = |i: usize| sims[i].device();
    let ids = ["m1", "m2", "m3", "m4", "m5", "m6"];
    let config_a = node_config(
        dir.path(),
        &url,
        "node-a",
        &[("m1", device(0)), ("m2", device(1))],
    );
    let config_b = node_config(
        dir.path(),
        &url,
        "node-b",
        &[("m3", device(2)), ("m4", device(3))],
    );
    let config_c = node_config(
        dir.path(),
        &url,
        "node-c",
        &[("m5", device(4)), ("m6", device(5))],
    );
    // The standby names node A's modems: the same TCP devices.
    let config_d = node_config(
        dir.path(),
        &url,
        "node-d",
        &[("m1", device(0)), ("m2", device(1))],
    );
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let mut a = DaemonProcess::start(&config_a, &log("a"));
    let mut b = DaemonProcess::start(&config_b, &log("b"));
    let mut c = DaemonProcess::start(&config_c, &log("c"));

    // The schema exists once a node started; then every modem gets its node's lease.
    let sql = poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let sql = Sql::connect(&pg, "multinode");
        match sql.runtime.block_on(sql.client.query_one(
            "SELECT count(*) FROM modem_leases WHERE expires_at > now()",
            &[],
        )) {
            Ok(row) if row.get::<_, i64>(0) == 6 => Ok(sql),
            Ok(row) => Err(format!("{} leases", row.get::<_, i64>(0))),
            Err(e) => Err(e.to_string()),
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the nodes never held their six leases: {e}\n{}",
            logs(&[("a", &a), ("b", &b), ("c", &c)])
        )
    });
    let leases = live_leases(&sql);
    assert_eq!(leases["m1"], "node-a");
    assert_eq!(leases["m4"], "node-b");
    assert_eq!(leases["m6"], "node-c");
    let mut d = DaemonProcess::start(&config_d, &log("d"));

    // The external writer queues every outbound row; the network delivers the inbound ones
    // to the six modems, round robin, while the nodes work (and die).
    let outbound: Vec<String> = (0..messages).map(|i| format!("out {i:05}")).collect();
    sql.insert_outbound(&outbound);
    let injected = Arc::new(AtomicUsize::new(0));
    let controls: Vec<Control> = sims.iter().map(VirtualModemProcess::control).collect();
    let feeder = {
        let injected = Arc::clone(&injected);
        std::thread::spawn(move || {
            let mut controls = controls;
            for i in 0..messages {
                controls[i % 6].inject("+15550199", &format!("in {i:05}"));
                injected.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    // Mid-run: node A dies (SIGKILL), node B is restarted.
    let done_outbound = || {
        sql.count(
            "SELECT count(*) FROM messages WHERE direction = 'outbound'
               AND status NOT IN ('queued', 'sending')",
        )
    };
    let third = i64::try_from(messages / 3).unwrap_or(i64::MAX);
    poll(Duration::from_secs(60), Duration::from_millis(20), || {
        let n = done_outbound();
        if n >= third {
            Ok(())
        } else {
            Err(format!("{n} sent"))
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "sending never got going: {e}\n{}",
            logs(&[("a", &a), ("b", &b)])
        )
    });
    a.kill();
    let killed_at = Instant::now();
    println!(
        "multinode: node-a killed with SIGKILL at {:.1?}",
        started.elapsed()
    );
    b.terminate(Duration::from_secs(20))
        .expect("node B stops on SIGTERM");
    b = DaemonProcess::start(&config_b, &log("b2"));

    let takeover = poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let leases = live_leases(&sql);
        if leases.get("m1").map(String::as_str) == Some("node-d")
            && leases.get("m2").map(String::as_str) == Some("node-d")
        {
            Ok(killed_at.elapsed())
        } else {
            Err(format!("{leases:?}"))
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the standby did not take node A's modems over within 30 s: {e}\n{}",
            logs(&[("a", &a), ("d", &d)])
        )
    });
    println!("multinode: node-d took m1 and m2 over {takeover:.1?} after the kill");

    feeder.join().expect("the feeder finishes");
    let want = i64::try_from(messages).unwrap_or(i64::MAX);
    poll(Duration::from_secs(90), Duration::from_millis(100), || {
        let out = done_outbound();
        let inbound =
            sql.count("SELECT count(DISTINCT content) FROM messages WHERE direction = 'inbound'");
        if out == want && inbound == want {
            Ok(())
        } else {
            Err(format!(
                "{out}/{want} outbound final, {inbound}/{want} inbound stored"
            ))
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the nodes did not finish: {e}\n{}",
            logs(&[("b2", &b), ("c", &c), ("d", &d)])
        )
    });
    let elapsed = started.elapsed();

    // Every inbound message exactly once.
    let twice = sql.count(
        "SELECT count(*) FROM (SELECT content FROM messages WHERE direction = 'inbound'
           GROUP BY content HAVING count(*) > 1) t",
    );
    assert_eq!(twice, 0, "inbound messages stored twice");
    // No outbound text submitted twice, to one modem or over several.
    let mut submissions: HashMap<String, u64> = HashMap::new();
    for sim in &sims {
        for s in sim.control().submitted() {
            let text = s["text"].as_str().unwrap_or_default().to_owned();
            *submissions.entry(text).or_default() += s["count"].as_u64().unwrap_or(0);
        }
    }
    let repeated: Vec<_> = submissions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "submitted more than once: {repeated:?}"
    );
    // Every row final or unknown; every row shown sent was submitted.
    let states: HashMap<String, i64> = sql
        .query("SELECT status, count(*) FROM messages WHERE direction = 'outbound' GROUP BY status")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for status in states.keys() {
        assert!(
            ["sent", "delivered", "unknown", "failed"].contains(&status.as_str()),
            "outbound rows left {status}: {states:?}"
        );
    }
    for row in sql.query(
        "SELECT content FROM messages WHERE direction = 'outbound' AND status IN ('sent', 'delivered')",
    ) {
        let text: String = row.get(0);
        assert_eq!(submissions.get(&text), Some(&1), "{text} is sent but was not submitted once");
    }
    // The standby holds the dead node's modems; every node shows in `status`.
    let leases = live_leases(&sql);
    assert_eq!(leases.get("m1").map(String::as_str), Some("node-d"));
    assert_eq!(leases.get("m2").map(String::as_str), Some("node-d"));
    for id in &ids[2..] {
        assert!(
            leases.contains_key(*id),
            "{id} has no live lease: {leases:?}"
        );
    }
    let status = conductor(&["--db", &url, "status", "--json"], "");
    assert!(status.status.success(), "{status:?}");
    let status: Value = serde_json::from_slice(&status.stdout).expect("status --json");
    let holds = |node: &str| -> Vec<String> {
        status["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["node"] == node)
            .flat_map(|n| n["modems"].as_array().cloned().unwrap_or_default())
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(holds("node-d"), ["m1", "m2"], "{status}");
    assert_eq!(holds("node-b"), ["m3", "m4"], "{status}");
    println!(
        "multinode: {messages} + {messages} done in {elapsed:.1?}; outbound {states:?}; \
         takeover {takeover:.1?}"
    );
    for daemon in [&mut b, &mut c, &mut d] {
        daemon.terminate(Duration::from_secs(20));
    }
}

#[test]
fn the_sql_contract_statements_work_against_the_daemon_on_postgresql() {
    let Some(pg) = PgServer::start() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(pg.create_db("contract"));
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = VirtualModemProcess::start_with_control(&[]);
    let config = node_config(dir.path(), &url, "solo", &[("m1", sim.device())]);
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    let sql = poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let sql = Sql::connect(&pg, "contract");
        match sql.runtime.block_on(sql.client.query_one(
            "SELECT count(*) FROM modem_status WHERE state = 'ready'",
            &[],
        )) {
            Ok(row) if row.get::<_, i64>(0) == 1 => Ok(sql),
            Ok(_) => Err("not ready".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the daemon never became ready: {e}\n{}",
            daemon.log_tail(40)
        )
    });

    // The contract's INSERT (with now()): sent within a few seconds.
    sql.query(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction)
         VALUES ('+15550123', 'Auto-reply', now(), 'queued', 'outbound')",
    );
    let mut control = sim.control();
    poll(Duration::from_secs(10), Duration::from_millis(50), || {
        if control.submissions_of("Auto-reply") == 1 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the contract INSERT was not sent: {e}\n{}",
            daemon.log_tail(40)
        )
    });

    // An inbound message, the contract's SELECT and UPDATE; then the SIM copy is deleted.
    control.inject("+15550124", "hello over postgres");
    let id: i64 = poll(Duration::from_secs(10), Duration::from_millis(50), || {
        let rows = sql.query(
            "SELECT id FROM messages WHERE status='unread' AND direction='inbound'
             ORDER BY timestamp DESC LIMIT 10",
        );
        rows.first()
            .map(|r| r.get(0))
            .ok_or_else(|| "no unread row".to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.log_tail(40)));
    sql.runtime
        .block_on(
            sql.client
                .execute("UPDATE messages SET status='read' WHERE id=$1", &[&id]),
        )
        .expect("the contract UPDATE");
    poll(Duration::from_secs(10), Duration::from_millis(100), || {
        let used = control.used("SM");
        if used == 0 {
            Ok(())
        } else {
            Err(format!("{used} on the SIM"))
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the read copy stayed on the SIM: {e}\n{}",
            daemon.log_tail(40)
        )
    });

    // The CLI on the same database: `send`, `list`, `health`.
    let sent = conductor(&["--db", &url, "send", "+15550125", "from the cli"], "");
    assert!(sent.status.success(), "{sent:?}");
    poll(Duration::from_secs(10), Duration::from_millis(50), || {
        if control.submissions_of("from the cli") == 1 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "`conductor send` was not sent: {e}\n{}",
            daemon.log_tail(40)
        )
    });
    let list = conductor(&["--db", &url, "list", "--json"], "");
    assert!(list.status.success(), "{list:?}");
    assert!(String::from_utf8_lossy(&list.stdout).contains("hello over postgres"));
    let health = conductor(
        &["--config", config.to_str().unwrap_or_default(), "health"],
        "",
    );
    let text = String::from_utf8_lossy(&health.stdout);
    assert!(health.status.success(), "{health:?}");
    assert!(text.contains("ready (node solo)"), "{text}");
    assert!(text.contains("node solo"), "{text}");
}

/// The API address `conductor run` logs once it listens.
fn api_address(daemon: &DaemonProcess) -> String {
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        let log = daemon.log();
        log.lines()
            .find(|l| l.contains("HTTP API and dashboard listening"))
            .and_then(|l| l.split("address=").nth(1))
            .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
            .ok_or_else(|| daemon.log_tail(20))
    })
    .unwrap_or_else(|log| panic!("no API address in the log:\n{log}"))
}

/// Waits until `sql` sees `n` ready modems (the node started and opened them).
fn wait_ready(pg: &PgServer, db: &str, n: i64, daemon: &DaemonProcess) -> Sql {
    poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let sql = Sql::connect(pg, db);
        match sql.runtime.block_on(sql.client.query_one(
            "SELECT count(*) FROM modem_status WHERE state = 'ready'",
            &[],
        )) {
            Ok(row) if row.get::<_, i64>(0) == n => Ok(sql),
            Ok(row) => Err(format!("{} ready", row.get::<_, i64>(0))),
            Err(e) => Err(e.to_string()),
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the daemon never had {n} ready modems: {e}\n{}",
            daemon.log_tail(40)
        )
    })
}

/// The database goes away mid-run (`pg_ctl stop -m fast`) and comes back on the same port:
/// meanwhile the node sends nothing more, keeps the inbound messages on the SIM and shows the
/// database down; afterwards it reconnects, re-acquires its lease, and every queued row goes
/// out once and every SIM copy is stored once and then deleted.
#[test]
fn a_node_that_loses_its_database_stops_keeps_the_sim_and_resumes_when_it_is_back() {
    let Some(pg) = PgServer::start() else { return };
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(pg.create_db("outage"));
    let dir = tempfile::tempdir().expect("temp dir");
    // A slow modem, so rows are still queued when the server stops.
    let sim = VirtualModemProcess::start_with_control(&["--send-latency", "0.1"]);
    let config = node_config(dir.path(), &url, "solo", &[("m1", sim.device())]);
    // Delete-on-store: a SIM copy may go only once its row is committed.
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(&config).expect("read the config")).expect("json");
    file["inbound"]["delete_policy"] = json!("on_store");
    write_config(&config, &file);
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    let sql = wait_ready(&pg, "outage", 1, &daemon);
    let api = api_address(&daemon);
    let mut control = sim.control();

    let outbound: Vec<String> = (0..60).map(|i| format!("queued {i:03}")).collect();
    sql.insert_outbound(&outbound);
    let submitted = |control: &mut Control| -> u64 {
        control
            .submitted()
            .iter()
            .map(|s| s["count"].as_u64().unwrap_or(0))
            .sum()
    };
    poll(Duration::from_secs(20), Duration::from_millis(20), || {
        let n = submitted(&mut control);
        if n >= 5 {
            Ok(())
        } else {
            Err(format!("{n} submitted"))
        }
    })
    .unwrap_or_else(|e| panic!("sending never started: {e}\n{}", daemon.log_tail(40)));
    drop(sql);

    pg.stop();
    let stopped_at = Instant::now();
    // At most the one send between its record and its verdict can still reach the modem.
    let at_stop = submitted(&mut control);
    for i in 0..3 {
        control.inject("+15550177", &format!("during the outage {i}"));
    }
    // The node notices: readiness and health say the database is down.
    poll(Duration::from_secs(15), Duration::from_millis(100), || {
        let (ready, body) = http_get(&api, "/readyz");
        let (health, checks) = http_get(&api, "/api/v1/health");
        let db_down = checks.contains(r#""name":"database","ok":false"#)
            || checks.contains(r#""ok":false,"name":"database""#)
            || (health == 503 && checks.contains("database"));
        if ready == 503 && body.contains("database") && health == 503 && db_down {
            Ok(())
        } else {
            Err(format!(
                "/readyz {ready} {body}; /api/v1/health {health} {checks}"
            ))
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the database outage does not show: {e}\n{}",
            daemon.log_tail(40)
        )
    });
    // Past the lease's give-up time (expiry - heartbeat = 5 s) the port is closed: nothing was
    // sent meanwhile, and the SIM still holds every message received.
    poll(Duration::from_secs(15), Duration::from_millis(100), || {
        if daemon.log().contains("stops driving modem m1 at once") {
            Ok(())
        } else {
            Err(daemon.log_tail(10))
        }
    })
    .unwrap_or_else(|e| panic!("the node kept driving m1 without its lease: {e}"));
    let during = submitted(&mut control);
    assert!(
        during <= at_stop + 1,
        "{during} submissions after the stop, {at_stop} at it: the node sent without a database"
    );
    assert_eq!(
        control.used("SM"),
        3,
        "the SIM lost messages that were never stored"
    );
    let outage = stopped_at.elapsed();

    pg.restart();
    let sql = Sql::connect(&pg, "outage");
    poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let queued = sql.count(
            "SELECT count(*) FROM messages WHERE direction = 'outbound'
               AND status IN ('queued', 'sending')",
        );
        let inbound = sql.count(
            "SELECT count(*) FROM messages WHERE direction = 'inbound'
               AND content LIKE 'during the outage %'",
        );
        let on_sim = control.used("SM");
        if queued == 0 && inbound == 3 && on_sim == 0 {
            Ok(())
        } else {
            Err(format!(
                "{queued} queued, {inbound}/3 stored, {on_sim} on the SIM"
            ))
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "the node did not resume after the outage: {e}\n{}",
            daemon.log_tail(60)
        )
    });
    let resumed = stopped_at.elapsed();
    // Every row went out once (the one interrupted mid-send, if any, is `unknown`).
    let by_text = crate::support::submissions_by_text(&mut control);
    let twice: Vec<_> = by_text.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "submitted more than once: {twice:?}");
    for row in sql.query("SELECT content, status FROM messages WHERE direction = 'outbound'") {
        let (text, status): (String, String) = (row.get(0), row.get(1));
        match status.as_str() {
            "sent" | "delivered" => {
                assert_eq!(
                    by_text.get(&text),
                    Some(&1),
                    "{text} is {status} but not submitted once"
                );
            }
            "unknown" => {}
            other => panic!("{text} is left {other}"),
        }
    }
    let unknown = sql.count("SELECT count(*) FROM messages WHERE status = 'unknown'");
    assert!(
        unknown <= 1,
        "{unknown} rows unknown: only a send in flight at the stop may be"
    );
    let (ready, body) = http_get(&api, "/readyz");
    assert_eq!(ready, 200, "{body}");
    println!(
        "outage: database down {outage:.1?}, node resumed {resumed:.1?} after the stop, \
         {unknown} unknown; test {:.1?}",
        started.elapsed()
    );
}

/// A free loopback port nothing listens on: a network modem this node cannot reach.
fn dead_device() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    format!("tcp://127.0.0.1:{port}")
}

/// Node A holds m1 and m2 but cannot reach m2's device; node E names m2 with a working path,
/// node D names only m1 (a pure standby). A gives m2's lease up after the open bound (two
/// expiries) and E takes it over; D is ready and healthy while it holds nothing; the API and
/// `/metrics` show which node holds which modem.
#[test]
fn a_standby_is_ready_and_a_modem_that_cannot_be_opened_is_handed_over() {
    let Some(pg) = PgServer::start() else { return };
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(pg.create_db("handover"));
    let dir = tempfile::tempdir().expect("temp dir");
    let s1 = VirtualModemProcess::start_with_control(&[]);
    let s2 = VirtualModemProcess::start_with_control(&[]);
    let config_a = node_config(
        dir.path(),
        &url,
        "node-a",
        &[("m1", s1.device()), ("m2", dead_device())],
    );
    let config_d = node_config(dir.path(), &url, "node-d", &[("m1", s1.device())]);
    let config_e = node_config(dir.path(), &url, "node-e", &[("m2", s2.device())]);
    let a = DaemonProcess::start(&config_a, &dir.path().join("a.log"));
    let sql = poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let sql = Sql::connect(&pg, "handover");
        match sql.runtime.block_on(sql.client.query(
            "SELECT modem_id FROM modem_leases WHERE node_id = 'node-a' AND expires_at > now()",
            &[],
        )) {
            Ok(rows) if rows.len() == 2 => Ok(sql),
            Ok(rows) => Err(format!("{} leases", rows.len())),
            Err(e) => Err(e.to_string()),
        }
    })
    .unwrap_or_else(|e| panic!("node A never held m1 and m2: {e}\n{}", a.log_tail(30)));
    let acquired = Instant::now();
    let d = DaemonProcess::start(&config_d, &dir.path().join("d.log"));
    let e = DaemonProcess::start(&config_e, &dir.path().join("e.log"));

    // m2 moves to node E once node A gave it up (open bound 12 s with a 6 s expiry).
    poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let leases = live_leases(&sql);
        if leases.get("m2").map(String::as_str) == Some("node-e") {
            Ok(())
        } else {
            Err(format!("{leases:?}"))
        }
    })
    .unwrap_or_else(|err| {
        panic!(
            "node E did not get m2 from node A: {err}\n{}",
            logs(&[("a", &a), ("e", &e)])
        )
    });
    let handover = acquired.elapsed();
    assert!(
        a.log().contains("giving the lease up"),
        "{}",
        a.log_tail(30)
    );
    wait_ready(&pg, "handover", 2, &e);

    // The pure standby: ready as soon as its keeper heard that node A holds m1.
    let ready_line = poll(Duration::from_secs(10), Duration::from_millis(50), || {
        d.log()
            .lines()
            .find(|l| l.contains("conductor is ready"))
            .map(str::to_owned)
            .ok_or_else(|| d.log_tail(20))
    })
    .unwrap_or_else(|log| panic!("the standby never declared readiness:\n{log}"));
    assert!(
        ready_line.contains("modem m1 standing by (held by node-a)"),
        "{ready_line}"
    );
    let api_d = api_address(&d);
    let (code, body) = http_get(&api_d, "/readyz");
    assert_eq!(code, 200, "the standby's /readyz: {body}");
    let (code, body) = http_get(&api_d, "/api/v1/health");
    assert_eq!(code, 200, "the standby's /api/v1/health: {body}");
    let health = conductor(
        &["--config", config_d.to_str().unwrap_or_default(), "health"],
        "",
    );
    assert!(
        health.status.success(),
        "the standby's `health`: {health:?}"
    );

    // The API's `node` on each modem, and the nodes, from node A.
    let api_a = api_address(&a);
    let (code, body) = http_get(&api_a, "/api/v1/modems");
    assert_eq!(code, 200, "{body}");
    let modems: Value = serde_json::from_str(&body).expect("modems JSON");
    let node_of = |id: &str| {
        modems["modems"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["id"] == id)
            .map(|m| m["node"].clone())
    };
    assert_eq!(node_of("m1"), Some(json!("node-a")), "{modems}");
    assert_eq!(node_of("m2"), Some(json!("node-e")), "{modems}");
    let nodes: Vec<&str> = modems["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["node"].as_str())
        .collect();
    assert_eq!(nodes, ["node-a", "node-e"], "{modems}");
    // The lease metrics.
    let (code, metrics) = http_get(&api_a, "/metrics");
    assert_eq!(code, 200);
    for line in [
        r#"conductor_modem_lease{modem="m1",node="node-a"} 1"#,
        r#"conductor_modem_lease{modem="m2",node="node-e"} 1"#,
        r#"conductor_node_live{node="node-a"} 1"#,
        r#"conductor_node_live{node="node-e"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    println!(
        "handover: m2 handed from node-a to node-e {handover:.1?} after its lease was \
         acquired; test {:.1?}",
        started.elapsed()
    );
}

/// Two processes started with one `database.node`: the second is refused with an error that
/// names the fix; after the first is killed (SIGKILL) the id is free at once and a restarted
/// process takes its modem back.
#[test]
fn a_second_process_with_the_same_node_id_is_refused() {
    let Some(pg) = PgServer::start() else { return };
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(pg.create_db("twins"));
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = VirtualModemProcess::start_with_control(&[]);
    let config = node_config(dir.path(), &url, "twin", &[("m1", sim.device())]);
    let mut first = DaemonProcess::start(&config, &dir.path().join("first.log"));
    wait_ready(&pg, "twins", 1, &first);

    let mut second = DaemonProcess::start(&config, &dir.path().join("second.log"));
    let status = second
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the duplicate kept running:\n{}", second.log_tail(30)));
    assert!(!status.success(), "the duplicate exited successfully");
    let log = second.log();
    assert!(
        log.contains("already node twin") && log.contains("database.node"),
        "{log}"
    );
    assert!(
        first.running(),
        "the first process stopped:\n{}",
        first.log_tail(30)
    );

    first.kill();
    let mut again = DaemonProcess::start(&config, &dir.path().join("again.log"));
    let sql = Sql::connect(&pg, "twins");
    poll(Duration::from_secs(20), Duration::from_millis(100), || {
        if again
            .log()
            .contains("node twin holds the lease of modem m1")
        {
            Ok(())
        } else {
            Err(again.log_tail(20))
        }
    })
    .unwrap_or_else(|e| panic!("the restarted node did not take m1 back: {e}"));
    assert_eq!(
        live_leases(&sql).get("m1").map(String::as_str),
        Some("twin")
    );
    again.terminate(Duration::from_secs(20));
    println!("twins: test {:.1?}", started.elapsed());
}
