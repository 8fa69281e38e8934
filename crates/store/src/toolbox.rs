//! The operator toolbox's records (migration 0006): event-follower cursors and the import
//! ledger.
//!
//! Why in the store: the event-script runner in `conductor-ops` follows the `events` table
//! the way the webhook outbox does, and its position must survive a restart so no event is
//! run twice or skipped. `conductor import` must be idempotent: every imported message is
//! written together with the source rows or files it came from, in one transaction, and a
//! source item already in the ledger is never imported again.
//! Not here: reading the foreign formats (conductor-ops `import`), running scripts.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::error::StoreError;
use crate::sqlite::Db;
use crate::store::Store;
use crate::types::{Direction, ModemId, Status, sql_time};

/// A message brought in from another system, with its original times and a status mapped to
/// ours. It is never sent: outbound rows come in with a final status (or `cancelled`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportedMessage {
    /// Where it came from: `original`, `gammu`, `smstools`.
    pub source_kind: String,
    /// The source's identity (the canonical path of the file or folder).
    pub source: String,
    /// The source rows or files it was made from (`inbox:3`, `incoming/GSM1.x`); a message
    /// whose item is in the ledger already is skipped.
    pub items: Vec<String>,
    /// `inbound` or `outbound`.
    pub direction: Direction,
    /// Sender (inbound) or recipient (outbound), as the source wrote it.
    pub phone_number: String,
    /// The text.
    pub content: String,
    /// Our status for it.
    pub status: Status,
    /// `timestamp` in the SQL contract's form (UTC `YYYY-MM-DD HH:MM:SS`).
    pub timestamp: String,
    /// `created_at`; None = `timestamp`.
    pub created_at: Option<String>,
    /// `updated_at`; None = `created_at`.
    pub updated_at: Option<String>,
    /// When it was sent (outbound).
    pub sent_at: Option<String>,
    /// When it was delivered (outbound).
    pub delivered_at: Option<String>,
    /// The modem or phone that handled it, if the source says.
    pub modem_id: Option<ModemId>,
    /// Why it failed or was not sent.
    pub reason: Option<String>,
    /// `gsm7`, `ucs2`, `8bit`, or None.
    pub encoding: Option<String>,
    /// Parts it had, and parts found (less for an incomplete multipart message).
    pub parts_total: i64,
    /// Parts found.
    pub parts_received: i64,
}

/// What one import batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// New message ids, in input order (None for a skipped message).
    pub ids: Vec<Option<i64>>,
    /// Messages skipped because one of their items was imported before.
    pub already: usize,
}

impl Store {
    /// How far the events follower `name` has read; None before its first run.
    pub async fn event_cursor(&self, name: String) -> Result<Option<i64>, StoreError> {
        const DOING: &str = "reading an event cursor";
        if let Some(pg) = self.postgres() {
            return crate::postgres::in_tx!(pg, DOING, |tx| {
                crate::postgres::maintenance::event_cursor(&tx, &name)
            });
        }
        self.run(DOING, move |db| db.read(DOING, |c| cursor(c, &name)))
            .await
    }

    /// Moves the events follower `name` to `last_event_id`.
    pub async fn set_event_cursor(
        &self,
        name: String,
        last_event_id: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const DOING: &str = "moving an event cursor";
        if let Some(pg) = self.postgres() {
            return crate::postgres::in_tx!(pg, DOING, |tx| {
                crate::postgres::maintenance::set_event_cursor(&tx, &name, last_event_id, now)
            });
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                c.prepare_cached(
                    "INSERT INTO event_cursors (name, last_event_id, updated_at)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET last_event_id = excluded.last_event_id,
                         updated_at = excluded.updated_at",
                )?
                .execute((&name, last_event_id, sql_time(now)))?;
                Ok(())
            })
        })
        .await
    }

    /// Which of `items` of a source are in the import ledger (for `--dry-run`).
    pub async fn imported_items(
        &self,
        source_kind: String,
        source: String,
        items: Vec<String>,
    ) -> Result<Vec<bool>, StoreError> {
        const DOING: &str = "reading the import ledger";
        if let Some(pg) = self.postgres() {
            return crate::postgres::in_tx!(pg, DOING, |tx| {
                crate::postgres::maintenance::imported_items(&tx, &source_kind, &source, &items)
            });
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| {
                items
                    .iter()
                    .map(|item| known(c, &source_kind, &source, item))
                    .collect()
            })
        })
        .await
    }

    /// Inserts the messages whose items are all new, with their ledger rows, in one
    /// transaction; messages with an item already in the ledger are skipped.
    pub async fn import_messages(
        &self,
        messages: Vec<ImportedMessage>,
        now: Timestamp,
    ) -> Result<ImportOutcome, StoreError> {
        const DOING: &str = "importing messages";
        if let Some(pg) = self.postgres() {
            return crate::postgres::in_tx!(pg, DOING, |tx| {
                crate::postgres::maintenance::import_messages(&tx, &messages, now)
            });
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| {
                let now = sql_time(now);
                let mut outcome = ImportOutcome::default();
                for message in &messages {
                    let mut seen = false;
                    for item in &message.items {
                        seen |= known(c, &message.source_kind, &message.source, item)?;
                    }
                    if seen {
                        outcome.already += 1;
                        outcome.ids.push(None);
                        continue;
                    }
                    let id = insert(c, message)?;
                    for item in &message.items {
                        c.prepare_cached(
                            "INSERT INTO imports (source_kind, source, item, message_id,
                                 imported_at)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?
                        .execute((
                            &message.source_kind,
                            &message.source,
                            item,
                            id,
                            &now,
                        ))?;
                    }
                    super::sqlite::event(
                        c,
                        &now,
                        "imported",
                        Some(id),
                        message.modem_id.as_ref().map(ModemId::as_str),
                        Some(serde_json::json!({
                            "source_kind": message.source_kind,
                            "source": message.source,
                            "items": message.items,
                        })),
                    )?;
                    outcome.ids.push(Some(id));
                }
                Ok(outcome)
            })
        })
        .await
    }
}

