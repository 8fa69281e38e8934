//! `Store::stats` on a generated month of traffic: rows written straight into the file (as any
//! writer could) with known times, statuses, reasons and latencies; the figures must be exact.

use conductor_store::{Direction, ModemId, StatsQuery, Status, TimeRange};
use jiff::{Timestamp, civil::date, tz::TimeZone};

use crate::util::TestDb;

/// One generated row.
#[derive(Clone, Debug)]
struct Gen {
    direction: &'static str,
    status: &'static str,
    modem: &'static str,
    created: Timestamp,
    /// Outbound: seconds from created to sent (None: never sent). Inbound: SMSC → stored.
    latency: Option<i64>,
    reason: Option<&'static str>,
}

const CMS_38: &str =
    "modem m1 refused the send: +CMS ERROR 38 (network out of order) (gave up after 5 attempts)";
const ABSENT: &str = "not delivered: absent subscriber (status report TP-ST 0x46, part 1)";

fn utc(day: i8, hour: i8, minute: i8) -> Timestamp {
    date(2024, 3, day)
        .at(hour, minute, 0, 0)
        .to_zoned_datetime(TimeZone::UTC)
        .expect("valid time")
        .timestamp()
}

/// March 2024: every day 2 inbound (14:10, 14:40) and 4 outbound (09:05, 09:35, 10:05, 14:20)
/// on m1; the 4th outbound row fails on days divisible by 3 (CMS 38 on even days, never sent;
/// a failed status report on odd days, sent first). Three extra delivered rows on m2 on the
/// 15th, and one row on each side of the month that must not count.
fn month() -> Vec<Gen> {
    let mut rows = Vec::new();
    for d in 1..=31i8 {
        let day = i64::from(d);
        for (i, minute) in [(0i64, 10i8), (1, 40)] {
            rows.push(Gen {
                direction: "inbound",
                status: "unread",
                modem: "m1",
                created: utc(d, 14, minute),
                latency: Some(3 + i * 4 + day % 5),
                reason: None,
            });
        }
        for (j, (hour, minute)) in [(9i8, 5i8), (9, 35), (10, 5), (14, 20)]
            .into_iter()
            .enumerate()
        {
            let j = j as i64;
            let (status, reason, sent) = match j {
                0 | 1 => ("delivered", None, true),
                2 => ("sent", None, true),
                _ if d % 3 != 0 => ("delivered", None, true),
                _ if d % 2 == 0 => ("failed", Some(CMS_38), false),
                _ => ("failed", Some(ABSENT), true),
            };
            rows.push(Gen {
                direction: "outbound",
                status,
                modem: "m1",
                created: utc(d, hour, minute),
                latency: sent.then_some(10 * j + day),
                reason,
            });
        }
    }
    for k in 0..3 {
        rows.push(Gen {
            direction: "outbound",
            status: "delivered",
            modem: "m2",
            created: utc(15, 20, 10 * k),
            latency: Some(100),
            reason: None,
        });
    }
    rows
}

fn sql(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn insert(db: &TestDb, rows: &[Gen]) {
    let mut c = rusqlite::Connection::open(&db.path).expect("open");
    let tx = c.transaction().expect("tx");
    for r in rows {
        let created = sql(r.created);
        let at = |secs: i64| sql(r.created + jiff::SignedDuration::from_secs(secs));
        if r.direction == "inbound" {
            let smsc = r.latency.map(|l| {
                (r.created - jiff::SignedDuration::from_secs(l))
                    .to_zoned_datetime(TimeZone::fixed(jiff::tz::offset(1)))
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string()
            });
            tx.execute(
                "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                     modem_id, smsc_timestamp, created_at, updated_at)
                 VALUES ('+491', 'in', ?1, ?2, 'inbound', ?3, ?4, ?1, ?1)",
                (&created, r.status, r.modem, smsc),
            )
            .expect("insert inbound");
        } else {
            tx.execute(
                "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                     sending_modem, created_at, updated_at, sent_at, reason)
                 VALUES ('+492', 'out', ?1, ?2, 'outbound', ?3, ?1, ?1, ?4, ?5)",
                (&created, r.status, r.modem, r.latency.map(at), r.reason),
            )
            .expect("insert outbound");
        }
    }
    // Just outside the month on both sides.
    tx.execute_batch(
        "INSERT INTO messages (phone_number, status, direction, created_at)
             VALUES ('+493', 'delivered', 'outbound', '2024-02-29 23:59:59'),
                    ('+493', 'failed', 'outbound', '2024-04-01 00:00:00');",
    )
    .expect("insert outside");
    tx.commit().expect("commit");
}

/// The plain median of `values` (sorted here), as a person would compute it.
fn median(mut values: Vec<i64>) -> Option<f64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2] as f64),
        _ => Some((values[n / 2 - 1] + values[n / 2]) as f64 / 2.0),
    }
}

fn range(start: Timestamp, end: Timestamp) -> TimeRange {
    TimeRange { start, end }
}

fn month_range() -> TimeRange {
    range(
        utc(1, 0, 0),
        utc(31, 0, 0) + jiff::SignedDuration::from_hours(24),
    )
}

