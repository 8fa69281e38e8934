//! Soak: a busy day through one virtual modem at full speed, with faults on a schedule, while
//! the daemon's resident memory, open descriptors, database size and log size are sampled.
//!
//! Shared by the CI test below (short: `SOAK_CI_MESSAGES`, default 8 000, enough to rotate a
//! 1 MiB log) and the benchmark `cargo bench -p conductor --bench soak` (`SOAK_MESSAGES`,
//! default 100 000), which includes this file. Half the messages come in (injected into the
//! modem, from 10 000 senders), half go out (inserted as `queued` rows by an external writer,
//! as the SQL contract does, to 10 000 recipients), with at most `window` of each outstanding,
//! so the daemon always has work and the run measures its pace.
//!
//! Faults every `fault_every`, in turn: the modem unplugged for 3 s, a burst of line noise, a
//! reboot. The verdicts: memory and descriptors flat (from a quarter of the run to its end),
//! logs within their rotation cap, database growth per message the same early and late, and
//! nothing lost or doubled (each inbound text stored once, nothing submitted twice, every
//! outbound row ended).

use crate::support::{
    DaemonProcess, Scratch, VirtualModemProcess, open_db, poll, proc_figures, scratch,
    write_one_modem_config,
};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakParams {
    /// Messages in all, half each way.
    pub messages: usize,
    /// Outstanding messages allowed per direction.
    pub window: usize,
    /// A fault this often.
    pub fault_every: Duration,
    /// Log rotation: size of one file (MiB) and files kept.
    pub log_mib: u64,
    pub log_files: usize,
}

/// One sample.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub secs: f64,
    /// Messages finished (inbound stored + outbound ended).
    pub done: usize,
    pub rss_kib: u64,
    pub fds: usize,
    /// Database bytes (page count × page size, WAL included).
    pub db_bytes: u64,
    /// The log file and its rotated siblings.
    pub log_bytes: u64,
    pub log_files: usize,
}

/// Figures and verdicts.
#[derive(Debug)]
pub struct SoakReport {
    pub messages: usize,
    pub seconds: f64,
    pub samples: Vec<Sample>,
    pub faults: usize,
    pub statuses: HashMap<String, usize>,
    pub rss_growth_kib: i64,
    pub fd_growth: i64,
    pub db_bytes_per_message_early: f64,
    pub db_bytes_per_message_late: f64,
    pub log_cap_bytes: u64,
    pub log_max_bytes: u64,
    pub rotated: bool,
    pub memory_flat: bool,
    pub fds_flat: bool,
    pub logs_within_cap: bool,
    pub db_growth_constant: bool,
    /// Each inbound text stored exactly once, no SUBMIT twice, every outbound row ended.
    pub correct: bool,
    pub problems: Vec<String>,
}

fn log_figures(dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("daemon.log")
        {
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            files += 1;
        }
    }
    (bytes, files)
}

fn count(c: &rusqlite::Connection, sql: &str) -> usize {
    c.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| usize::try_from(n).unwrap_or(0))
        .unwrap_or(0)
}

fn db_bytes(c: &rusqlite::Connection) -> u64 {
    let pages: i64 = c
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap_or(0);
    let size: i64 = c
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap_or(0);
    u64::try_from(pages * size).unwrap_or(0)
}

