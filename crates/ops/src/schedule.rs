//! "Daily at HH:MM in the host's local time" on the gateway's one replaceable clock.
//!
//! Why not cron, or one long `sleep` until 03:00: every schedule reads
//! [`conductor_gateway::Clock`] (DESIGN.md "Decisions: Times"), so a test drives a daily backup
//! in seconds with `ManualClock`. A `ManualClock` jump does not wake a task that is already
//! sleeping, so [`run_daily`] never sleeps longer than its `tick` before it reads the clock
//! again. The production clock needs no tick: its sleeps end on time.
//!
//! Rules:
//! - The first run is the next `HH:MM` after start. A daemon started at 03:30 does not back up
//!   at once; it waits for tomorrow's 03:00.
//! - If the clock jumps over several days at once (a suspended laptop, a test), the job runs
//!   once, not once per missed day.
//! - Local time comes from the host's zone (jiff reads `TZ` and `/etc/localtime`). On a
//!   daylight-saving change a time that does not exist that day (02:30 in spring) runs at the
//!   first instant after the gap. A time that happens twice runs at its first occurrence.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conductor_gateway::Clock;
use conductor_store::{NewEvent, Store};
use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use tokio_util::sync::CancellationToken;

/// A time of day that is not `HH:MM`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a time of day: write it as \"HH:MM\" on a 24-hour clock, e.g. \"03:00\"")]
pub struct BadTimeOfDay {
    /// What was given.
    pub text: String,
}

/// A time of day in a time zone: when a daily job runs.
#[derive(Clone, Debug)]
pub struct DailyAt {
    time: Time,
    zone: TimeZone,
}

impl DailyAt {
    /// `HH:MM` (24-hour) in the host's local time zone.
    pub fn parse(text: &str) -> Result<Self, BadTimeOfDay> {
        Ok(Self {
            time: parse_time_of_day(text)?,
            zone: TimeZone::system(),
        })
    }

    /// The same time of day in `zone` (tests use UTC, so they hold on any host).
    pub fn in_zone(mut self, zone: TimeZone) -> Self {
        self.zone = zone;
        self
    }

    /// The time of day.
    pub fn time(&self) -> Time {
        self.time
    }

    /// The first instant strictly after `now` whose local time of day is this one.
    pub fn next_after(&self, now: Timestamp) -> Timestamp {
        let today = now.to_zoned_datetime(self.zone.clone()).date();
        for days in 0..3i64 {
            let Ok(date) = today.checked_add(days.days()) else {
                break;
            };
            // A time inside a DST gap resolves forwards, a repeated one to its first
            // occurrence (jiff's "compatible" rule).
            if let Ok(zoned) = date
                .to_datetime(self.time)
                .to_zoned_datetime(self.zone.clone())
            {
                let at = zoned.timestamp();
                if at > now {
                    return at;
                }
            }
        }
        Timestamp::MAX
    }
}

impl fmt::Display for DailyAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.time.strftime("%H:%M"))
    }
}

/// Reads `HH:MM` (also `H:MM`), 24-hour.
pub fn parse_time_of_day(text: &str) -> Result<Time, BadTimeOfDay> {
    let bad = || BadTimeOfDay {
        text: text.to_owned(),
    };
    let (hours, minutes) = text.trim().split_once(':').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours) || minutes.len() != 2 || !digits(minutes) {
        return Err(bad());
    }
    let hours: i8 = hours.parse().map_err(|_| bad())?;
    let minutes: i8 = minutes.parse().map_err(|_| bad())?;
    Time::new(hours, minutes, 0, 0).map_err(|_| bad())
}

