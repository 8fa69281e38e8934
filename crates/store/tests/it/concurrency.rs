//! Promise 4 under load: external writers (threads with their own connections, and `sqlite3`
//! processes) run the contract's statements while the store receives and sends; nobody sees
//! "database is locked" and no row is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conductor_store::{PartSending, Status};
use rusqlite::Connection;

use crate::util::{TestDb, at, claim, sms};

const THREADS: usize = 3;
const PROCESSES: usize = 2;
const ROUNDS: usize = 150;

const SELECT_UNREAD: &str = "SELECT * FROM messages WHERE status='unread' AND direction='inbound'
ORDER BY timestamp DESC LIMIT 10;";
const UPDATE_READ: &str = "UPDATE messages SET status='read' WHERE id=?;";
const INSERT_QUEUED: &str =
    "INSERT INTO messages (phone_number, content, timestamp, status, direction)
VALUES (?, 'Auto-reply', datetime('now'), 'queued', 'outbound');";

/// One external thread: ROUNDS times insert, select the unread, mark the newest read.
fn external_thread(path: std::path::PathBuf, n: usize) -> Result<usize, String> {
    let conn = Connection::open(&path).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut ops = 0;
    for i in 0..ROUNDS {
        conn.execute(INSERT_QUEUED, [format!("ext-t{n}-{i}")])
            .map_err(|e| format!("insert: {e}"))?;
        let newest: Option<i64> = conn
            .prepare(SELECT_UNREAD)
            .and_then(|mut stmt| {
                let ids: Vec<i64> = stmt
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(ids.first().copied())
            })
            .map_err(|e| format!("select: {e}"))?;
        ops += 2;
        if let Some(id) = newest {
            conn.execute(UPDATE_READ, [id])
                .map_err(|e| format!("update: {e}"))?;
            ops += 1;
        }
    }
    Ok(ops)
}

/// One external `sqlite3` process running the same statements as a script.
fn external_process(path: std::path::PathBuf, n: usize) -> Result<usize, String> {
    let mut script = String::new();
    for i in 0..ROUNDS {
        script.push_str(&crate::util::param_text(&format!("ext-p{n}-{i}")));
        script.push_str(INSERT_QUEUED);
        script.push('\n');
        script.push_str(SELECT_UNREAD);
        script.push('\n');
        script.push_str(
            "UPDATE messages SET status='read' WHERE id=(SELECT max(id) FROM messages \
             WHERE status='unread' AND direction='inbound');\n",
        );
    }
    let (ok, _, stderr) = crate::util::sqlite3_raw(&path, &script);
    if ok && stderr.is_empty() {
        Ok(ROUNDS * 3)
    } else {
        Err(stderr)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_writers_and_the_store_write_together_without_lock_errors_or_lost_rows() {
    let db = TestDb::new().await;
    let done = Arc::new(AtomicBool::new(false));
    let store_ops = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    // The daemon: receives inbound messages and sends whatever is queued, in small batches.
    let daemon = {
        let store = db.store.clone();
        let done = Arc::clone(&done);
        let store_ops = Arc::clone(&store_ops);
        tokio::spawn(async move {
            let mut i: i64 = 0;
            let mut sent = 0usize;
            while !done.load(Ordering::Relaxed) {
                i += 1;
                let slot = u32::try_from(i).expect("small");
                store
                    .store_inbound_single(sms(slot, "+4915112345678", &format!("in {i}"), i))
                    .await
                    .expect("store inbound");
                let mut request = claim(i, &["m1", "m2"]);
                request.limit = 5;
                let claimed = store.claim_due(request).await.expect("claim");
                for job in claimed.jobs {
                    let part = PartSending {
                        seq: 1,
                        total: 1,
                        concat_ref: None,
                        pdu: "00".into(),
                        status_report: false,
                    };
                    store
                        .part_sending(job.id, part, at(i))
                        .await
                        .expect("part sending");
                    let mr = u8::try_from(sent % 256).expect("wraps");
                    store
                        .part_sent(job.id, 1, mr, at(i))
                        .await
                        .expect("part sent");
                    sent += 1;
                    store_ops.fetch_add(2, Ordering::Relaxed);
                }
                store_ops.fetch_add(2, Ordering::Relaxed);
            }
        })
    };

    let mut writers = Vec::new();
    for n in 0..THREADS {
        let path = db.path.clone();
        writers.push(std::thread::spawn(move || external_thread(path, n)));
    }
    for n in 0..PROCESSES {
        let path = db.path.clone();
        writers.push(std::thread::spawn(move || external_process(path, n)));
    }
    let mut external_ops = 0;
    let mut errors = Vec::new();
    for writer in writers {
        match tokio::task::spawn_blocking(move || writer.join())
            .await
            .expect("join task")
        {
            Ok(Ok(ops)) => external_ops += ops,
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("writer panicked".into()),
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    daemon.await.expect("daemon task");
    assert!(errors.is_empty(), "external writers failed: {errors:?}");

    let expected = (THREADS + PROCESSES) * ROUNDS;
    let inserted = db.sql("SELECT count(*) FROM messages WHERE phone_number LIKE 'ext-%';");
    assert_eq!(inserted.trim(), expected.to_string(), "rows lost");

    // Everything they queued is picked up and sent.
    let mut secs = 100_000;
    loop {
        secs += 1;
        let claimed = db
            .store
            .claim_due(claim(secs, &["m1"]))
            .await
            .expect("claim");
        if claimed.jobs.is_empty() {
            break;
        }
        for job in claimed.jobs {
            let part = PartSending {
                seq: 1,
                total: 1,
                concat_ref: None,
                pdu: "00".into(),
                status_report: false,
            };
            db.store
                .part_sending(job.id, part, at(secs))
                .await
                .expect("sending");
            db.store
                .part_sent(job.id, 1, 0, at(secs))
                .await
                .expect("sent");
        }
    }
    let sent = db.sql(&format!(
        "SELECT count(*) FROM messages WHERE phone_number LIKE 'ext-%' AND status='{}';",
        Status::Sent
    ));
    assert_eq!(sent.trim(), expected.to_string());
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "concurrency: {external_ops} external statements ({:.0}/s) and {} store operations \
         ({:.0}/s) in {secs:.2} s, 0 lock errors",
        external_ops as f64 / secs,
        store_ops.load(Ordering::Relaxed),
        store_ops.load(Ordering::Relaxed) as f64 / secs,
    );
}
