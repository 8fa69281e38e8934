//! `conductor stats`: the monthly review of an SMS gateway in one command. Per local day, ISO
//! week or month: volume per direction, success rate, failures by reason, median send and
//! inbound latency, and the busiest hours of the day.
//!
//! Why here and not in the store: periods are calendar periods in the host's time zone
//! (DESIGN.md "Times": the database stores UTC, people read local time), so a "day" may be 23
//! or 25 hours long and a zone may be offset by half an hour. jiff does that arithmetic; the
//! store only aggregates UTC ranges ([`conductor_store::Store::stats`]) and returns
//! quarter-hour buckets, which map onto local hours in every real zone.
//!
//! Definitions (also in the README and in `--json`'s field names):
//! - a message belongs to the period its `created_at` (queued, or received) falls in;
//! - **success rate** = (sent + delivered) / (sent + delivered + failed + unknown): of the
//!   outbound messages that reached an outcome, the share the network accepted. Queued and
//!   sending rows have no outcome yet; duplicate and cancelled rows were never meant to go.
//!   With no outcome in a period the rate is absent, not 0;
//! - **delivered rate** = delivered / the same denominator: the share confirmed by a status
//!   report (only meaningful with `outbound.status_reports` on);
//! - latencies and failure reasons: see `conductor_store::stats`.

use conductor_store::{
    FailureCount, LatencySummary, ModemId, PeriodFigures, StatsQuery, Status, Store, StoreError,
    TimeRange,
};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, ZonedDateTime};
use serde::Serialize;

/// More periods than this are refused: a year by day is 366, ten years by month 120.
pub const MAX_PERIODS: usize = 1000;

/// How `conductor stats` cuts time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// Local calendar days.
    Day,
    /// ISO weeks, Monday to Sunday, local time.
    Week,
    /// Calendar months, local time.
    Month,
}

impl Granularity {
    /// Reads `day`, `week` or `month`.
    pub fn parse(text: &str) -> Result<Self, StatsError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" | "daily" => Ok(Self::Day),
            "week" | "weekly" => Ok(Self::Week),
            "month" | "monthly" => Ok(Self::Month),
            _ => Err(StatsError::Granularity(text.to_owned())),
        }
    }

    /// The start of the period holding `date`.
    fn start_of(self, date: Date) -> Date {
        match self {
            Self::Day => date,
            Self::Week => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                date.checked_sub(back.days()).unwrap_or(date)
            }
            Self::Month => date.first_of_month(),
        }
    }

    /// The start of the next period after the one starting on `start`.
    fn next(self, start: Date) -> Option<Date> {
        match self {
            Self::Day => start.checked_add(1.day()).ok(),
            Self::Week => start.checked_add(1.week()).ok(),
            Self::Month => start.checked_add(1.month()).ok(),
        }
    }

    /// How a period is named: `2024-03-01`, `2024-W09`, `2024-03`.
    fn label(self, start: Date) -> String {
        match self {
            Self::Day => start.to_string(),
            Self::Week => {
                let week = start.iso_week_date();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Self::Month => format!("{:04}-{:02}", start.year(), start.month()),
        }
    }

    /// Periods shown when `--since` is not given: 31 days, 12 weeks or 12 months, the
    /// current one included.
    fn default_span(self, today: Date) -> Date {
        let start = self.start_of(today);
        let back = match self {
            Self::Day => start.checked_sub(30.days()),
            Self::Week => start.checked_sub(11.weeks()),
            Self::Month => start.checked_sub(11.months()),
        };
        back.unwrap_or(start)
    }
}

/// Why a statistics request cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// `--by` is not a known period.
    #[error("--by {0:?}: use day, week or month")]
    Granularity(String),
    /// `--since` / `--until` cannot be read.
    #[error(
        "cannot read the time {0:?}: give a local date (2024-03-01), a month (2024-03), \
         RFC 3339 (2024-03-01T00:00:00Z) or a duration ago (30days)"
    )]
    Time(String),
    /// `--since` is not before `--until`.
    #[error("--since ({since}) must be before --until ({until})")]
    EmptyRange {
        /// Start.
        since: String,
        /// End.
        until: String,
    },
    /// Too many periods asked for.
    #[error(
        "{count} periods is too many (at most {MAX_PERIODS}): use --by week or month, or a shorter range"
    )]
    TooManyPeriods {
        /// How many the range holds.
        count: usize,
    },
    /// Calendar arithmetic left the range jiff supports.
    #[error("the dates are out of range: {0}")]
    Calendar(String),
    /// The database could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads `--since` / `--until`: a local date (midnight), a local month (its first day), an
