//! Crash torture: `conductor run` killed with SIGKILL at seeded random moments while messages
//! flow both ways, restarted each time, then checked against what was injected and queued.
//!
//! Promises 1 and 2 (every inbound message stored, exactly once, none left on the SIM) and 3
//! (no outbound message submitted twice; a send cut by a kill is `unknown`, never resent by
//! itself). Sized by `TORTURE_MESSAGES` (each way, default 500), `TORTURE_KILLS` (at least,
//! default 50) and `TORTURE_SEED` (default 1); the seed is printed so a failure can be replayed.

use crate::support::{
    DaemonProcess, Rng, Scratch, VirtualModemProcess, all_rows, env_or, open_db, poll, scratch,
    submissions_by_text, try_all_rows, write_one_modem_config,
};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const RECIPIENT: &str = "+33700000001";
const SENDER: &str = "+33711111111";

fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn sigkill_at_random_moments_loses_nothing_stores_nothing_twice_and_sends_nothing_twice() {
    let messages: usize = env_or("TORTURE_MESSAGES", 500);
    let min_kills: usize = env_or("TORTURE_KILLS", 50);
    let seed: u64 = env_or("TORTURE_SEED", 1);
    println!(
        "torture: {messages} inbound + {messages} outbound, >= {min_kills} kills, seed {seed}"
    );
    let started = Instant::now();

    let Scratch { dir, db, config } = scratch("torture.db");
    let log = dir.path().join("daemon.log");
    let sim = VirtualModemProcess::start_with_control(&["--seed", &seed.to_string()]);
    // delete-on-store: the SIM is emptied right after each commit, the riskiest moment for
    // promise 1. A short sweep, so copies whose +CMTI died with a killed daemon are read soon.
    write_one_modem_config(
        &config,
        &db,
        &sim.device(),
        json!({
            "http": {"listen": "127.0.0.1:0"},
            "inbound": {"sweep_interval": "1s", "delete_policy": "on_store"},
            "outbound": {"retry_backoff": "1s"},
        }),
    );

    // The daemon must have created the schema before the feeder inserts.
    let mut daemon = DaemonProcess::start(&config, &log);
    poll(Duration::from_secs(20), Duration::from_millis(20), || {
        let c = open_db(&db);
        c.query_row(
            "SELECT count(*) FROM modem_status WHERE state = 'ready'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| e.to_string())
        .and_then(|n| {
            if n > 0 {
                Ok(())
            } else {
                Err("not ready".into())
            }
        })
    })
    .unwrap_or_else(|e| panic!("the daemon never became ready: {e}\n{}", log_tail(&log, 40)));

    // The feeder: one inbound message injected and one outbound row inserted by an external
    // writer every few milliseconds, whatever the daemon is doing (running, dying, starting).
    let inbound_texts: Vec<String> = (0..messages).map(|i| format!("in {seed}/{i:05}")).collect();
    let outbound_texts: Vec<String> = (0..messages)
        .map(|i| format!("out {seed}/{i:05}"))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let fed = Arc::new(AtomicUsize::new(0));
    // Spread over about as long as the kills take (~250 ms a cycle).
    let feed_every = Duration::from_micros((min_kills as u64 * 250_000) / messages.max(1) as u64);
    let feeder = {
        let (inbound, outbound) = (inbound_texts.clone(), outbound_texts.clone());
        let (done, fed, db) = (Arc::clone(&done), Arc::clone(&fed), db.clone());
        let mut control = sim.control();
        std::thread::spawn(move || {
            let c = open_db(&db);
            for (i, (text_in, text_out)) in inbound.iter().zip(&outbound).enumerate() {
                control.inject(SENDER, text_in);
                c.execute(
                    "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
                     VALUES (?1, ?2, datetime('now'), 'queued', 'outbound')",
                    [RECIPIENT, text_out.as_str()],
                )
                .expect("an external INSERT never fails with a 5 s busy timeout");
                fed.store(i + 1, Ordering::SeqCst);
                std::thread::sleep(feed_every);
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // The kills: run for a random 100-400 ms (sometimes still starting, sometimes mid-batch,
    // mid-read, mid-delete), SIGKILL, start again at once.
    let mut rng = Rng::new(seed);
    let mut kills = 0usize;
    let mut uptimes = Vec::new();
    while kills < min_kills || !done.load(Ordering::SeqCst) {
        let uptime = Duration::from_millis(rng.range(100, 400));
        std::thread::sleep(uptime);
        daemon.kill();
        kills += 1;
        uptimes.push(uptime);
        daemon = DaemonProcess::start(&config, &log);
    }
    feeder.join().expect("the feeder finished");
    let kill_phase = started.elapsed();
    let c = open_db(&db);
    let progress = all_rows(&c);
    let stored_during = progress.iter().filter(|r| r.1 == "inbound").count();
    let sent_during = progress
        .iter()
        .filter(|r| r.1 == "outbound" && (r.2 == "sent" || r.2 == "delivered"))
        .count();
    println!(
        "{kills} kills in {kill_phase:.1?} ({} fed each way); by the last kill {stored_during} \
         inbound stored, {sent_during} outbound sent",
        fed.load(Ordering::SeqCst)
    );

    // The final drain: the last daemon runs undisturbed until nothing is pending anywhere.
    let mut control = sim.control();
    let drained = poll(Duration::from_secs(90), Duration::from_millis(100), || {
        let rows = all_rows(&c);
        let inbound = rows.iter().filter(|r| r.1 == "inbound").count();
        let pending: Vec<_> = rows
            .iter()
            .filter(|r| r.1 == "outbound" && (r.2 == "queued" || r.2 == "sending"))
            .collect();
        let held = control
            .held()
            .iter()
            .filter(|h| h["kind"] == "message")
            .count();
        let on_sim = control.sim()["slots"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|s| s["kind"] == "deliver").count());
        if inbound >= messages && pending.is_empty() && held == 0 && on_sim == 0 {
            Ok(())
        } else {
            Err(format!(
                "{inbound} inbound stored, {} outbound pending, {held} held, {on_sim} on the SIM",
                pending.len()
            ))
        }
    });
    if let Err(seen) = drained {
        panic!(
            "not drained 90 s after the last kill: {seen}\n{}",
            log_tail(&log, 60)
        );
    }
    println!(
        "drained {:.1?} after the last kill",
        started.elapsed() - kill_phase
    );
    assert!(daemon.running(), "the last daemon is still running");

    let rows = all_rows(&c);
    // Inbound: each injected text exactly once, nothing else.
    let mut stored: HashMap<&str, usize> = HashMap::new();
    for row in rows.iter().filter(|r| r.1 == "inbound") {
        *stored.entry(row.3.as_str()).or_insert(0) += 1;
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "stored more than once (promise 2): {twice:?}"
    );
    let missing: Vec<_> = inbound_texts
        .iter()
        .filter(|t| !stored.contains_key(t.as_str()))
        .collect();
    assert!(missing.is_empty(), "never stored (promise 1): {missing:?}");
    let expected: HashSet<&str> = inbound_texts.iter().map(String::as_str).collect();
    let strangers: Vec<_> = stored.keys().filter(|t| !expected.contains(*t)).collect();
    assert!(strangers.is_empty(), "rows nobody injected: {strangers:?}");
    // None left on the SIM (checked by the drain above) and none held by the network.
    let sim_now = control.sim();
    let left: Vec<&Value> = sim_now["slots"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["kind"] == "deliver").collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left on the SIM: {left:?}");

    // Outbound: sent once, or unknown (a send the kill cut), never twice.
    let counts = submissions_by_text(&mut control);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "submitted more than once (promise 3): {twice:?}"
    );
    let outbound: Vec<_> = rows.iter().filter(|r| r.1 == "outbound").collect();
    assert_eq!(outbound.len(), messages, "one row per external INSERT");
    let mut by_status: HashMap<&str, usize> = HashMap::new();
    for row in &outbound {
        *by_status.entry(row.2.as_str()).or_insert(0) += 1;
        match row.2.as_str() {
            "sent" | "delivered" => assert_eq!(
                counts.get(&row.3),
                Some(&1),
                "#{} {} is {} but the modem saw it {:?} times",
                row.0,
                row.3,
                row.2,
                counts.get(&row.3)
            ),
            "unknown" => {
                assert!(
                    counts.get(&row.3).copied().unwrap_or(0) <= 1,
                    "#{} unknown and resent",
                    row.0
                );
                assert!(
                    row.4.as_deref().is_some_and(|r| !r.trim().is_empty()),
                    "#{} unknown without a reason",
                    row.0
                );
            }
            other => panic!("#{} {} ended {other} ({:?})", row.0, row.3, row.4),
        }
    }
    let unknown = by_status.get("unknown").copied().unwrap_or(0);
    println!(
        "outbound: {by_status:?}; {} distinct texts submitted; total {:.1?}",
        counts.len(),
        started.elapsed()
    );
    assert!(
        unknown <= kills,
        "{unknown} unknown rows but only {kills} kills: some were not cut by a kill"
    );
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    let mean = uptimes.iter().sum::<Duration>() / uptimes.len().max(1) as u32;
    println!("mean uptime between kills {mean:?}");
}

/// Count of slots holding an SMS-DELIVER on the sim.
fn deliver_slots(control: &mut crate::support::Control) -> usize {
    control.sim()["slots"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|s| s["kind"] == "deliver").count())
}

#[test]
fn a_database_file_deleted_under_the_daemon_gets_no_more_writes_and_the_sim_keeps_every_message() {
    let Scratch { dir, db, config } = scratch("lost.db");
    let log = dir.path().join("daemon.log");
    let sim = VirtualModemProcess::start_with_control(&[]);
    write_one_modem_config(
        &config,
        &db,
        &sim.device(),
        json!({
            "http": {"listen": "127.0.0.1:0"},
            "inbound": {"sweep_interval": "1s", "delete_policy": "on_store"},
        }),
    );
    let mut daemon = DaemonProcess::start(&config, &log);
    let mut control = sim.control();
    control.inject(SENDER, "before the loss");
    let stored = |text: &str| -> Result<usize, String> {
        if !db.exists() {
            return Err("no database file".into());
        }
        Ok(try_all_rows(&open_db(&db))
            .map_err(|e| format!("not readable yet: {e}"))?
            .iter()
            .filter(|r| r.1 == "inbound" && r.3 == text)
            .count())
    };
    poll(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || match stored("before the loss")? {
            1 => Ok(()),
            n => Err(format!("{n} rows")),
        },
    )
    .unwrap_or_else(|e| panic!("not stored: {e}\n{}", log_tail(&log, 30)));
    assert_eq!(
        deliver_slots(&mut control),
        0,
        "delete-on-store emptied the SIM"
    );

    // The operator (or a cleanup script) deletes the database under the running daemon.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let texts: Vec<String> = (0..3)
        .map(|i| format!("while the file is gone #{i}"))
        .collect();
    for text in &texts {
        control.inject(SENDER, text);
    }
    poll(Duration::from_secs(10), Duration::from_millis(50), || {
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("was deleted, moved or replaced")
        {
            Ok(())
        } else {
            Err("not logged".to_owned())
        }
    })
    .unwrap_or_else(|_| {
        panic!(
            "the log never said the file was gone\n{}",
            log_tail(&log, 30)
        )
    });
    // Several sweeps later the copies are all still on the SIM: nothing was "stored" into the
    // unlinked file and then deleted (promise 1).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(deliver_slots(&mut control), 3, "{}", log_tail(&log, 30));
    assert!(daemon.running(), "the daemon keeps running");
    println!(
        "while the file was gone:\n{}",
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("deleted, moved or replaced"))
            .take(2)
            .collect::<Vec<_>>()
            .join("\n")
    );

    // A restart opens a new database there and stores what waited on the SIM, once each.
    daemon.kill();
    let _daemon = DaemonProcess::start(&config, &log);
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        let counts: Vec<usize> = texts.iter().map(|t| stored(t)).collect::<Result<_, _>>()?;
        if counts.iter().all(|n| *n == 1) && deliver_slots(&mut control) == 0 {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("not stored after the restart: {e}\n{}", log_tail(&log, 30)));
}

#[test]
fn with_at_least_once_a_send_cut_by_sigkill_is_queued_again_on_restart_and_sent_again() {
    let Scratch { dir, db, config } = scratch("alo.db");
    let log = dir.path().join("daemon.log");
    let sim = VirtualModemProcess::start_with_control(&[]);
    write_one_modem_config(
        &config,
        &db,
        &sim.device(),
        json!({
            "http": {"listen": "127.0.0.1:0"},
            "outbound": {"delivery": "at_least_once"},
        }),
    );
    let mut daemon = DaemonProcess::start(&config, &log);
    let mut control = sim.control();
    // The network gets the PDU; the modem never answers: the send is ambiguous.
    control.fault(json!({"fault": "hold_sends", "count": 1, "submit": true}));
    let text = "at least once, on purpose";
    let row = |c: &rusqlite::Connection| -> Option<(i64, String)> {
        all_rows(c)
            .into_iter()
            .find(|r| r.3 == text)
            .map(|r| (r.0, r.2))
    };
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        if db.exists() {
            Ok(())
        } else {
            Err("no database yet".to_owned())
        }
    })
    .expect("the daemon creates the database");
    let c = open_db(&db);
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        c.execute(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
             VALUES (?1, ?2, datetime('now'), 'queued', 'outbound')",
            [RECIPIENT, text],
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
    .expect("the schema is there");
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        let n = submissions_by_text(&mut control)
            .get(text)
            .copied()
            .unwrap_or(0);
        match row(&c) {
            Some((_, status)) if status == "sending" && n == 1 => Ok(()),
            other => Err(format!("{other:?}, {n} submissions")),
        }
    })
    .unwrap_or_else(|e| panic!("never in flight: {e}\n{}", log_tail(&log, 30)));
    daemon.kill();
    control.clear_fault("hold_sends");
    let _daemon = DaemonProcess::start(&config, &log);
    // The switch trades "never twice" for "never lost": queued again, submitted again.
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        let n = submissions_by_text(&mut control)
            .get(text)
            .copied()
            .unwrap_or(0);
        match row(&c) {
            Some((_, status)) if matches!(status.as_str(), "sent" | "delivered") && n == 2 => {
                Ok(())
            }
            other => Err(format!("{other:?}, {n} submissions")),
        }
    })
    .unwrap_or_else(|e| panic!("not resent: {e}\n{}", log_tail(&log, 30)));
}