/// Runs the soak and returns its report (it panics only when the rig cannot be set up).
pub fn run(params: &SoakParams) -> SoakReport {
    let Scratch { dir, db, config } = scratch("soak.db");
    let sim = VirtualModemProcess::start_with_control(&[]);
    write_one_modem_config(
        &config,
        &db,
        &sim.device(),
        json!({
            "http": {"listen": "127.0.0.1:0"},
            "inbound": {"sweep_interval": "2s", "delete_policy": "on_store"},
            "logging": {
                "level": "info",
                "file": dir.path().join("daemon.log"),
                "max_file_mib": params.log_mib,
                "max_files": params.log_files,
            },
        }),
    );
    // The console copy of the log is not under test (it is not rotated): drop it.
    let mut daemon = DaemonProcess::start(&config, Path::new("/dev/null"));
    let pid = daemon.pid();
    poll(Duration::from_secs(30), Duration::from_millis(50), || {
        let n = count(
            &open_db(&db),
            "SELECT count(*) FROM modem_status WHERE state = 'ready'",
        );
        if n > 0 {
            Ok(())
        } else {
            Err("not ready".to_owned())
        }
    })
    .expect("the daemon becomes ready");

    let each = params.messages / 2;
    let c = open_db(&db);
    let mut control = sim.control();
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let (mut fed_in, mut fed_out) = (0usize, 0usize);
    let mut next_sample = Instant::now();
    let mut next_fault = Instant::now() + params.fault_every;
    let mut faults = 0usize;
    let mut last_print = 0usize;
    let take_sample = |c: &rusqlite::Connection, done: usize| -> Option<Sample> {
        let figures = proc_figures(pid)?;
        let (log_bytes, log_files) = log_figures(dir.path());
        Some(Sample {
            secs: started.elapsed().as_secs_f64(),
            done,
            rss_kib: figures.rss_kib,
            fds: figures.fds,
            db_bytes: db_bytes(c),
            log_bytes,
            log_files,
        })
    };
    let finished = |c: &rusqlite::Connection| -> (usize, usize) {
        let stored = count(
            c,
            "SELECT count(*) FROM messages WHERE direction = 'inbound'",
        );
        let open = count(
            c,
            "SELECT count(*) FROM messages WHERE direction = 'outbound' \
             AND status IN ('queued', 'sending')",
        );
        (stored, open)
    };
    let deadline_per_message = Duration::from_millis(50);
    let overall = Duration::from_secs(120) + deadline_per_message * params.messages as u32;
    loop {
        let (stored, open) = finished(&c);
        let ended_out = fed_out - open;
        let done = stored.min(fed_in) + ended_out;
        if Instant::now() >= next_sample {
            if let Some(sample) = take_sample(&c, done) {
                samples.push(sample);
            }
            next_sample += Duration::from_millis(500);
            if done >= last_print + params.messages / 10 {
                last_print = done;
                if let Some(s) = samples.last() {
                    eprintln!(
                        "soak: {:>7} done in {:>6.1} s, RSS {} KiB, {} fds, db {} KiB, logs {} KiB in {} files",
                        s.done,
                        s.secs,
                        s.rss_kib,
                        s.fds,
                        s.db_bytes / 1024,
                        s.log_bytes / 1024,
                        s.log_files
                    );
                }
            }
        }
        if fed_in >= each && fed_out >= each && stored >= each && open == 0 {
            break;
        }
        if started.elapsed() > overall {
            break;
        }
        if Instant::now() >= next_fault {
            let fault = match faults % 3 {
                0 => json!({"fault": "unplug", "seconds": 3}),
                1 => json!({"fault": "garbage", "bytes": 256}),
                _ => json!({"fault": "reboot"}),
            };
            control.fault(fault);
            faults += 1;
            next_fault += params.fault_every;
        }
        let room_in = (params.window + stored)
            .saturating_sub(fed_in)
            .min(each - fed_in)
            .min(50);
        let room_out = params
            .window
            .saturating_sub(open)
            .min(each - fed_out)
            .min(50);
        for _ in 0..room_in {
            control.inject(
                &format!("+336100{:05}", fed_in % 10_000),
                &format!("soak in {fed_in:06}"),
            );
            fed_in += 1;
        }
        if room_out > 0 {
            let tx = c.unchecked_transaction().expect("begin");
            for _ in 0..room_out {
                tx.execute(
                    "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
                     VALUES (?1, ?2, datetime('now'), 'queued', 'outbound')",
                    [
                        // A busy day's recipients: thousands of numbers, not a handful (the
                        // duplicate check scans one number's rows inside its window).
                        format!("+336200{:05}", fed_out % 10_000),
                        format!("soak out {fed_out:06}"),
                    ],
                )
                .expect("an external INSERT");
                fed_out += 1;
            }
            tx.commit().expect("commit");
        }
        if room_in == 0 && room_out == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (stored, open) = finished(&c);
    if let Some(sample) = take_sample(&c, stored + fed_out - open) {
        samples.push(sample);
    }
    let running = daemon.running();
    let mut problems = Vec::new();
    if !running {
        problems.push("the daemon stopped".to_owned());
    }
    if stored < each || open > 0 {
        problems.push(format!(
            "not drained in {overall:?}: {stored} of {each} stored, {open} outbound open"
        ));
    }

    // Correctness.
    let doubled = count(
        &c,
        "SELECT count(*) FROM (SELECT content FROM messages WHERE direction = 'inbound' \
         GROUP BY content HAVING count(*) > 1)",
    );
    if doubled > 0 {
        problems.push(format!("{doubled} inbound texts stored twice"));
    }
    if stored > each {
        problems.push(format!("{stored} inbound rows for {each} messages"));
    }
    let mut statuses: HashMap<String, usize> = HashMap::new();
    {
        let mut statement = c
            .prepare("SELECT status, count(*) FROM messages WHERE direction = 'outbound' GROUP BY status")
            .expect("prepare");
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .expect("query");
        for (status, n) in rows.flatten() {
            statuses.insert(status, usize::try_from(n).unwrap_or(0));
        }
    }
    for status in statuses.keys() {
        if !matches!(status.as_str(), "sent" | "delivered" | "unknown") {
            problems.push(format!("outbound rows ended {status}: {statuses:?}"));
        }
    }
    let twice = control
        .submitted()
        .iter()
        .filter(|s| s["count"].as_u64().unwrap_or(0) > 1)
        .count();
    if twice > 0 {
        problems.push(format!("{twice} SUBMITs went out more than once"));
    }
    let unknown = statuses.get("unknown").copied().unwrap_or(0);
    // A send is cut only by an unplug or a reboot: at most one in flight each.
    if unknown > faults {
        problems.push(format!("{unknown} unknown rows for {faults} faults"));
    }
    daemon.kill();

    // Verdicts, from the samples after the first quarter (warm-up: caches, the WAL).
    let at = |fraction: f64| -> Option<Sample> {
        let target = (params.messages as f64 * fraction) as usize;
        samples.iter().copied().find(|s| s.done >= target)
    };
    let last = samples.last().copied();
    let quarter = at(0.25);
    let half = at(0.5);
    let rss_growth_kib = match (quarter, last) {
        (Some(q), Some(l)) => l.rss_kib as i64 - q.rss_kib as i64,
        _ => 0,
    };
    let later: Vec<&Sample> = samples
        .iter()
        .filter(|s| quarter.is_some_and(|q| s.secs >= q.secs))
        .collect();
    let fd_growth = match (quarter, later.iter().map(|s| s.fds).max()) {
        (Some(q), Some(max)) => max as i64 - q.fds as i64,
        _ => 0,
    };
    let per_message = |a: Option<Sample>, b: Option<Sample>| -> f64 {
        match (a, b) {
            (Some(a), Some(b)) if b.done > a.done => {
                (b.db_bytes as f64 - a.db_bytes as f64) / (b.done - a.done) as f64
            }
            _ => 0.0,
        }
    };
    let early = per_message(quarter, half);
    let late = per_message(half, last);
    let log_cap_bytes = params.log_mib * 1024 * 1024 * (params.log_files as u64 + 1);
    let log_max_bytes = samples.iter().map(|s| s.log_bytes).max().unwrap_or(0);
    let rotated = samples.iter().any(|s| s.log_files > 1);
    let base_rss = quarter.map_or(0, |q| q.rss_kib) as i64;
    // Flat: under 10 % (and at least 4 MiB of slack for allocator noise) over the last three
    // quarters of the run.
    let memory_flat = rss_growth_kib <= (base_rss / 10).max(4096);
    let fds_flat = fd_growth <= 2;
    // One line may cross the limit before the file rotates.
    let logs_within_cap = log_max_bytes <= log_cap_bytes + 64 * 1024;
    let db_growth_constant = early > 0.0 && (late - early).abs() <= early * 0.25;
    SoakReport {
        messages: params.messages,
        seconds,
        samples,
        faults,
        statuses,
        rss_growth_kib,
        fd_growth,
        db_bytes_per_message_early: early,
        db_bytes_per_message_late: late,
        log_cap_bytes,
        log_max_bytes,
        rotated,
        memory_flat,
        fds_flat,
        logs_within_cap,
        db_growth_constant,
        correct: problems.is_empty(),
        problems,
    }
}

/// Prints the report as a small table and the verdicts.
pub fn print(report: &SoakReport) {
    println!(
        "soak: {} messages ({} each way) in {:.1} s = {:.0} messages/s, {} faults",
        report.messages,
        report.messages / 2,
        report.seconds,
        report.messages as f64 / report.seconds.max(0.001),
        report.faults
    );
    println!("| done | s | RSS KiB | fds | DB KiB | logs KiB (files) |");
    println!("|---|---|---|---|---|---|");
    let n = report.samples.len();
    for (i, s) in report.samples.iter().enumerate() {
        if n <= 12 || i % (n / 10).max(1) == 0 || i + 1 == n {
            println!(
                "| {} | {:.1} | {} | {} | {} | {} ({}) |",
                s.done,
                s.secs,
                s.rss_kib,
                s.fds,
                s.db_bytes / 1024,
                s.log_bytes / 1024,
                s.log_files
            );
        }
    }
    println!("outbound statuses: {:?}", report.statuses);
    println!(
        "memory flat: {} (RSS {:+} KiB from 25 % to the end)",
        report.memory_flat, report.rss_growth_kib
    );
    println!(
        "descriptors flat: {} ({:+} at most after 25 %)",
        report.fds_flat, report.fd_growth
    );
    println!(
        "logs within cap: {} (at most {} KiB of {} KiB; rotated: {})",
        report.logs_within_cap,
        report.log_max_bytes / 1024,
        report.log_cap_bytes / 1024,
        report.rotated
    );
    println!(
        "database growth constant: {} ({:.0} bytes/message from 25 % to 50 %, {:.0} from 50 % to the end)",
        report.db_growth_constant,
        report.db_bytes_per_message_early,
        report.db_bytes_per_message_late
    );
    println!(
        "nothing lost or doubled: {} {:?}",
        report.correct, report.problems
    );
}

#[test]
fn soak_short_memory_descriptors_logs_and_database_stay_in_bounds_under_faults() {
    let params = SoakParams {
        messages: crate::support::env_or("SOAK_CI_MESSAGES", 8_000),
        window: 100,
        fault_every: Duration::from_secs(crate::support::env_or("SOAK_FAULT_SECONDS", 5)),
        log_mib: 1,
        log_files: 2,
    };
    let report = run(&params);
    print(&report);
    assert!(report.correct, "{:?}", report.problems);
    assert!(report.faults >= 3, "faults injected: {}", report.faults);
    assert!(report.fds_flat, "descriptors grew by {}", report.fd_growth);
    assert!(
        report.logs_within_cap,
        "logs {} > cap {}",
        report.log_max_bytes, report.log_cap_bytes
    );
    if params.messages >= 12_000 {
        assert!(
            report.rotated,
            "12 000 messages write more than 1 MiB of log: it rotated"
        );
    }
    assert!(
        report.memory_flat,
        "RSS grew by {} KiB",
        report.rss_growth_kib
    );
    // Too short a run for a tight figure: within a factor of two.
    let (early, late) = (
        report.db_bytes_per_message_early,
        report.db_bytes_per_message_late,
    );
    assert!(
        early > 0.0 && late <= early * 2.0 && late >= early / 2.0,
        "database growth per message {early:.0} then {late:.0} bytes"
    );
}
