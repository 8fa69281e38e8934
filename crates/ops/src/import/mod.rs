//! `conductor import`: messages from the original Python system, gammu-smsd and smstools3
//! brought into the store, with their original times and statuses mapped to ours.
//!
//! Why: operators move over with their history, and must be able to run the import again (a
//! second run after a partial one, or by mistake) without doubling anything. Every message is
//! written with the source items it came from (migration 0006's `imports` ledger) in one
//! transaction; an item already in the ledger is skipped.
//!
//! Guarantees:
//! - **The source is never changed.** SQLite sources are opened read-only
//!   (`SQLITE_OPEN_READ_ONLY`, `mode=ro`); spool files are only read.
//! - **Nothing is sent.** Imported outbound rows get a final status; what was still waiting in
//!   the old system (gammu's `outbox`, the original system's `queued`) comes in as `cancelled`
//!   with a reason, because resending days-old messages by surprise is worse than asking the
//!   operator to `conductor requeue` the few that still matter.
//! - **Nothing is silently lost.** A row or file that cannot be read is reported with why, and
//!   the rest is imported.
//!
//! Layout: one module per source format ([`original`], [`gammu`], [`smstools`]) turning the
//! source into [`ImportedMessage`]s and [`Problem`]s, synchronously; [`import`] writes them.

pub mod gammu;
pub mod original;
pub mod smstools;

use std::path::{Path, PathBuf};

use conductor_store::{Direction, ImportedMessage, SqlTime, Status, Store, StoreError};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

/// The formats `conductor import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The original Python system's SQLite database (`messages` table).
    Original,
    /// gammu-smsd's SQL tables, SQLite flavour.
    Gammu,
    /// smstools3's spool folder (`incoming`, `sent`, `failed`).
    Smstools,
}

impl SourceKind {
    /// Its name on the command line and in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Gammu => "gammu",
            Self::Smstools => "smstools",
        }
    }

    /// The zone the source's times are written in, unless `--source-tz` says otherwise: the
    /// original system wrote `datetime('now')` (UTC); gammu and smstools write local time.
    pub fn default_zone(self) -> TimeZone {
        match self {
            Self::Original => TimeZone::UTC,
            Self::Gammu | Self::Smstools => TimeZone::system(),
        }
    }
}

/// A source item that could not be imported, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The row (`inbox:12`) or file (`incoming/GSM1.abc`).
    pub item: String,
    /// What is wrong with it.
    pub why: String,
}

/// What a reader found in a source.
#[derive(Debug, Default)]
pub struct Found {
    /// Messages ready to import.
    pub messages: Vec<ImportedMessage>,
    /// Items that could not be read.
    pub problems: Vec<Problem>,
    /// Items deliberately not imported (smstools `checked`, `outgoing`), with why.
    pub ignored: Vec<Problem>,
}

/// A source that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file or folder cannot be opened.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The source.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The SQLite file cannot be opened or queried.
    #[error("cannot read the SQLite database {path}: {source}")]
    Sqlite {
        /// The source.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// It is not the format that was asked for.
    #[error("{path} is not a {kind} source: {why}")]
    WrongFormat {
        /// The source.
        path: PathBuf,
        /// The format asked for.
        kind: &'static str,
        /// What is missing.
        why: String,
    },
    /// Writing to our database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many messages of one direction and status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Our status.
    pub status: String,
    /// How many.
    pub count: usize,
}

/// What an import did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// The format.
    pub kind: SourceKind,
    /// The source's identity in the ledger.
    pub source: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Messages found in the source.
    pub found: usize,
    /// Messages imported now (or that would be).
    pub imported: usize,
    /// Messages skipped because an earlier run imported them.
    pub already_imported: usize,
    /// The imported ones by direction and status.
    pub counts: Vec<Count>,
    /// Rows or files that could not be read.
    pub problems: Vec<Problem>,
    /// Items left out on purpose.
    pub ignored: Vec<Problem>,
}

/// Reads `path` as `kind` (times in `zone`) and imports what is new; with `dry_run`, writes
/// nothing and reports what would be imported.
pub async fn import(
    store: &Store,
    kind: SourceKind,
    path: &Path,
    zone: TimeZone,
    dry_run: bool,
    now: Timestamp,
) -> Result<ImportReport, ImportError> {
    let source = std::fs::canonicalize(path).map_err(|source| ImportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let identity = source.display().to_string();
    let read_path = source.clone();
    let found = tokio::task::spawn_blocking(move || match kind {
        SourceKind::Original => original::read(&read_path, &identity_of(&read_path), &zone),
        SourceKind::Gammu => gammu::read(&read_path, &identity_of(&read_path), &zone),
        SourceKind::Smstools => smstools::read(&read_path, &identity_of(&read_path), &zone),
    })
    .await
    .map_err(|e| ImportError::Io {
        path: source.clone(),
        source: std::io::Error::other(e.to_string()),
    })??;
    let total = found.messages.len();
    let (new, already): (Vec<&ImportedMessage>, usize) = if dry_run {
        let mut new = Vec::new();
        let mut already = 0;
        for message in &found.messages {
            let known = store
                .imported_items(
                    kind.as_str().to_owned(),
                    identity.clone(),
                    message.items.clone(),
                )
                .await?;
            if known.iter().any(|k| *k) {
                already += 1;
            } else {
                new.push(message);
            }
        }
        (new, already)
    } else {
        let mut new = Vec::new();
        let mut already = 0;
        // Batches keep each write transaction short for the daemon and external writers.
        for chunk in found.messages.chunks(200) {
            let outcome = store.import_messages(chunk.to_vec(), now).await?;
            already += outcome.already;
            new.extend(
                chunk
                    .iter()
                    .zip(&outcome.ids)
                    .filter(|(_, id)| id.is_some())
                    .map(|(m, _)| m),
            );
        }
        (new, already)
    };
    let mut counts: Vec<Count> = Vec::new();
    for message in &new {
        let (direction, status) = (message.direction.as_str(), message.status.as_str());
        match counts
            .iter_mut()
            .find(|c| c.direction == direction && c.status == status)
        {
            Some(count) => count.count += 1,
            None => counts.push(Count {
                direction: direction.to_owned(),
                status: status.to_owned(),
                count: 1,
            }),
        }
    }
    counts.sort_by(|a, b| (&a.direction, &a.status).cmp(&(&b.direction, &b.status)));
    Ok(ImportReport {
        kind,
        source: identity,
        dry_run,
        found: total,
        imported: new.len(),
        already_imported: already,
        counts,
        problems: found.problems,
        ignored: found.ignored,
    })
}

fn identity_of(path: &Path) -> String {
    path.display().to_string()
}

/// Opens a SQLite source read-only: nothing this process does can change it.
pub(crate) fn open_read_only(path: &Path) -> Result<rusqlite::Connection, ImportError> {
    use rusqlite::OpenFlags;
    rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| ImportError::Sqlite {
        path: path.to_owned(),
        source,
    })
}