#[tokio::test]
async fn a_generated_month_gives_exact_volumes_failures_and_medians() {
    let db = TestDb::new().await;
    let rows = month();
    insert(&db, &rows);

    let figures = db
        .store
        .stats(StatsQuery {
            ranges: vec![month_range()],
            modem: None,
        })
        .await
        .expect("stats");
    let all = &figures[0];
    // Counted by hand: 31 × 4 + 3 outbound, 31 × 2 inbound; 10 days divisible by 3.
    assert_eq!(all.outbound, 127);
    assert_eq!(all.inbound, 62);
    assert_eq!(all.outbound_with(Status::Delivered), 31 * 2 + 21 + 3);
    assert_eq!(all.outbound_with(Status::Sent), 31);
    assert_eq!(all.outbound_with(Status::Failed), 10);
    assert_eq!(
        all.by_status
            .iter()
            .filter(|(d, _, _)| *d == Direction::Inbound)
            .map(|(_, s, n)| (*s, *n))
            .collect::<Vec<_>>(),
        vec![(Status::Unread, 62)]
    );
    let failures: Vec<(&str, u64)> = all
        .failures
        .iter()
        .map(|f| (f.reason.as_str(), f.count))
        .collect();
    assert_eq!(
        failures,
        vec![
            ("+CMS ERROR 38 (network out of order)", 5),
            ("not delivered: absent subscriber (TP-ST 0x46)", 5)
        ]
    );
    // Sent rows: 31 × 3 + 21 delivered 4th rows + 5 failed-after-sending + 3 on m2.
    assert_eq!(all.send_latency.samples, 93 + 21 + 5 + 3);
    let sends: Vec<i64> = rows
        .iter()
        .filter(|r| r.direction == "outbound")
        .filter_map(|r| r.latency)
        .collect();
    assert_eq!(all.send_latency.median_secs, median(sends));
    assert_eq!(all.inbound_latency.samples, 62);
    let inbound: Vec<i64> = rows
        .iter()
        .filter(|r| r.direction == "inbound")
        .filter_map(|r| r.latency)
        .collect();
    assert_eq!(all.inbound_latency.median_secs, median(inbound));
    // Every row lands in exactly one quarter hour; 14:00-14:59 UTC is the busiest hour.
    let total: u64 = all.quarter_hours.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 127 + 62);
    let at_14: u64 = all
        .quarter_hours
        .iter()
        .filter(|(t, _)| t.to_zoned_datetime(TimeZone::UTC).hour() == 14)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(at_14, 31 * 3);
}

#[tokio::test]
async fn each_day_of_the_month_matches_a_count_made_by_hand_and_the_modem_filter_holds() {
    let db = TestDb::new().await;
    let rows = month();
    insert(&db, &rows);
    let days: Vec<TimeRange> = (1..=31i8)
        .map(|d| {
            let start = utc(d, 0, 0);
            range(start, start + jiff::SignedDuration::from_hours(24))
        })
        .collect();
    let figures = db
        .store
        .stats(StatsQuery {
            ranges: days.clone(),
            modem: Some(ModemId::from("m1")),
        })
        .await
        .expect("stats");
    assert_eq!(figures.len(), 31);
    for (day, (range, got)) in days.iter().zip(&figures).enumerate() {
        let day = day + 1;
        let inside: Vec<&Gen> = rows
            .iter()
            .filter(|r| r.modem == "m1" && r.created >= range.start && r.created < range.end)
            .collect();
        let outbound: Vec<&Gen> = inside
            .iter()
            .copied()
            .filter(|r| r.direction == "outbound")
            .collect();
        assert_eq!(got.outbound, outbound.len() as u64, "day {day}");
        assert_eq!(
            got.inbound,
            (inside.len() - outbound.len()) as u64,
            "day {day}"
        );
        let failed = outbound.iter().filter(|r| r.status == "failed").count() as u64;
        assert_eq!(got.outbound_with(Status::Failed), failed, "day {day}");
        assert_eq!(
            got.failures.iter().map(|f| f.count).sum::<u64>(),
            failed,
            "day {day}"
        );
        assert_eq!(
            got.send_latency.median_secs,
            median(outbound.iter().filter_map(|r| r.latency).collect()),
            "day {day}"
        );
        assert_eq!(
            got.inbound_latency.median_secs,
            median(
                inside
                    .iter()
                    .filter(|r| r.direction == "inbound")
                    .filter_map(|r| r.latency)
                    .collect()
            ),
            "day {day}"
        );
    }
    // Spot checks worked out by hand: day 1 sends after 1, 11, 21, 31 s; day 6's failed row
    // never left (CMS 38), leaving 6, 16, 26 s; day 1 inbound 4 and 8 s.
    assert_eq!(figures[0].send_latency.median_secs, Some(16.0));
    assert_eq!(figures[5].send_latency.median_secs, Some(16.0));
    assert_eq!(figures[5].send_latency.samples, 3);
    assert_eq!(figures[0].inbound_latency.median_secs, Some(6.0));
    // m2's three rows on the 15th are left out.
    assert_eq!(figures[14].outbound, 4);
}

#[tokio::test]
async fn ranges_are_half_open_and_an_empty_range_has_no_median() {
    let db = TestDb::new().await;
    insert(&db, &month());
    let before = range(
        utc(1, 0, 0) - jiff::SignedDuration::from_secs(1),
        utc(1, 0, 0),
    );
    let after = range(
        month_range().end,
        month_range().end + jiff::SignedDuration::from_secs(1),
    );
    let empty = range(utc(2, 0, 0), utc(2, 1, 0));
    let figures = db
        .store
        .stats(StatsQuery {
            ranges: vec![before, after, empty],
            modem: None,
        })
        .await
        .expect("stats");
    assert_eq!(figures[0].outbound, 1);
    assert_eq!(figures[1].outbound, 1);
    assert_eq!(figures[1].outbound_with(Status::Failed), 1);
    assert_eq!(figures[1].failures[0].reason, "(no reason recorded)");
    assert_eq!(figures[2].outbound + figures[2].inbound, 0);
    assert_eq!(figures[2].send_latency.samples, 0);
    assert_eq!(figures[2].send_latency.median_secs, None);
    assert!(figures[2].quarter_hours.is_empty());
}
