//! The daemon as deployed: the release `conductor run` against `conductor sim` at zero send
//! latency, both real processes, a SQLite file, and this process as the external reader and
//! writer (rusqlite, as n8n or a script would be).
//!
//! Run with `cargo bench -p conductor --bench daemon`. It prints, against issue 5's targets:
//! - inbound: SIM store (the inject reply) → row visible to another connection;
//! - outbound: a row committed by another process → `AT+CMGS` seen by the simulator;
//! - a batch of 100 rows in one transaction: total time, messages per second, and what each
//!   further message adds (from the simulator's own submission times);
//! - the idle daemon: RSS (VmRSS, VmHWM) and CPU time (utime + stime) over 10 s, right after
//!   start-up and again after the traffic.
//!
//! Figures go to BENCHMARKS.md.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Control, DaemonProcess, VirtualModemProcess, poll};

const INBOUND: usize = 200;
const OUTBOUND: usize = 50;
const BATCH: usize = 100;
const IDLE: Duration = Duration::from_secs(10);

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(name: &str, mut samples: Vec<Duration>) -> Vec<Duration> {
    samples.sort();
    println!(
        "{name:<48} n={:<4} p50={:>7.1} ms  p90={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99)),
        ms(percentile(&samples, 1.0)),
    );
    samples
}

fn open(db: &Path) -> Connection {
    let c = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("the database opens");
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    c
}

/// Submissions the simulator accepted so far (each one counted, duplicates included).
fn submissions(control: &mut Control) -> u64 {
    control.call(json!({"op": "stats"}))["stats"]["submitted"]
        .as_u64()
        .expect("stats.submitted")
}

/// (VmRSS, VmHWM, RssAnon, RssFile) in KiB. RssFile is mostly the binary's own code pages
/// (shared, and dropped first under memory pressure); RssAnon is what the daemon allocated.
fn memory(pid: u32) -> (u64, u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        field("VmRSS:"),
        field("VmHWM:"),
        field("RssAnon:"),
        field("RssFile:"),
    )
}

