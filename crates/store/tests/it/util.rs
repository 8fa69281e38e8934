//! Shared helpers: a store on a real file in a temp dir, a fixed test clock, the `sqlite3`
//! shell as an external process, builders for inbound SMS, and deadline-bound waiting.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use conductor_store::{
    ClaimRequest, Concat, Fingerprint, InboundPart, InboundSms, ModemId, Store, StoreOptions,
};
use jiff::Timestamp;

/// A store on a fresh file; the directory lives as long as this value.
pub struct TestDb {
    /// Kept so the directory outlives the store.
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub store: Store,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("conductor.db");
        let store = Store::open_sqlite(&path, StoreOptions::default())
            .await
            .expect("open store");
        Self {
            _dir: dir,
            path,
            store,
        }
    }

    /// Runs a script through the `sqlite3` shell, as another process would.
    pub fn sql(&self, script: &str) -> String {
        sqlite3(&self.path, script)
    }
}

/// The test clock: 2024-03-01 12:00:00 UTC plus `secs`.
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_709_294_400 + secs).expect("test time in range")
}

/// The SQL contract's text form of [`at`].
pub fn at_sql(secs: i64) -> String {
    conductor_store::SqlTime::from_timestamp(at(secs)).0
}

/// Runs `script` with `/usr/bin/sqlite3 -bail` and a 5 s busy timeout; panics with its stderr
/// on any error (a "database is locked" included).
pub fn sqlite3(path: &Path, script: &str) -> String {
    let (ok, stdout, stderr) = sqlite3_raw(path, script);
    assert!(
        ok && stderr.is_empty(),
        "sqlite3 failed: {stderr}\nscript:\n{script}"
    );
    stdout
}

/// Like [`sqlite3`] but returns (success, stdout, stderr).
pub fn sqlite3_raw(path: &Path, script: &str) -> (bool, String, String) {
    let mut child = Command::new("sqlite3")
        .arg("-bail")
        .arg("-cmd")
        .arg(".timeout 5000")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sqlite3 shell is installed (apt-get install sqlite3)");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("sqlite3 runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `.parameter set ?1 '<text>'` for the shell (the value is an SQL literal).
pub fn param_text(value: &str) -> String {
    format!(".parameter set ?1 \"'{}'\"\n", value.replace('\'', "''"))
}

pub fn modem(id: &str) -> ModemId {
    ModemId::from(id)
}

/// An inbound SMS in `slot` of modem `m1`'s SM memory, read at `at(secs)`.
pub fn sms(slot: u32, sender: &str, text: &str, secs: i64) -> InboundSms {
    InboundSms {
        modem_id: modem("m1"),
        fingerprint: Fingerprint(format!("fp-m1-SM-{slot}-{sender}-{text}-{secs}")),
        sim_storage: "SM".into(),
        sim_slot: slot,
        sender: sender.into(),
        text: text.into(),
        encoding: Some("gsm7".into()),
        smsc_timestamp: Some("2024-03-01T13:00:00+01:00".into()),
        message_class: None,
        raw_pdu: Some("0791".into()),
        received_at: at(secs),
    }
}

/// Part `seq` of `total` with reference `reference`, in `slot`.
pub fn part(slot: u32, reference: u16, seq: u8, total: u8, text: &str, secs: i64) -> InboundPart {
    let mut sms = sms(slot, "+4917612345678", text, secs);
    sms.fingerprint = Fingerprint(format!("fp-part-{slot}-{reference}-{seq}-{text}-{secs}"));
    InboundPart {
        sms,
        concat: Concat {
            reference,
            ref_bits: 8,
            total,
            seq,
        },
    }
}

/// A claim at `at(secs)` for the given ready modems, batch 100, window 10 min.
pub fn claim(secs: i64, ready: &[&str]) -> ClaimRequest {
    ClaimRequest {
        now: at(secs),
        ready_modems: ready.iter().map(|m| modem(m)).collect(),
        limit: 100,
        duplicate_window: Some(Duration::from_secs(600)),
        duplicate_exempt_sources: Vec::new(),
        policy: conductor_store::policy::ClaimPolicy::default(),
    }
}
