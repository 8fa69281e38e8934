//! The SQL behind [`crate::Store::stats`]: every figure is aggregated by SQLite over the
//! `created_at` index, so a range of 100 000 rows returns a handful of rows to Rust. Medians
//! sort in SQLite (its sorter spills to disk, not to our heap) and read the middle one or two
//! values with `LIMIT … OFFSET`.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::Connection;

use super::Db;
use crate::stats::{
    FailureCount, LatencySummary, PeriodFigures, StatsQuery, TimeRange, failure_reason,
};
use crate::types::{Direction, Status, sql_time};

/// Rows of the range (`?1` start, `?2` end) and modem (`?3`, NULL for all).
const IN_RANGE: &str = "created_at >= ?1 AND created_at < ?2
     AND (?3 IS NULL OR coalesce(sending_modem, modem_id) = ?3)";

/// Queued → sent, in whole seconds, for outbound rows with a `sent_at`.
const SEND_LATENCY: &str = "max(0, unixepoch(sent_at)
     - max(unixepoch(created_at), coalesce(unixepoch(send_at), unixepoch(created_at))))";

/// SMSC time stamp → stored, in whole seconds, for inbound rows with an SMSC time stamp.
const INBOUND_LATENCY: &str = "max(0, unixepoch(created_at) - unixepoch(smsc_timestamp))";

/// Figures for every range of `query`.
pub(crate) fn figures(c: &Connection, query: &StatsQuery) -> Db<Vec<PeriodFigures>> {
    let modem = query.modem.as_ref().map(|m| m.as_str().to_owned());
    query
        .ranges
        .iter()
        .map(|range| one_range(c, *range, modem.as_deref()))
        .collect()
}

fn one_range(c: &Connection, range: TimeRange, modem: Option<&str>) -> Db<PeriodFigures> {
    let params = (sql_time(range.start), sql_time(range.end), modem);
    let mut figures = PeriodFigures::default();

    let mut counts = c.prepare_cached(&format!(
        "SELECT direction, status, count(*) FROM messages WHERE {IN_RANGE}
         GROUP BY direction, status ORDER BY direction, status"
    ))?;
    let mut rows = counts.query(params.clone())?;
    while let Some(row) = rows.next()? {
        let (direction, status, n): (String, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
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

    // Group by the raw reason in SQL, then merge reasons that differ only in what varies per
    // message (modem names, attempt counts, part numbers).
    let mut reasons = c.prepare_cached(&format!(
        "SELECT reason, count(*) FROM messages
         WHERE direction = 'outbound' AND status IN ('failed', 'unknown') AND {IN_RANGE}
         GROUP BY reason"
    ))?;
    let mut merged: HashMap<String, u64> = HashMap::new();
    let mut rows = reasons.query(params.clone())?;
    while let Some(row) = rows.next()? {
        let reason: Option<String> = row.get(0)?;
        let n: i64 = row.get(1)?;
        *merged.entry(failure_reason(reason.as_deref())).or_default() +=
            u64::try_from(n).unwrap_or(0);
    }
    let mut failures: Vec<FailureCount> = merged
        .into_iter()
        .map(|(reason, count)| FailureCount { reason, count })
        .collect();
    failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    figures.failures = failures;

    figures.send_latency = median(
        c,
        SEND_LATENCY,
        "direction = 'outbound' AND sent_at IS NOT NULL",
        &params,
    )?;
    figures.inbound_latency = median(
        c,
        INBOUND_LATENCY,
        "direction = 'inbound' AND smsc_timestamp IS NOT NULL",
        &params,
    )?;

    let mut quarters = c.prepare_cached(&format!(
        "SELECT unixepoch(created_at) / 900 * 900 AS quarter, count(*) FROM messages
         WHERE {IN_RANGE} AND quarter IS NOT NULL GROUP BY quarter ORDER BY quarter"
    ))?;
    let mut rows = quarters.query(params)?;
    while let Some(row) = rows.next()? {
        let (quarter, n): (i64, i64) = (row.get(0)?, row.get(1)?);
        if let Ok(start) = Timestamp::from_second(quarter) {
            figures
                .quarter_hours
                .push((start, u64::try_from(n).unwrap_or(0)));
        }
    }
    Ok(figures)
}

/// The median of `value` over the rows of the range matching `filter`.
fn median(
    c: &Connection,
    value: &str,
    filter: &str,
    params: &(String, String, Option<&str>),
) -> Db<LatencySummary> {
    // `n` is counted once; the middle one (odd n) or two (even n) values are averaged. With no
    // rows the LIMIT picks nothing and avg() is NULL.
    let sql = format!(
        "WITH lat AS (SELECT {value} AS s FROM messages
                      WHERE {filter} AND {IN_RANGE} AND s IS NOT NULL),
              n AS (SELECT count(*) AS n FROM lat)
         SELECT (SELECT n FROM n),
                (SELECT avg(s) FROM (SELECT s FROM lat ORDER BY s
                     LIMIT 2 - (SELECT n FROM n) % 2 OFFSET ((SELECT n FROM n) - 1) / 2))"
    );
    let (samples, median): (i64, Option<f64>) = c
        .prepare_cached(&sql)?
        .query_row(params.clone(), |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(LatencySummary {
        samples: u64::try_from(samples).unwrap_or(0),
        median_secs: median,
    })
}