/// RFC 3339 time, a local `YYYY-MM-DD HH:MM[:SS]`, or a duration before `now` (`30days`).
pub fn parse_time(text: &str, tz: &TimeZone, now: Timestamp) -> Result<Timestamp, StatsError> {
    let text = text.trim();
    let fail = || StatsError::Time(text.to_owned());
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    // jiff reads a date out of a longer date-time text too, so the date-time goes first.
    if text.len() > 10
        && let Ok(dt) = text.parse::<jiff::civil::DateTime>()
    {
        return dt
            .to_zoned_datetime(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|_| fail());
    }
    if let Ok(date) = text.parse::<Date>() {
        return local_midnight(date, tz).map_err(|_| fail());
    }
    if let Ok(date) = Date::strptime("%Y-%m-%d", format!("{text}-01")) {
        return local_midnight(date, tz).map_err(|_| fail());
    }
    if let Some(ago) = parse_duration(text) {
        return now.checked_sub(ago).map_err(|_| fail());
    }
    Err(fail())
}

/// `30days`, `12h`, `2weeks`, `90m`, `45s` (one number and one unit).
fn parse_duration(text: &str) -> Option<SignedDuration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return None,
    };
    Some(SignedDuration::from_secs(n.checked_mul(secs)?))
}

/// The first instant of `date` in `tz` (a day that starts with a DST gap starts after it).
fn local_midnight(date: Date, tz: &TimeZone) -> Result<Timestamp, jiff::Error> {
    date.to_zoned_datetime(tz.clone()).map(|z| z.timestamp())
}

/// One period: its label and the UTC range queried (clipped to `--since` / `--until`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// `2024-03-01`, `2024-W09` or `2024-03`.
    pub label: String,
    /// The range of messages counted.
    pub range: TimeRange,
}

/// The periods of `by` that cover `[since, until)` in `tz`, each clipped to that range.
pub fn periods(
    by: Granularity,
    since: Timestamp,
    until: Timestamp,
    tz: &TimeZone,
) -> Result<Vec<Period>, StatsError> {
    if since >= until {
        return Err(StatsError::EmptyRange {
            since: since.to_string(),
            until: until.to_string(),
        });
    }
    let calendar = |e: jiff::Error| StatsError::Calendar(e.to_string());
    let mut start = by.start_of(since.to_zoned_datetime(tz.clone()).date());
    let mut out = Vec::new();
    loop {
        let begins = local_midnight(start, tz).map_err(calendar)?;
        if begins >= until {
            break;
        }
        let next = by
            .next(start)
            .ok_or_else(|| StatsError::Calendar(format!("no period after {start}")))?;
        let ends = local_midnight(next, tz).map_err(calendar)?;
        out.push(Period {
            label: by.label(start),
            range: TimeRange {
                start: begins.max(since),
                end: ends.min(until),
            },
        });
        if out.len() > MAX_PERIODS {
            // Count the rest only roughly: the message names the order of magnitude.
            let span = until.duration_since(since).as_secs() / 86_400;
            return Err(StatsError::TooManyPeriods {
                count: match by {
                    Granularity::Day => span as usize,
                    Granularity::Week => span as usize / 7,
                    Granularity::Month => span as usize / 30,
                },
            });
        }
        start = next;
    }
    Ok(out)
}

/// What `conductor stats` was asked.
#[derive(Clone, Debug)]
pub struct StatsRequest {
    /// Day, week or month.
    pub by: Granularity,
    /// Start (default: see [`Granularity`]'s default span, from the start of a period).
    pub since: Option<Timestamp>,
    /// End, exclusive (default `now`).
    pub until: Option<Timestamp>,
    /// Only this modem.
    pub modem: Option<ModemId>,
    /// The zone periods and hours are local to (the host's, `TZ` in tests).
    pub tz: TimeZone,
    /// The current time.
    pub now: Timestamp,
}

