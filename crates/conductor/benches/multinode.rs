//! Outbound throughput across nodes on one PostgreSQL database (issue 9): does sending scale
//! when nodes are added?
//!
//! For 1, 2 and 3 nodes, each a release `conductor run` with two `conductor sim` modems at
//! zero send latency, on a throwaway PostgreSQL cluster (crates/store/tests/postgres/server.rs):
//! `MULTINODE_BENCH_MESSAGES` rows (default 3 000) are inserted by this process as an
//! external SQL client in one transaction, and the time from that commit until the last row
//! is `sent` gives messages per second. Each run starts from a fresh database.
//!
//! Run with `cargo bench -p conductor --bench multinode`; figures go to BENCHMARKS.md. Needs
//! PostgreSQL (`apt-get install postgresql`); without it, it prints `NOT RUN`.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../../store/tests/postgres/server.rs"]
mod pg_server;

use std::time::{Duration, Instant};

use pg_server::PgServer;
use serde_json::json;
use support::{DaemonProcess, VirtualModemProcess, env_or, poll, write_config};

fn main() {
    let Some(pg) = PgServer::start() else { return };
    let messages: usize = env_or("MULTINODE_BENCH_MESSAGES", 3_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!("outbound throughput, {messages} rows, two zero-latency modems per node");
    for nodes in 1..=3 {
        let db = format!("bench{nodes}");
        let url = runtime.block_on(pg.create_db(&db));
        let client = runtime.block_on(pg.client(&db));
        let dir = tempfile::tempdir().expect("temp dir");
        let sims: Vec<VirtualModemProcess> = (0..nodes * 2)
            .map(|_| VirtualModemProcess::start(&[]))
            .collect();
        let daemons: Vec<DaemonProcess> = (0..nodes)
            .map(|n| {
                let config = dir.path().join(format!("node{n}.json"));
                write_config(
                    &config,
                    &json!({
                        "database": {"url": url, "node": format!("node{n}")},
                        "modems": [
                            {"id": format!("m{}", 2 * n + 1), "device": sims[2 * n].device()},
                            {"id": format!("m{}", 2 * n + 2), "device": sims[2 * n + 1].device()},
                        ],
                        "http": {"listen": "127.0.0.1:0"},
                        "outbound": {"duplicate_window": "0s"},
                    }),
                );
                DaemonProcess::start(&config, &dir.path().join(format!("node{n}.log")))
            })
            .collect();
        let count = |sql: &str| -> i64 {
            runtime
                .block_on(client.query_one(sql, &[]))
                .map(|r| r.get(0))
                .unwrap_or(-1)
        };
        let modems = i64::try_from(nodes * 2).unwrap_or(i64::MAX);
        poll(Duration::from_secs(60), Duration::from_millis(100), || {
            let ready = count("SELECT count(*) FROM modem_status WHERE state = 'ready'");
            if ready == modems {
                Ok(())
            } else {
                Err(format!("{ready} ready"))
            }
        })
        .unwrap_or_else(|e| panic!("{nodes} node(s) never got ready: {e}"));
        let texts: Vec<String> = (0..messages).map(|i| format!("bench {i:05}")).collect();
        let start = Instant::now();
        runtime
            .block_on(client.execute(
                "INSERT INTO messages (phone_number, content, timestamp, status, direction)
                 SELECT '+15550100', t, now(), 'queued', 'outbound' FROM unnest($1::text[]) t",
                &[&texts],
            ))
            .expect("insert");
        let want = i64::try_from(messages).unwrap_or(i64::MAX);
        poll(Duration::from_secs(600), Duration::from_millis(20), || {
            let done = count(
                "SELECT count(*) FROM messages WHERE status IN ('sent', 'delivered', 'failed', 'unknown')",
            );
            if done >= want { Ok(()) } else { Err(format!("{done} done")) }
        })
        .unwrap_or_else(|e| panic!("{nodes} node(s) did not finish: {e}"));
        let took = start.elapsed();
        println!(
            "{nodes} node(s), {} modems: {messages} sent in {:.2} s = {:.0} messages/s",
            nodes * 2,
            took.as_secs_f64(),
            messages as f64 / took.as_secs_f64()
        );
        for mut daemon in daemons {
            daemon.terminate(Duration::from_secs(20));
        }
    }
}
