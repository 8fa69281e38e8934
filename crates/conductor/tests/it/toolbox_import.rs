//! `conductor import` of fixtures in the three formats, each built here: run twice (the second
//! imports nothing), counts right, unreadable items reported, sources unchanged.

use crate::support::{conductor, open_db};
use serde_json::Value;
use std::path::Path;
use tree_digest::digest;

/// A content fingerprint of a file or a folder tree (path and bytes of every file).
mod tree_digest {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    use std::path::Path;

    pub fn digest(path: &Path) -> u64 {
        let mut hasher = DefaultHasher::new();
        walk(path, path, &mut hasher);
        hasher.finish()
    }

    fn walk(root: &Path, path: &Path, hasher: &mut DefaultHasher) {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .expect("read dir")
                .map(|e| e.expect("entry").path())
                .collect();
            entries.sort();
            for entry in entries {
                walk(root, &entry, hasher);
            }
        } else {
            path.strip_prefix(root).unwrap_or(path).hash(hasher);
            std::fs::read(path).expect("read file").hash(hasher);
        }
    }
}

fn import(db: &Path, kind: &str, source: &Path) -> (bool, Value) {
    let db = db.to_string_lossy().into_owned();
    let source = source.to_string_lossy().into_owned();
    let out = conductor(
        &[
            "--db",
            &db,
            "import",
            kind,
            &source,
            "--source-tz",
            "UTC",
            "--json",
        ],
        "",
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "import printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn count(report: &Value, direction: &str, status: &str) -> u64 {
    report["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["direction"] == direction && c["status"] == status)
        .and_then(|c| c["count"].as_u64())
        .unwrap_or(0)
}

fn rows(db: &Path, sql: &str) -> Vec<(String, String, String, String)> {
    let c = open_db(db);
    let mut s = c.prepare(sql).expect("prepare");
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn the_original_systems_database_is_imported_once_with_its_times_and_statuses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("original.db");
    let c = rusqlite::Connection::open(&source).expect("create");
    c.execute_batch(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, phone_number TEXT, content TEXT,
             timestamp TEXT, status TEXT, direction TEXT, modem_index INTEGER,
             created_at TEXT, updated_at TEXT);
         INSERT INTO messages VALUES
             (1, '+4915100000001', 'hello', '2023-01-02 03:04:05', 'unread', 'inbound', 3,
              '2023-01-02 03:04:06', '2023-01-02 03:04:06'),
             (2, '+4915100000001', 'read me', '2023-01-03 10:00:00', 'read', 'inbound', NULL,
              '2023-01-03 10:00:00', '2023-01-03 11:00:00'),
             (3, '+4915100000002', 'out', '2023-01-04 10:00:00', 'sent', 'outbound', NULL,
              '2023-01-04 10:00:00', '2023-01-04 10:00:05'),
             (4, '+4915100000002', 'waiting', '2023-01-05 10:00:00', 'queued', 'outbound',
              NULL, '2023-01-05 10:00:00', '2023-01-05 10:00:00'),
             (5, '+4915100000003', 'bad time', 'yesterday', 'read', 'inbound', NULL,
              NULL, NULL);",
    )
    .expect("fixture");
    drop(c);
    let before = digest(&source);
    let db = dir.path().join("conductor.db");
    let (ok, first) = import(&db, "original", &source);
    assert!(!ok, "an unreadable row makes the exit status 1");
    assert_eq!(first["imported"], 4, "{first}");
    assert_eq!(count(&first, "inbound", "unread"), 1);
    assert_eq!(count(&first, "inbound", "read"), 1);
    assert_eq!(count(&first, "outbound", "sent"), 1);
    assert_eq!(
        count(&first, "outbound", "cancelled"),
        1,
        "queued is never sent"
    );
    let problems = first["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{first}");
    assert_eq!(problems[0]["item"], "messages:5");
    let (_, second) = import(&db, "original", &source);
    assert_eq!(second["imported"], 0, "{second}");
    assert_eq!(second["already_imported"], 4, "{second}");
    assert_eq!(digest(&source), before, "the source changed");
    let imported = rows(
        &db,
        "SELECT phone_number, content, timestamp, status FROM messages ORDER BY id",
    );
    assert_eq!(imported.len(), 4);
    assert_eq!(
        imported[0],
        (
            "+4915100000001".into(),
            "hello".into(),
            "2023-01-02 03:04:05".into(),
            "unread".into()
        )
    );
}

#[test]
fn gammu_tables_are_imported_once_with_multipart_rows_joined() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("smsd.db");
    let c = rusqlite::Connection::open(&source).expect("create");
    // The columns of gammu's documented schema that matter here (its SQLite flavour).
    c.execute_batch(
        "CREATE TABLE inbox (UpdatedInDB TEXT, ReceivingDateTime TEXT, Text TEXT,
             SenderNumber TEXT, Coding TEXT, UDH TEXT, SMSCNumber TEXT, Class INTEGER,
             TextDecoded TEXT, ID INTEGER PRIMARY KEY, RecipientID TEXT, Processed TEXT,
             Status INTEGER);
         CREATE TABLE sentitems (UpdatedInDB TEXT, InsertIntoDB TEXT, SendingDateTime TEXT,
             DeliveryDateTime TEXT, Text TEXT, DestinationNumber TEXT, Coding TEXT, UDH TEXT,
             SMSCNumber TEXT, Class INTEGER, TextDecoded TEXT, ID INTEGER, SenderID TEXT,
             SequencePosition INTEGER, Status TEXT, StatusError INTEGER, TPMR INTEGER,
             RelativeValidity INTEGER, CreatorID TEXT, StatusCode INTEGER,
             PRIMARY KEY (ID, SequencePosition));
         CREATE TABLE outbox (UpdatedInDB TEXT, InsertIntoDB TEXT, SendingDateTime TEXT,
             SendBefore TEXT, SendAfter TEXT, Text TEXT, DestinationNumber TEXT, Coding TEXT,
             UDH TEXT, Class INTEGER, TextDecoded TEXT, ID INTEGER PRIMARY KEY,
             MultiPart TEXT, RelativeValidity INTEGER, SenderID TEXT, SendingTimeOut TEXT,
             DeliveryReport TEXT, CreatorID TEXT, Retries INTEGER, Priority INTEGER,
             Status TEXT, StatusCode INTEGER);
         CREATE TABLE outbox_multipart (Text TEXT, Coding TEXT, UDH TEXT, Class INTEGER,
             TextDecoded TEXT, ID INTEGER, SequencePosition INTEGER, Status TEXT,
             StatusCode INTEGER);
         INSERT INTO inbox (ReceivingDateTime, SenderNumber, Coding, UDH, TextDecoded, ID,
             RecipientID, Processed) VALUES
             ('2022-05-01 08:00:00', '+4917000000001', 'Default_No_Compression', '',
              'single', 1, 'phone1', 'true'),
             ('2022-05-01 09:00:01', '+4917000000002', 'Default_No_Compression',
              '050003A70202', ' world', 3, 'phone1', 'false'),
             ('2022-05-01 09:00:00', '+4917000000002', 'Default_No_Compression',
              '050003A70201', 'hello', 2, 'phone1', 'false'),
             ('not a time', '+4917000000003', 'Default_No_Compression', '', 'broken', 4,
              'phone1', 'false');
         INSERT INTO sentitems (InsertIntoDB, SendingDateTime, DeliveryDateTime,
             DestinationNumber, Coding, UDH, TextDecoded, ID, SenderID, SequencePosition,
             Status, StatusError) VALUES
             ('2022-05-02 10:00:00', '2022-05-02 10:00:05', '2022-05-02 10:00:09',
              '+4917000000004', 'Default_No_Compression', '050003110201', 'part one ', 10,
              'phone1', 1, 'DeliveryOK', -1),
             ('2022-05-02 10:00:00', '2022-05-02 10:00:06', '2022-05-02 10:00:09',
              '+4917000000004', 'Default_No_Compression', '050003110202', 'part two', 10,
              'phone1', 2, 'DeliveryOK', -1),
             ('2022-05-03 10:00:00', '2022-05-03 10:00:05', NULL, '+4917000000005',
              'Default_No_Compression', '', 'nope', 11, 'phone1', 1, 'SendingError', 38);
         INSERT INTO outbox (InsertIntoDB, DestinationNumber, Coding, TextDecoded, ID,
             MultiPart) VALUES
             ('2022-05-04 10:00:00', '+4917000000006', 'Default_No_Compression', 'not yet ',
              20, 'true');
         INSERT INTO outbox_multipart (TextDecoded, ID, SequencePosition) VALUES
             ('sent either', 20, 2);",
    )
    .expect("fixture");
    drop(c);
    let before = digest(&source);
    let db = dir.path().join("conductor.db");
    let (_, first) = import(&db, "gammu", &source);
    assert_eq!(first["imported"], 5, "{first}");
    assert_eq!(count(&first, "inbound", "read"), 1);
    assert_eq!(
        count(&first, "inbound", "unread"),
        1,
        "two parts are one message"
    );
    assert_eq!(
        count(&first, "outbound", "delivered"),
        1,
        "two parts are one message"
    );
    assert_eq!(count(&first, "outbound", "failed"), 1);
    assert_eq!(count(&first, "outbound", "cancelled"), 1);
    assert_eq!(
        first["problems"].as_array().map(Vec::len),
        Some(1),
        "{first}"
    );
    assert_eq!(first["problems"][0]["item"], "inbox:4");
    let (_, second) = import(&db, "gammu", &source);
    assert_eq!(second["imported"], 0, "{second}");
    assert_eq!(digest(&source), before, "the source changed");
    let texts: Vec<String> = rows(
        &db,
        "SELECT content, status, direction, timestamp FROM messages ORDER BY id",
    )
    .into_iter()
    .map(|r| r.0)
    .collect();
    assert!(texts.contains(&"hello world".to_owned()), "{texts:?}");
    assert!(texts.contains(&"part one part two".to_owned()), "{texts:?}");
    assert!(
        texts.contains(&"not yet sent either".to_owned()),
        "{texts:?}"
    );
}

