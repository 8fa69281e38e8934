//! Traffic statistics over the `messages` table (`conductor stats`): per time range, volume
//! per direction and status, failures by reason, and median send and inbound latency.
//!
//! Why in the store: the figures are aggregates over tables that can hold hundreds of
//! thousands of rows, so they are computed by SQL (counts grouped in the database, medians by
//! sorting in SQLite with `LIMIT … OFFSET`), and only a few rows per range reach Rust. Calendar
//! arithmetic (local days, ISO weeks, months, hour of day in the host's zone) is not here:
//! `conductor-ops` turns periods into UTC [`TimeRange`]s and quarter-hour buckets into local
//! hours, so daylight saving and half-hour zones are handled by jiff, not by SQLite's
//! `localtime`.
//!
//! Which rows count: a message belongs to the range its `created_at` falls in (when it reached
//! the database: queued, or received), compared as text in the SQL contract's
//! `YYYY-MM-DD HH:MM:SS` UTC form. Latencies are whole seconds (the contract stores times to
//! the second):
//! - send latency: `sent_at` − the later of `created_at` and `send_at` (queued → accepted by
//!   the network), over outbound rows with a `sent_at`;
//! - inbound latency: `created_at` − `smsc_timestamp` (the network's time stamp → committed),
//!   over inbound rows with an SMSC time stamp; a negative value (the SMSC clock ahead of
//!   ours) counts as 0.

use jiff::Timestamp;
use serde::Serialize;

use crate::error::StoreError;
use crate::sqlite;
use crate::store::Store;
use crate::types::{Direction, ModemId, Status};

/// A half-open time range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// First instant inside.
    pub start: Timestamp,
    /// First instant after.
    pub end: Timestamp,
}

/// What [`Store::stats`] measures.
#[derive(Clone, Debug, Default)]
pub struct StatsQuery {
    /// One set of figures per range, in this order. Ranges may overlap (a total beside its
    /// periods).
    pub ranges: Vec<TimeRange>,
    /// Only messages of this modem: inbound rows it received, outbound rows it sent (or, not
    /// yet sent, rows addressed to it).
    pub modem: Option<ModemId>,
}

/// A median and the number of rows it was taken over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Rows measured.
    pub samples: u64,
    /// The median in seconds (the mean of the two middle values for an even count); None
    /// without samples.
    pub median_secs: Option<f64>,
}

/// Failed (or unknown) messages sharing one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    /// The reason with what varies per message taken out (see [`failure_reason`]).
    pub reason: String,
    /// How many messages.
    pub count: u64,
}

/// The figures of one [`TimeRange`] (not serialised as is: `conductor-ops` shapes the report).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeriodFigures {
    /// Inbound messages.
    pub inbound: u64,
    /// Outbound messages (every status).
    pub outbound: u64,
    /// Messages per (direction, status), only the non-zero ones.
    pub by_status: Vec<(Direction, Status, u64)>,
    /// Failed and unknown outbound messages by reason, most frequent first (ties by reason).
    pub failures: Vec<FailureCount>,
    /// Queued → sent.
    pub send_latency: LatencySummary,
    /// SMSC time stamp → stored.
    pub inbound_latency: LatencySummary,
    /// Messages (both directions) per UTC quarter hour: (the quarter's start, count), in time
    /// order, non-zero only. Quarter hours map onto local hours in every real time zone.
    pub quarter_hours: Vec<(Timestamp, u64)>,
}

impl PeriodFigures {
    /// Outbound messages with `status`.
    pub fn outbound_with(&self, status: Status) -> u64 {
        self.by_status
            .iter()
            .filter(|(d, s, _)| *d == Direction::Outbound && *s == status)
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// A failure reason with what varies from message to message taken out, so that equal causes
/// group together: the CMS code and its meaning when there is one
/// (`+CMS ERROR 38 (network out of order)`), a status report's verdict without the part
/// number, and no "attempt N of M" or "gave up after N attempts" around it.
pub fn failure_reason(reason: Option<&str>) -> String {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return "(no reason recorded)".to_owned();
    };
    if let Some(at) = reason.find("+CMS ERROR") {
        let rest = &reason[at..];
        // `+CMS ERROR 38 (network out of order)`: up to the parenthesis that closes the meaning.
        let end = match (rest.find('('), rest.find(')')) {
            (Some(open), Some(close)) if open < close => close + 1,
            _ => rest.find(" (gave up").unwrap_or(rest.len()),
        };
        return rest[..end].trim().to_owned();
    }
    if let Some(verdict) = reason.strip_prefix("not delivered: ") {
        // `not delivered: <meaning> (status report TP-ST 0x41, part 2)`
        if let Some((meaning, tail)) = verdict.split_once(" (status report ") {
            let code = tail
                .split(',')
                .next()
                .unwrap_or_default()
                .trim_end_matches(')');
            return format!("not delivered: {meaning} ({code})");
        }
        return reason.to_owned();
    }
    let mut text = reason;
    if let Some(rest) = text.strip_prefix("attempt ")
        && let Some((_, tail)) = rest.split_once(" failed: ")
    {
        text = tail;
    }
    if let Some(at) = text.find(" (gave up after ") {
        text = &text[..at];
    }
    text.trim().to_owned()
}

impl Store {
    /// Traffic figures for each range of `query`, in one read snapshot (see the module docs
    /// for which rows count and how latencies are measured).
    pub async fn stats(&self, query: StatsQuery) -> Result<Vec<PeriodFigures>, StoreError> {
        const DOING: &str = "computing statistics";
        if let Some(pg) = self.postgres() {
            return crate::postgres::in_tx!(pg, DOING, |tx| crate::postgres::stats::figures(
                &tx, &query
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::stats::figures(c, &query))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_keep_the_cause_and_drop_what_varies() {
        assert_eq!(
            failure_reason(Some(
                "modem sim1 refused the send: +CMS ERROR 38 (network out of order) (gave up after 5 attempts)"
            )),
            "+CMS ERROR 38 (network out of order)"
        );
        assert_eq!(
            failure_reason(Some(
                "not delivered: absent subscriber (status report TP-ST 0x46, part 2)"
            )),
            "not delivered: absent subscriber (TP-ST 0x46)"
        );
        assert_eq!(
            failure_reason(Some("attempt 2 of 5 failed: modem m1 is not ready to send")),
            "modem m1 is not ready to send"
        );
        assert_eq!(
            failure_reason(Some("no text: content is empty, nothing to send")),
            "no text: content is empty, nothing to send"
        );
        assert_eq!(failure_reason(None), "(no reason recorded)");
        assert_eq!(failure_reason(Some("  ")), "(no reason recorded)");
    }
}