/// How long from `now` until `then` (zero when it has passed).
fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// Runs `job` once a day at `at` on `clock` until `shutdown`; `job` gets the clock's time when
/// it starts. The first run is fixed when this is called, not when the future is first
/// polled, so a clock moved right after spawning still counts. The clock is read again at
/// least every `tick`, so a `ManualClock` jump is noticed within one tick. A job still
/// running at shutdown is dropped where it waits.
pub fn run_daily<F, Fut>(
    clock: Arc<dyn Clock>,
    at: DailyAt,
    tick: Duration,
    shutdown: CancellationToken,
    mut job: F,
) -> impl Future<Output = ()>
where
    F: FnMut(Timestamp) -> Fut,
    Fut: Future<Output = ()>,
{
    let tick = tick.max(Duration::from_millis(1));
    let mut next = at.next_after(clock.now());
    tracing::debug!(at = %at, next = %next, "daily job scheduled");
    async move {
        loop {
            let now = clock.now();
            if now >= next {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = job(now) => {}
                }
                // The next day's time after this run's start: a clock that jumps over days
                // while the job runs still gives one run per jump, not a catch-up burst.
                next = at.next_after(now);
                tracing::debug!(next = %next, "daily job done");
                continue;
            }
            let wait = until(now, next).min(tick);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Records a daily job's outcome as the event `kind` with `detail` at `now` (no message or
/// modem). A failure to record is logged, not returned: the job's own result is what the
/// caller reports, and it has already happened.
pub(crate) async fn record_outcome(
    store: &Store,
    now: Timestamp,
    kind: &str,
    detail: serde_json::Value,
) {
    let event = NewEvent {
        at: now,
        kind: kind.to_owned(),
        message_id: None,
        modem_id: None,
        detail: Some(detail),
    };
    if let Err(error) = store.append_event(event).await {
        tracing::error!("could not record the {kind} event: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_gateway::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn utc(text: &str) -> Timestamp {
        text.parse().expect("a test timestamp")
    }

    #[test]
    fn times_of_day_parse_and_nonsense_is_refused_with_the_expected_form() {
        assert_eq!(parse_time_of_day("03:00"), Ok(Time::constant(3, 0, 0, 0)));
        assert_eq!(parse_time_of_day("7:05"), Ok(Time::constant(7, 5, 0, 0)));
        for bad in [
            "3", "24:00", "03:60", "03:0", "aa:bb", "", "03:00:00", "-1:00",
        ] {
            let error = parse_time_of_day(bad).expect_err(bad).to_string();
            assert!(error.contains("HH:MM"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_next_run_is_today_if_still_ahead_else_tomorrow() {
        let at = DailyAt::parse("03:00")
            .expect("valid")
            .in_zone(TimeZone::UTC);
        assert_eq!(
            at.next_after(utc("2026-11-26T01:00:00Z")),
            utc("2026-11-26T03:00:00Z")
        );
        assert_eq!(
            at.next_after(utc("2026-11-26T03:00:00Z")),
            utc("2026-11-27T03:00:00Z")
        );
        assert_eq!(
            at.next_after(utc("2026-11-26T23:59:59Z")),
            utc("2026-11-27T03:00:00Z")
        );
    }

    #[test]
    fn local_time_follows_the_zone_and_its_daylight_saving_changes() {
        let berlin = TimeZone::get("Europe/Berlin").expect("tzdb has Europe/Berlin");
        let at = DailyAt::parse("03:00")
            .expect("valid")
            .in_zone(berlin.clone());
        // Winter: UTC+1.
        assert_eq!(
            at.next_after(utc("2026-01-10T00:00:00Z")),
            utc("2026-01-10T02:00:00Z")
        );
        // Summer: UTC+2.
        assert_eq!(
            at.next_after(utc("2026-07-10T00:00:00Z")),
            utc("2026-07-10T01:00:00Z")
        );
        // 2026-03-29 02:30 does not exist in Berlin: the job runs when the clocks jump.
        let gap = DailyAt::parse("02:30").expect("valid").in_zone(berlin);
        let next = gap.next_after(utc("2026-03-28T23:00:00Z"));
        assert_eq!(next, utc("2026-03-29T01:30:00Z"));
    }

    #[tokio::test]
    async fn a_daily_job_runs_once_per_day_of_manual_clock_time() {
        let clock = ManualClock::new();
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        // Five minutes from now (UTC), so the first run needs a clock jump too.
        let first = shared.now() + jiff::SignedDuration::from_mins(5);
        let text = first
            .to_zoned_datetime(TimeZone::UTC)
            .time()
            .strftime("%H:%M")
            .to_string();
        let at = DailyAt::parse(&text).expect("valid").in_zone(TimeZone::UTC);
        let runs = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let runs = Arc::clone(&runs);
            run_daily(
                shared,
                at,
                Duration::from_millis(5),
                shutdown.clone(),
                move |_| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    async {}
                },
            )
        });
        let wait_for = |n: usize| {
            let runs = Arc::clone(&runs);
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while runs.load(Ordering::SeqCst) < n {
                    assert!(tokio::time::Instant::now() < deadline, "run {n} never came");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "nothing runs before the time"
        );
        clock.advance(Duration::from_secs(6 * 60));
        wait_for(1).await;
        // The rest of that day: no second run.
        clock.advance(Duration::from_secs(20 * 3600));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(4 * 3600 + 60));
        wait_for(2).await;
        // Three days at once: one run, not three.
        clock.advance(Duration::from_secs(3 * 24 * 3600));
        wait_for(3).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the schedule stops on shutdown")
            .expect("the schedule task does not panic");
    }
}