#[test]
fn an_smstools_spool_is_imported_once_with_iso_ucs2_and_multipart_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("spool");
    for folder in ["incoming", "sent", "failed", "checked"] {
        std::fs::create_dir_all(spool.join(folder)).expect("folder");
    }
    let write = |path: &str, head: &str, body: &[u8]| {
        let mut bytes = head.as_bytes().to_vec();
        bytes.extend_from_slice(b"\n");
        bytes.extend_from_slice(body);
        std::fs::write(spool.join(path), bytes).expect("write");
    };
    write(
        "incoming/GSM1.aaa",
        "From: 491701111111\nReceived: 24-02-01 12:00:00\nAlphabet: ISO\nModem: GSM1\n",
        b"caf\xE9 \xA4",
    );
    let ucs2: Vec<u8> = "Привет".encode_utf16().flat_map(u16::to_be_bytes).collect();
    write(
        "incoming/GSM1.bbb",
        "From: 491702222222\nReceived: 24-02-01 12:05:00\nAlphabet: UCS2\n",
        &ucs2,
    );
    write(
        "incoming/GSM1.ccc",
        "From: 491703333333\nReceived: 24-02-01 12:10:01\nAlphabet: ISO\nUDH-DATA: 05 00 03 42 02 02\n",
        b" second",
    );
    write(
        "incoming/GSM1.ddd",
        "From: 491703333333\nReceived: 24-02-01 12:10:00\nAlphabet: ISO\nUDH-DATA: 05 00 03 42 02 01\n",
        b"first",
    );
    write(
        "sent/out.1",
        "To: 491704444444\nQueued: 24-02-02 08:00:00\nSent: 24-02-02 08:00:03\nMessage_id: 17\n",
        b"sent text",
    );
    write(
        "failed/out.2",
        "To: 491705555555\nFailed: 24-02-03 08:00:03\nFail_reason: Modem answered ERROR\n",
        b"failed text",
    );
    write("checked/out.3", "To: 491706666666\n", b"not yet");
    std::fs::write(spool.join("incoming/garbage"), b"no headers here at all").expect("write");
    let before = digest(&spool);
    let db = dir.path().join("conductor.db");
    let (ok, first) = import(&db, "smstools", &spool);
    assert!(!ok, "the garbage file makes the exit status 1");
    assert_eq!(first["imported"], 5, "{first}");
    assert_eq!(count(&first, "inbound", "read"), 3);
    assert_eq!(count(&first, "outbound", "sent"), 1);
    assert_eq!(count(&first, "outbound", "failed"), 1);
    assert_eq!(first["problems"][0]["item"], "incoming/garbage", "{first}");
    assert_eq!(first["ignored"][0]["item"], "checked/out.3", "{first}");
    let (_, second) = import(&db, "smstools", &spool);
    assert_eq!(second["imported"], 0, "{second}");
    assert_eq!(digest(&spool), before, "the spool changed");
    let all = rows(
        &db,
        "SELECT phone_number, content, timestamp, status FROM messages ORDER BY id",
    );
    let find = |n: &str| all.iter().find(|r| r.0 == n).cloned().expect(n);
    assert_eq!(find("+491701111111").1, "café €");
    assert_eq!(find("+491701111111").2, "2024-02-01 12:00:00");
    assert_eq!(find("+491702222222").1, "Привет");
    assert_eq!(find("+491703333333").1, "first second");
    assert_eq!(find("+491705555555").3, "failed");
}