fn cursor(c: &Connection, name: &str) -> Db<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT last_event_id FROM event_cursors WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?,
    )
}

fn known(c: &Connection, kind: &str, source: &str, item: &str) -> Db<bool> {
    Ok(c.prepare_cached(
        "SELECT 1 FROM imports WHERE source_kind = ?1 AND source = ?2 AND item = ?3",
    )?
    .query_row((kind, source, item), |_| Ok(()))
    .optional()?
    .is_some())
}

fn insert(c: &Connection, m: &ImportedMessage) -> Db<i64> {
    let created = m.created_at.clone().unwrap_or_else(|| m.timestamp.clone());
    let updated = m.updated_at.clone().unwrap_or_else(|| created.clone());
    c.prepare_cached(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction, created_at,
             updated_at, revision, modem_id, reason, encoding, parts_total, parts_received,
             incomplete, sent_at, delivered_at, source, allow_duplicate)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 1)",
    )?
    .execute(rusqlite::params![
        m.phone_number,
        m.content,
        m.timestamp,
        m.status.as_str(),
        m.direction.as_str(),
        created,
        updated,
        m.modem_id.as_ref().map(ModemId::as_str),
        m.reason,
        m.encoding,
        m.parts_total,
        m.parts_received,
        i64::from(m.parts_received < m.parts_total),
        m.sent_at,
        m.delivered_at,
        format!("import:{}", m.source_kind),
    ])?;
    Ok(c.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn message(item: &str) -> ImportedMessage {
        ImportedMessage {
            source_kind: "gammu".into(),
            source: "/data/smsd.db".into(),
            items: vec![item.into()],
            direction: Direction::Inbound,
            phone_number: "+4915112345678".into(),
            content: "hello".into(),
            status: Status::Read,
            timestamp: "2020-01-02 03:04:05".into(),
            created_at: None,
            updated_at: None,
            sent_at: None,
            delivered_at: None,
            modem_id: None,
            reason: None,
            encoding: None,
            parts_total: 1,
            parts_received: 1,
        }
    }

    #[tokio::test]
    async fn an_item_in_the_ledger_is_never_imported_twice_and_cursors_persist() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_sqlite(dir.path().join("t.db"), StoreOptions::default())
            .await
            .expect("open");
        let now = Timestamp::UNIX_EPOCH;
        let first = store
            .import_messages(vec![message("inbox:1"), message("inbox:2")], now)
            .await
            .expect("import");
        assert_eq!(first.ids.iter().flatten().count(), 2);
        let again = store
            .import_messages(vec![message("inbox:2"), message("inbox:3")], now)
            .await
            .expect("import");
        assert_eq!(again.already, 1);
        assert_eq!(again.ids.iter().flatten().count(), 1);
        let known = store
            .imported_items(
                "gammu".into(),
                "/data/smsd.db".into(),
                vec!["inbox:3".into(), "inbox:4".into()],
            )
            .await
            .expect("ledger");
        assert_eq!(known, vec![true, false]);

        assert_eq!(
            store.event_cursor("scripts".into()).await.expect("read"),
            None
        );
        store
            .set_event_cursor("scripts".into(), 42, now)
            .await
            .expect("write");
        store
            .set_event_cursor("scripts".into(), 43, now)
            .await
            .expect("write");
        assert_eq!(
            store.event_cursor("scripts".into()).await.expect("read"),
            Some(43)
        );
    }
}