/// The figures of one period, or of the whole range, as printed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    /// `2024-03-01`, `2024-W09`, `2024-03`, or `total`.
    pub period: String,
    /// Start of the range counted (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub start: Timestamp,
    /// End of the range counted, exclusive.
    #[serde(serialize_with = "rfc3339")]
    pub end: Timestamp,
    /// Inbound messages.
    pub inbound: u64,
    /// Outbound messages, every status.
    pub outbound: u64,
    /// Outbound messages per status (non-zero only).
    pub outbound_by_status: std::collections::BTreeMap<String, u64>,
    /// Outbound: accepted by the network, no report yet.
    pub sent: u64,
    /// Outbound: delivery confirmed.
    pub delivered: u64,
    /// Outbound: failed.
    pub failed: u64,
    /// Outbound: may or may not have left (a send cut by a crash).
    pub unknown: u64,
    /// (sent + delivered) / (sent + delivered + failed + unknown); None without outcomes.
    pub success_rate: Option<f64>,
    /// delivered / (sent + delivered + failed + unknown); None without outcomes.
    pub delivered_rate: Option<f64>,
    /// Failed and unknown messages by reason, most frequent first.
    pub failures: Vec<FailureCount>,
    /// Queued → sent.
    pub send_latency: LatencySummary,
    /// SMSC time stamp → stored.
    pub inbound_latency: LatencySummary,
    /// Messages (both directions) per local hour of day, 0 to 23.
    pub hours: [u64; 24],
    /// The local hour with the most messages (the earliest on a tie); None without messages.
    pub busiest_hour: Option<u8>,
}

impl Figures {
    fn new(label: String, range: TimeRange, raw: &PeriodFigures, tz: &TimeZone) -> Self {
        let count = |s: Status| raw.outbound_with(s);
        let (sent, delivered, failed, unknown) = (
            count(Status::Sent),
            count(Status::Delivered),
            count(Status::Failed),
            count(Status::Unknown),
        );
        let outcomes = sent + delivered + failed + unknown;
        let rate = |n: u64| (outcomes > 0).then(|| n as f64 / outcomes as f64);
        let hours = local_hours(&raw.quarter_hours, tz);
        Self {
            period: label,
            start: range.start,
            end: range.end,
            inbound: raw.inbound,
            outbound: raw.outbound,
            outbound_by_status: raw
                .by_status
                .iter()
                .filter(|(d, _, _)| *d == conductor_store::Direction::Outbound)
                .map(|(_, s, n)| (s.as_str().to_owned(), *n))
                .collect(),
            sent,
            delivered,
            failed,
            unknown,
            success_rate: rate(sent + delivered),
            delivered_rate: rate(delivered),
            failures: raw.failures.clone(),
            send_latency: raw.send_latency,
            inbound_latency: raw.inbound_latency,
            busiest_hour: busiest(&hours),
            hours,
        }
    }

    /// The `n` busiest local hours with their counts, busiest first (earliest on a tie),
    /// hours without messages left out.
    pub fn busiest_hours(&self, n: usize) -> Vec<(u8, u64)> {
        let mut ranked: Vec<(u8, u64)> = (0u8..24)
            .zip(self.hours)
            .filter(|(_, count)| *count > 0)
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(n);
        ranked
    }
}

/// Quarter-hour counts (UTC starts) summed per local hour of day.
pub fn local_hours(quarters: &[(Timestamp, u64)], tz: &TimeZone) -> [u64; 24] {
    let mut hours = [0u64; 24];
    for (start, count) in quarters {
        let hour = usize::try_from(start.to_zoned_datetime(tz.clone()).hour()).unwrap_or(0) % 24;
        hours[hour] += count;
    }
    hours
}

fn busiest(hours: &[u64; 24]) -> Option<u8> {
    let (hour, count) = (0u8..24)
        .zip(hours.iter().copied())
        .fold(
            (0u8, 0u64),
            |best, (h, c)| if c > best.1 { (h, c) } else { best },
        );
    (count > 0).then_some(hour)
}

