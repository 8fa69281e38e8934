//! The one clock every schedule and timeout reads (DESIGN.md "Times": "Every schedule and
//! timeout reads one clock that tests can replace").
//!
//! Why a trait and not `Timestamp::now()`: the duplicate window, the multipart timeout, retry
//! backoff and the rate limit all compare stored times with "now"; tests must be able to run
//! them in seconds. [`TokioClock`], the production clock, reads tokio's `Instant` against a base
//! taken at start, so under `tokio::time::pause()` the timestamps it gives advance with virtual
//! time, in step with every `sleep` the gateway does (all of which go through tokio's timer).
//! [`ManualClock`] adds an offset a test can move forward, to jump over a ten-minute window.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A source of "now" for the gateway. One instance is shared by every task.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The production clock: wall-clock time at start plus tokio's elapsed time since.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    base_instant: tokio::time::Instant,
    base_time: Timestamp,
}

impl TokioClock {
    /// Starts the clock at the system's current time.
    pub fn new() -> Self {
        Self::starting_at(Timestamp::now())
    }

    /// Starts the clock at `start` (tests that want fixed times).
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            base_instant: tokio::time::Instant::now(),
            base_time: start,
        }
    }

    /// The clock, shareable.
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(Self::new())
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = self.base_instant.elapsed();
        add(self.base_time, elapsed)
    }
}

/// A [`TokioClock`] plus an offset that tests move forward with [`ManualClock::advance`], to
/// cross a duplicate window or a retry backoff without waiting for it. Sleeping tasks do not
/// notice a jump; the gateway's periodic checks pick it up.
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: TokioClock,
    offset_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock that starts at the system's current time.
    pub fn new() -> Self {
        Self {
            inner: TokioClock::new(),
            offset_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Moves the clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_millis(self.offset_ms.load(Ordering::SeqCst));
        self.inner
            .now()
            .checked_add(offset)
            .unwrap_or(Timestamp::MAX)
    }
}

/// `t + d`, saturating at the end of time.
pub(crate) fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `t - d`, saturating at the start of time.
pub(crate) fn sub(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

/// How long from `now` until `then` (zero when it has passed).
pub(crate) fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(now)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_virtual_time() {
        let start = Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let clock = TokioClock::starting_at(start);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.now().duration_since(start).as_secs(), 90);
    }

    #[tokio::test(start_paused = true)]
    async fn a_manual_clock_jumps_forward_for_every_clone() {
        let clock = ManualClock::new();
        let other = clock.clone();
        let before = clock.now();
        other.advance(Duration::from_secs(600));
        assert_eq!(clock.now().duration_since(before).as_secs(), 600);
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(add(Timestamp::MAX, Duration::from_secs(1)), Timestamp::MAX);
        assert_eq!(sub(Timestamp::MIN, Duration::from_secs(1)), Timestamp::MIN);
        let now = Timestamp::UNIX_EPOCH;
        assert_eq!(until(add(now, Duration::from_secs(3)), now), Duration::ZERO);
        assert_eq!(
            until(now, add(now, Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