/// Whether `table` exists in the source.
pub(crate) fn has_table(c: &rusqlite::Connection, table: &str) -> bool {
    c.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [table],
        |_| Ok(()),
    )
    .is_ok()
}

/// Any SQLite value as text (sources store numbers and times in whatever type they liked).
pub(crate) fn text(value: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

/// A source time in the SQL contract's form (UTC `YYYY-MM-DD HH:MM:SS`): RFC 3339 with a
/// zone, `YYYY-MM-DD HH:MM:SS[.fff]` or with `T` (in `zone`), smstools' `YY-MM-DD HH:MM:SS`,
/// or Unix seconds.
pub fn sql_time(value: &str, zone: &TimeZone) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: i64 = value.parse().ok()?;
        return Timestamp::from_second(seconds)
            .ok()
            .map(|t| SqlTime::from_timestamp(t).0);
    }
    if let Ok(t) = value.parse::<Timestamp>() {
        return Some(SqlTime::from_timestamp(t).0);
    }
    let mut civil = value.replacen(' ', "T", 1);
    // smstools writes two-digit years.
    if civil.len() >= 3 && civil.as_bytes()[2] == b'-' {
        civil.insert_str(0, "20");
    }
    let civil: jiff::civil::DateTime = civil.parse().ok()?;
    let t = zone.to_ambiguous_timestamp(civil).compatible().ok()?;
    Some(SqlTime::from_timestamp(t).0)
}

/// The concatenation info (reference, total, sequence) of a user data header given as hex
/// (`050003A70201`, spaces allowed), if it has one.
pub fn concat_of_udh(hex: &str) -> Option<(u16, u8, u8)> {
    let digits: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = hex_bytes(&digits)?;
    let (&length, rest) = bytes.split_first()?;
    let mut ies = rest.get(..usize::from(length))?;
    while let [iei, len, tail @ ..] = ies {
        let data = tail.get(..usize::from(*len))?;
        match (iei, data) {
            (0x00, [reference, total, seq]) => return Some((u16::from(*reference), *total, *seq)),
            (0x08, [hi, lo, total, seq]) => {
                return Some((u16::from_be_bytes([*hi, *lo]), *total, *seq));
            }
            _ => {}
        }
        ies = &tail[usize::from(*len)..];
    }
    None
}

fn hex_bytes(digits: &str) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A message with the fields every reader fills the same way.
#[allow(clippy::too_many_arguments)] // one call per reader; a builder would only add noise
pub(crate) fn message(
    kind: SourceKind,
    source: &str,
    items: Vec<String>,
    direction: Direction,
    number: String,
    content: String,
    status: Status,
    timestamp: String,
) -> ImportedMessage {
    ImportedMessage {
        source_kind: kind.as_str().to_owned(),
        source: source.to_owned(),
        items,
        direction,
        phone_number: number,
        content,
        status,
        timestamp,
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

/// Why imported rows that were waiting to be sent are `cancelled`.
pub(crate) const NOT_SENT: &str = "imported: it was waiting to be sent in the old system and \
    Conductor does not send imported messages; `conductor requeue ID` sends it";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_times_become_utc_contract_text() {
        let utc = TimeZone::UTC;
        assert_eq!(
            sql_time("2024-03-01 10:20:30", &utc).as_deref(),
            Some("2024-03-01 10:20:30")
        );
        assert_eq!(
            sql_time("24-03-01 10:20:30", &utc).as_deref(),
            Some("2024-03-01 10:20:30")
        );
        assert_eq!(
            sql_time("2024-03-01T10:20:30+02:00", &utc).as_deref(),
            Some("2024-03-01 08:20:30")
        );
        let berlin = TimeZone::get("Europe/Berlin").expect("tzdb");
        assert_eq!(
            sql_time("2024-07-01 12:00:00", &berlin).as_deref(),
            Some("2024-07-01 10:00:00")
        );
        assert_eq!(sql_time("0", &utc).as_deref(), Some("1970-01-01 00:00:00"));
        assert_eq!(sql_time("yesterday", &utc), None);
    }

    #[test]
    fn concatenation_headers_of_both_widths_are_read() {
        assert_eq!(concat_of_udh("050003A70201"), Some((0xA7, 2, 1)));
        assert_eq!(concat_of_udh("05 00 03 A7 02 02"), Some((0xA7, 2, 2)));
        assert_eq!(concat_of_udh("06080412340302"), Some((0x1234, 3, 2)));
        assert_eq!(concat_of_udh("0401020304"), None);
        assert_eq!(concat_of_udh("zz"), None);
    }
}