/// Times in JSON are RFC 3339 in UTC (DESIGN.md "Times"), jiff's `Display`.
fn rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// The answer to a [`StatsRequest`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsReport {
    /// The periods' length.
    pub by: Granularity,
    /// The zone periods and hours are in (IANA name when known).
    pub time_zone: String,
    /// Only this modem, if asked.
    pub modem: Option<ModemId>,
    /// Start of the whole range.
    #[serde(serialize_with = "rfc3339")]
    pub since: Timestamp,
    /// End of the whole range, exclusive.
    #[serde(serialize_with = "rfc3339")]
    pub until: Timestamp,
    /// One entry per period, oldest first, empty periods included.
    pub periods: Vec<Figures>,
    /// The whole range (its medians are over every row, not a median of medians).
    pub total: Figures,
}

/// Computes the report: one store query per period plus one for the whole range, in one read
/// snapshot.
pub async fn report(store: &Store, request: StatsRequest) -> Result<StatsReport, StatsError> {
    let tz = request.tz.clone();
    let until = request.until.unwrap_or(request.now);
    let since = match request.since {
        Some(since) => since,
        None => {
            let today = ZonedDateTime::new(until, tz.clone()).date();
            local_midnight(request.by.default_span(today), &tz)
                .map_err(|e| StatsError::Calendar(e.to_string()))?
        }
    };
    let periods = periods(request.by, since, until, &tz)?;
    let whole = TimeRange {
        start: since,
        end: until,
    };
    let mut ranges: Vec<TimeRange> = periods.iter().map(|p| p.range).collect();
    ranges.push(whole);
    let raw = store
        .stats(StatsQuery {
            ranges,
            modem: request.modem.clone(),
        })
        .await?;
    let mut figures: Vec<Figures> = periods
        .into_iter()
        .zip(&raw)
        .map(|(p, r)| Figures::new(p.label, p.range, r, &tz))
        .collect();
    let total = match raw.last() {
        Some(r) => Figures::new("total".into(), whole, r, &tz),
        None => Figures::new("total".into(), whole, &PeriodFigures::default(), &tz),
    };
    figures.truncate(raw.len().saturating_sub(1));
    Ok(StatsReport {
        by: request.by,
        time_zone: tz.iana_name().unwrap_or("local").to_owned(),
        modem: request.modem,
        since,
        until,
        periods: figures,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::offset;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn days_weeks_and_months_are_local_calendar_periods_clipped_to_the_range() {
        let tz = TimeZone::fixed(offset(2));
        // 2024-03-01 00:00 local is 2024-02-29 22:00 UTC.
        let since = ts("2024-02-29T22:00:00Z");
        let until = ts("2024-04-01T00:00:00Z");
        let days = periods(Granularity::Day, since, until, &tz).expect("days");
        assert_eq!(
            days.len(),
            32,
            "31 days of March and 2 h of April 1st (local)"
        );
        assert_eq!(days[0].label, "2024-03-01");
        assert_eq!(days[0].range.start, since);
        assert_eq!(days[0].range.end, ts("2024-03-01T22:00:00Z"));
        assert_eq!(days[31].label, "2024-04-01");
        assert_eq!(days[31].range.end, until);

        let weeks = periods(Granularity::Week, since, until, &tz).expect("weeks");
        // March 1st 2024 is a Friday in ISO week 9, clipped to start at `since`.
        assert_eq!(weeks[0].label, "2024-W09");
        assert_eq!(weeks[0].range.start, since);
        assert_eq!(weeks[0].range.end, ts("2024-03-03T22:00:00Z"));
        assert_eq!(weeks[1].label, "2024-W10");
        assert_eq!(weeks.last().map(|w| w.label.as_str()), Some("2024-W14"));

        let months = periods(Granularity::Month, since, until, &tz).expect("months");
        let labels: Vec<&str> = months.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["2024-03", "2024-04"]);
        assert_eq!(months[0].range.end, ts("2024-03-31T22:00:00Z"));
    }

    #[test]
    fn a_day_with_a_daylight_saving_change_is_23_hours_long() {
        let Ok(tz) = TimeZone::get("Europe/Berlin") else {
            // No time zone database on this machine: nothing to test here.
            return;
        };
        let since = parse_time("2024-03-31", &tz, Timestamp::UNIX_EPOCH).expect("since");
        let until = parse_time("2024-04-01", &tz, Timestamp::UNIX_EPOCH).expect("until");
        let days = periods(Granularity::Day, since, until, &tz).expect("days");
        assert_eq!(days.len(), 1);
        assert_eq!(
            days[0].range.end.duration_since(days[0].range.start),
            SignedDuration::from_hours(23)
        );
    }

    #[test]
    fn times_are_read_as_local_dates_months_instants_or_durations_ago() {
        let tz = TimeZone::fixed(offset(-5));
        let now = ts("2024-03-10T12:00:00Z");
        assert_eq!(
            parse_time("2024-03-01", &tz, now).ok(),
            Some(ts("2024-03-01T05:00:00Z"))
        );
        assert_eq!(
            parse_time("2024-03", &tz, now).ok(),
            Some(ts("2024-03-01T05:00:00Z"))
        );
        assert_eq!(
            parse_time("2024-03-01T00:00:00Z", &tz, now).ok(),
            Some(ts("2024-03-01T00:00:00Z"))
        );
        assert_eq!(
            parse_time("2024-03-01 08:30", &tz, now).ok(),
            Some(ts("2024-03-01T13:30:00Z"))
        );
        assert_eq!(
            parse_time("2days", &tz, now).ok(),
            Some(ts("2024-03-08T12:00:00Z"))
        );
        let error = parse_time("last tuesday", &tz, now).expect_err("refused");
        assert!(
            error.to_string().contains("local date (2024-03-01)"),
            "{error}"
        );
        assert!(Granularity::parse("fortnight").is_err());
        assert_eq!(Granularity::parse("Month").ok(), Some(Granularity::Month));
    }

    #[test]
    fn a_range_that_is_empty_or_too_long_is_refused_with_what_to_do() {
        let tz = TimeZone::UTC;
        let t = ts("2024-03-01T00:00:00Z");
        assert!(matches!(
            periods(Granularity::Day, t, t, &tz),
            Err(StatsError::EmptyRange { .. })
        ));
        let error =
            periods(Granularity::Day, ts("2000-01-01T00:00:00Z"), t, &tz).expect_err("too many");
        assert!(error.to_string().contains("--by week or month"), "{error}");
    }

    #[test]
    fn quarter_hours_become_local_hours_also_in_half_hour_zones() {
        let quarters = [
            (ts("2024-03-01T10:00:00Z"), 3),
            (ts("2024-03-01T10:15:00Z"), 1),
            (ts("2024-03-01T10:30:00Z"), 5),
            (ts("2024-03-01T23:45:00Z"), 2),
        ];
        let utc = local_hours(&quarters, &TimeZone::UTC);
        assert_eq!((utc[10], utc[23]), (9, 2));
        // India, UTC+05:30: 10:00 and 10:15 UTC are 15:30 and 15:45; 10:30 UTC is 16:00.
        let india =
            TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 1800).expect("offset"));
        let hours = local_hours(&quarters, &india);
        assert_eq!((hours[15], hours[16], hours[5]), (4, 5, 2));
        assert_eq!(busiest(&hours), Some(16));
        assert_eq!(busiest(&[0; 24]), None);
        let figures = Figures::new(
            "x".into(),
            TimeRange {
                start: Timestamp::UNIX_EPOCH,
                end: Timestamp::UNIX_EPOCH,
            },
            &PeriodFigures {
                quarter_hours: quarters.to_vec(),
                ..PeriodFigures::default()
            },
            &india,
        );
        assert_eq!(figures.busiest_hours(2), vec![(16, 5), (15, 4)]);
    }

    #[test]
    fn the_success_rate_counts_sent_and_delivered_over_every_outcome() {
        use conductor_store::Direction::Outbound;
        let raw = PeriodFigures {
            outbound: 10,
            by_status: vec![
                (Outbound, Status::Delivered, 5),
                (Outbound, Status::Sent, 1),
                (Outbound, Status::Failed, 1),
                (Outbound, Status::Unknown, 1),
                (Outbound, Status::Queued, 1),
                (Outbound, Status::Duplicate, 1),
            ],
            ..PeriodFigures::default()
        };
        let range = TimeRange {
            start: Timestamp::UNIX_EPOCH,
            end: Timestamp::UNIX_EPOCH,
        };
        let f = Figures::new("p".into(), range, &raw, &TimeZone::UTC);
        assert_eq!(f.success_rate, Some(0.75));
        assert_eq!(f.delivered_rate, Some(0.625));
        let empty = Figures::new("p".into(), range, &PeriodFigures::default(), &TimeZone::UTC);
        assert_eq!(empty.success_rate, None);
    }
}
