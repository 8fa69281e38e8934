//! The SQL behind [`crate::Store::stats`] on PostgreSQL: the same figures as
//! `crate::sqlite::stats`, aggregated by the server (medians with `percentile_cont(0.5)`, which
//! averages the two middle values of an even count exactly as the SQLite query does), read in
//! one `REPEATABLE READ` snapshot so the ranges of one report agree with each other.
//!
//! Latencies are whole seconds, as on SQLite: every time is truncated to the second before
//! subtracting. The SMSC time stamp is text that any writer may have filled; the server would
//! abort the whole report on one value it cannot cast, so inbound latencies are read as
//! (stored, SMSC text) pairs and parsed here with the store's own reader, and a value it cannot
//! read is left out (SQLite's `unixepoch()` gives NULL for it, which the SQLite query skips).

use std::collections::HashMap;
use std::time::SystemTime;

use jiff::Timestamp;

use super::{Db, Tx, at};
use crate::stats::{
    FailureCount, LatencySummary, PeriodFigures, StatsQuery, TimeRange, failure_reason,
};
use crate::types::{Direction, Status, parse_sql_time};

/// Rows of the range (`$1` start, `$2` end) and modem (`$3`, NULL for all).
const IN_RANGE: &str = "created_at >= $1 AND created_at < $2
     AND ($3::text IS NULL OR coalesce(sending_modem, modem_id) = $3)";

/// Queued → sent, in whole seconds, for outbound rows with a `sent_at`.
const SEND_LATENCY: &str = "greatest(0, extract(epoch FROM date_trunc('second', sent_at)
     - date_trunc('second', greatest(created_at, coalesce(send_at, created_at)))))::float8";

/// Figures for every range of `query`, in one snapshot.
pub(crate) async fn figures(tx: &Tx<'_>, query: &StatsQuery) -> Db<Vec<PeriodFigures>> {
    tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    let modem = query.modem.as_ref().map(|m| m.as_str().to_owned());
    let mut out = Vec::with_capacity(query.ranges.len());
    for range in &query.ranges {
        out.push(one_range(tx, *range, modem.as_deref()).await?);
    }
    Ok(out)
}

async fn one_range(tx: &Tx<'_>, range: TimeRange, modem: Option<&str>) -> Db<PeriodFigures> {
    let (start, end) = (at(range.start), at(range.end));
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&start, &end, &modem];
    let mut figures = PeriodFigures::default();

    let rows = tx
        .query(
            &format!(
                "SELECT direction, status, count(*) FROM messages WHERE {IN_RANGE}
                 GROUP BY direction, status ORDER BY direction, status"
            ),
            &params,
        )
        .await?;
    for row in rows {
        let (direction, status, n): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        // The CHECK constraints keep both spellings known; skip anything else rather than fail.
        let (Ok(direction), Ok(status)) =
            (direction.parse::<Direction>(), status.parse::<Status>())
        else {
            continue;
        };
        let n = u64::try_from(n).unwrap_or(0);
        match direction {
            Direction::Inbound => figures.inbound += n,
            Direction::Outbound => figures.outbound += n,
        }
        figures.by_status.push((direction, status, n));
    }

    // Grouped by the raw reason in SQL, then merged on what stays the same per cause.
    let rows = tx
        .query(
            &format!(
                "SELECT reason, count(*) FROM messages
                 WHERE direction = 'outbound' AND status IN ('failed', 'unknown') AND {IN_RANGE}
                 GROUP BY reason"
            ),
            &params,
        )
        .await?;
    let mut merged: HashMap<String, u64> = HashMap::new();
    for row in rows {
        let reason: Option<String> = row.get(0);
        let n: i64 = row.get(1);
        *merged.entry(failure_reason(reason.as_deref())).or_default() +=
            u64::try_from(n).unwrap_or(0);
    }
    let mut failures: Vec<FailureCount> = merged
        .into_iter()
        .map(|(reason, count)| FailureCount { reason, count })
        .collect();
    failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    figures.failures = failures;

    let row = tx
        .query_one(
            &format!(
                "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY {SEND_LATENCY})
                 FROM messages
                 WHERE direction = 'outbound' AND sent_at IS NOT NULL AND {IN_RANGE}"
            ),
            &params,
        )
        .await?;
    figures.send_latency = LatencySummary {
        samples: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        median_secs: row.get(1),
    };

    let rows = tx
        .query(
            &format!(
                "SELECT date_trunc('second', created_at), smsc_timestamp FROM messages
                 WHERE direction = 'inbound' AND smsc_timestamp IS NOT NULL AND {IN_RANGE}"
            ),
            &params,
        )
        .await?;
    let mut inbound: Vec<i64> = rows
        .iter()
        .filter_map(|row| {
            let stored = Timestamp::try_from(row.get::<_, SystemTime>(0)).ok()?;
            let smsc = parse_sql_time(row.get(1))?;
            Some((stored.as_second() - smsc.as_second()).max(0))
        })
        .collect();
    figures.inbound_latency = median(&mut inbound);

    let rows = tx
        .query(
            &format!(
                "SELECT (floor(extract(epoch FROM created_at) / 900) * 900)::bigint AS quarter,
                        count(*)
                 FROM messages WHERE {IN_RANGE} GROUP BY quarter ORDER BY quarter"
            ),
            &params,
        )
        .await?;
    for row in rows {
        let (quarter, n): (i64, i64) = (row.get(0), row.get(1));
        if let Ok(start) = Timestamp::from_second(quarter) {
            figures
                .quarter_hours
                .push((start, u64::try_from(n).unwrap_or(0)));
        }
    }
    Ok(figures)
}

/// The median of `values` (the mean of the two middle ones for an even count).
fn median(values: &mut [i64]) -> LatencySummary {
    values.sort_unstable();
    let n = values.len();
    let median_secs = match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2] as f64),
        _ => Some((values[n / 2 - 1] + values[n / 2]) as f64 / 2.0),
    };
    LatencySummary {
        samples: n as u64,
        median_secs,
    }
}