/// utime + stime in clock ticks (10 ms each on most systems).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc_pid_stat(5) are the 12th and 13th after the command name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Summed over every thread: nanoseconds on a CPU (`schedstat`, finer than the 10 ms ticks of
/// `stat`) and context switches (each wake-up of a thread is one).
fn threads(pid: u32) -> (u64, u64) {
    let mut cpu_ns = 0;
    let mut switches = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc task");
    for task in tasks.flatten() {
        let path = task.path();
        if let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) {
            cpu_ns += schedstat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(status) = std::fs::read_to_string(path.join("status")) {
            switches += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    (cpu_ns, switches)
}

/// Idles for `IDLE` and reports the daemon's memory, CPU time and wake-ups over it.
fn idle(label: &str, pid: u32) -> (u64, u64, f64) {
    let ticks = clock_ticks_per_second();
    let before = cpu_ticks(pid);
    let (ns_before, switches_before) = threads(pid);
    std::thread::sleep(IDLE);
    let (ns_after, switches_after) = threads(pid);
    let used_ticks = cpu_ticks(pid) - before;
    let (rss, hwm, anon, file) = memory(pid);
    let cpu_ms = (ns_after - ns_before) as f64 / 1e6;
    println!(
        "{label:<48} VmRSS {:.1} MiB (anon {:.1}, file {:.1})  VmHWM {:.1} MiB  CPU {cpu_ms:.1} ms \
         in {} s ({:.3} %, utime+stime {} ms), {:.1} wake-ups/s",
        rss as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0,
        hwm as f64 / 1024.0,
        IDLE.as_secs(),
        cpu_ms / 10.0 / IDLE.as_secs() as f64,
        used_ticks * 1000 / ticks,
        (switches_after - switches_before) as f64 / IDLE.as_secs_f64(),
    );
    (rss, hwm, cpu_ms)
}

fn main() {
    // `cargo bench` passes `--bench`; a `cargo test --benches` run passes nothing we need, and
    // this takes a minute, so it only runs as a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("daemon benchmark: run with `cargo bench -p conductor --bench daemon`");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");
    let config = dir.path().join("config.json");
    let sim = VirtualModemProcess::start_with_control(&["--send-latency", "0"]);
    let mut control = sim.control();
    // Defaults (10 s sweep, 250 ms change poll) but delete-on-store, so 200 inbound messages do
    // not fill the 30-slot SIM, and no status reports, so outbound timings are sends alone.
    let file = json!({
        "database": {"path": db},
        "modems": [{"id": "m1", "device": sim.device()}],
        "inbound": {"delete_policy": "on_store"},
        "outbound": {"status_reports": false},
    });
    std::fs::write(&config, file.to_string()).expect("write the config");
    let mut daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    let pid = daemon.pid();
    poll(Duration::from_secs(30), Duration::from_millis(50), || {
        let state: Option<String> =
            Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_WRITE)
                .ok()
                .and_then(|c| {
                    c.query_row(
                        "SELECT state FROM modem_status WHERE modem_id='m1'",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                    .ok()
                    .flatten()
                });
        match state.as_deref() {
            Some("ready") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .unwrap_or_else(|seen| {
        panic!(
            "the daemon did not get the modem ready: {seen}\n{}",
            daemon.log()
        )
    });
    println!("conductor run (pid {pid}) ready against conductor sim at zero send latency\n");

    let (rss0, hwm0, cpu0) = idle("idle after start-up, 10 s", pid);

    // Inbound: inject one, wait for its row, repeat.
    let reader = open(&db);
    let mut inbound = Vec::with_capacity(INBOUND);
    let started = Instant::now();
    for i in 0..INBOUND {
        let text = format!("inbound bench #{i}");
        control.inject("+33612345678", &text);
        let stored = Instant::now();
        poll(Duration::from_secs(10), Duration::from_millis(1), || {
            reader
                .query_row(
                    "SELECT id FROM messages WHERE direction='inbound' AND content=?1",
                    [&text],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "not yet".to_owned())
        })
        .unwrap_or_else(|seen| panic!("{text} never stored: {seen}\n{}", daemon.log()));
        inbound.push(stored.elapsed());
    }
    let inbound_rate = INBOUND as f64 / started.elapsed().as_secs_f64();
    let inbound = report("inbound: SIM store -> row visible", inbound);

    // Outbound, one at a time: commit a row, wait for the simulator to count a submission.
    let writer = open(&db);
    let mut outbound = Vec::with_capacity(OUTBOUND);
    for i in 0..OUTBOUND {
        // Arrivals spread over the change poll's 250 ms period: right after a submission the
        // daemon has just polled, so back-to-back inserts would all wait a full period.
        std::thread::sleep(Duration::from_millis((i as u64 * 53) % 250));
        let before = submissions(&mut control);
        writer
            .execute(
                "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
                 VALUES ('+33698765432', ?1, datetime('now'), 'queued', 'outbound')",
                [format!("outbound bench #{i}")],
            )
            .expect("insert");
        let committed = Instant::now();
        poll(Duration::from_secs(10), Duration::from_millis(1), || {
            if submissions(&mut control) > before {
                Ok(())
            } else {
                Err("not submitted".to_owned())
            }
        })
        .unwrap_or_else(|_| panic!("outbound #{i} never submitted\n{}", daemon.log()));
        outbound.push(committed.elapsed());
    }
    let outbound = report("outbound: row committed -> AT+CMGS", outbound);

    // A batch of 100 in one transaction.
    std::thread::sleep(Duration::from_millis(125));
    let before = submissions(&mut control);
    let texts: Vec<String> = (0..BATCH).map(|i| format!("batch bench #{i:03}")).collect();
    let mut batch_writer = open(&db);
    let tx = batch_writer.transaction().expect("begin");
    for text in &texts {
        tx.execute(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
             VALUES ('+33698765432', ?1, datetime('now'), 'queued', 'outbound')",
            [text],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
    let committed = Instant::now();
    let mut first = None;
    poll(Duration::from_secs(60), Duration::from_millis(1), || {
        let n = submissions(&mut control) - before;
        if n > 0 && first.is_none() {
            first = Some(committed.elapsed());
        }
        if n >= BATCH as u64 {
            Ok(())
        } else {
            Err(format!("{n} submitted"))
        }
    })
    .unwrap_or_else(|seen| panic!("the batch stalled: {seen}\n{}", daemon.log()));
    let all_submitted = committed.elapsed();
    let first = first.unwrap_or(all_submitted);
    poll(Duration::from_secs(60), Duration::from_millis(1), || {
        let sent: i64 = reader
            .query_row(
                "SELECT count(*) FROM messages WHERE content LIKE 'batch bench #%' AND status='sent'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if sent as usize == BATCH { Ok(()) } else { Err(format!("{sent} sent")) }
    })
    .unwrap_or_else(|seen| panic!("the batch was not all marked sent: {seen}"));
    let all_sent = committed.elapsed();
    // The simulator's own clock for each submission: the spacing the daemon adds.
    let submitted: Vec<Value> = control.submitted();
    let mut times: Vec<u64> = submitted
        .iter()
        .filter(|s| {
            s["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("batch bench #"))
        })
        .map(|s| s["first_at_ms"].as_u64().expect("first_at_ms"))
        .collect();
    times.sort_unstable();
    assert_eq!(
        times.len(),
        BATCH,
        "each batch row is one distinct submission"
    );
    let duplicates = submitted.iter().filter(|s| s["count"] != 1).count();
    assert_eq!(duplicates, 0, "nothing was submitted twice");
    let spread_ms = (times[BATCH - 1] - times[0]) as f64;
    let per_message = spread_ms / (BATCH - 1) as f64;
    println!(
        "{:<48} first AT+CMGS {:.0} ms, all submitted {:.0} ms, all `sent` {:.0} ms",
        "batch of 100 in one transaction:",
        ms(first),
        ms(all_submitted),
        ms(all_sent)
    );
    println!(
        "{:<48} {:.0} messages/s; each further message adds {per_message:.1} ms (simulator clock)",
        "",
        BATCH as f64 / all_sent.as_secs_f64()
    );
    println!(
        "{:<48} {inbound_rate:.0} messages/s (one at a time)",
        "inbound:"
    );

    std::thread::sleep(Duration::from_secs(1));
    let (rss1, hwm1, cpu1) = idle("idle after the traffic, 10 s", pid);

    let status = daemon.terminate(Duration::from_secs(10));
    println!("\nSIGTERM: exit {status:?}");

    println!("\ntargets (issue 5):");
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  inbound p50 < 100 ms: {:.1} ms {}; p99 < 500 ms: {:.1} ms {}",
        ms(percentile(&inbound, 0.5)),
        verdict(percentile(&inbound, 0.5) < Duration::from_millis(100)),
        ms(percentile(&inbound, 0.99)),
        verdict(percentile(&inbound, 0.99) < Duration::from_millis(500)),
    );
    println!(
        "  outbound < 1 s: max {:.1} ms {}; batch increment < 20 ms: {per_message:.1} ms {}",
        ms(percentile(&outbound, 1.0)),
        verdict(percentile(&outbound, 1.0) < Duration::from_secs(1)),
        verdict(per_message < 20.0),
    );
    println!(
        "  idle RSS < 20 MiB: {:.1} MiB after start-up, {:.1} MiB after traffic (peak {:.1}) {}",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        hwm1.max(hwm0) as f64 / 1024.0,
        verdict(rss0.max(rss1) < 20 * 1024),
    );
    println!(
        "  idle CPU: {cpu0:.1} ms and {cpu1:.1} ms per 10 s (one 10 s sweep, a 250 ms change poll)"
    );
}
