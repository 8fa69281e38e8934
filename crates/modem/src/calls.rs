//! Incoming calls: `RING` / `+CRING` and `+CLIP` (TS 27.007 §6.2, §7.6) folded into one
//! event per call, and hanging up (`AT+CHUP`, else `ATH`).
//!
//! Why a tracker: a modem repeats `RING` (with `+CLIP` after each one when caller id is on)
//! every few seconds until the caller gives up or the call is answered or rejected, and says
//! nothing when the caller gives up (some print `NO CARRIER`, most do not). Logging each RING
//! would make one call ten events. [`CallTracker`] is sans-IO, like the AT engine: URCs and
//! `now` in, [`CallEvent`]s and a deadline out; a call ends when `NO CARRIER` arrives, when it
//! is hung up, or when no RING came for [`RING_GAP`].

use std::time::{Duration, Instant};

use conductor_at::{Command, Urc};
use serde::Serialize;

use crate::errors::ModemError;
use crate::handle::ModemHandle;
use crate::ops::{is_fatal, run};

/// How long after the last RING a call counts as over. Networks ring every 3–6 s (ITU-T
/// E.180 cadences); twice the longest gap is safely past it.
pub const RING_GAP: Duration = Duration::from_secs(10);

/// Something that happened to an incoming call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallEvent {
    /// A call is ringing: reported once per call, as soon as the caller's number is known
    /// (the first `+CLIP`), or at the second RING when the modem gives no caller id.
    Incoming {
        /// The caller's number; `None` when withheld or unknown.
        number: Option<String>,
        /// Its type of address (145 international, 129 unknown, 128 withheld).
        type_of_address: Option<u8>,
    },
    /// The call is over.
    Ended {
        /// The caller's number, as in `Incoming`.
        number: Option<String>,
        /// How many RINGs it made.
        rings: u32,
        /// Why it is over.
        reason: CallEnd,
    },
}

/// Why a call is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEnd {
    /// No RING for [`RING_GAP`]: the caller gave up (or was sent to voicemail).
    RingsStopped,
    /// `NO CARRIER`.
    NoCarrier,
    /// We hung up.
    HungUp,
}

#[derive(Debug, Clone)]
struct Call {
    number: Option<String>,
    type_of_address: Option<u8>,
    rings: u32,
    last_signal: Instant,
    reported: bool,
}

/// Folds call URCs into [`CallEvent`]s (see the module doc).
#[derive(Debug, Clone)]
pub struct CallTracker {
    gap: Duration,
    call: Option<Call>,
}

impl Default for CallTracker {
    fn default() -> Self {
        Self::new(RING_GAP)
    }
}

impl CallTracker {
    /// A tracker that ends a call after `gap` without RING.
    pub fn new(gap: Duration) -> Self {
        Self { gap, call: None }
    }

    /// Whether a call is ringing now.
    pub fn is_ringing(&self) -> bool {
        self.call.is_some()
    }

    /// Feeds one URC; other URCs than RING, `+CLIP` and `NO CARRIER` are ignored.
    pub fn handle_urc(&mut self, now: Instant, urc: &Urc) -> Vec<CallEvent> {
        let mut events = Vec::new();
        match urc {
            Urc::Ring => {
                let call = self.call.get_or_insert_with(|| Call::new(now));
                call.rings += 1;
                call.last_signal = now;
                // No caller id by the second RING: the modem gives none (CLIP refused).
                if call.rings >= 2
                    && let Some(event) = call.report()
                {
                    events.push(event);
                }
            }
            Urc::CallerId {
                number,
                type_of_address,
            } => {
                // `+CLIP` may come before the first RING on some firmwares.
                let call = self.call.get_or_insert_with(|| Call::new(now));
                call.last_signal = now;
                let number = number.trim();
                if call.number.is_none() && !number.is_empty() {
                    call.number = Some(number.to_owned());
                }
                call.type_of_address = call.type_of_address.or(*type_of_address);
                if let Some(event) = call.report() {
                    events.push(event);
                }
            }
            Urc::NoCarrier => events.extend(self.end(CallEnd::NoCarrier)),
            _ => {}
        }
        events
    }

    /// The call was hung up by us.
    pub fn hung_up(&mut self) -> Vec<CallEvent> {
        self.end(CallEnd::HungUp)
    }

    /// When [`CallTracker::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.call.as_ref().map(|c| c.last_signal + self.gap)
    }

    /// Time passed: ends a call whose RINGs stopped.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<CallEvent> {
        match self.poll_timeout() {
            Some(due) if now >= due => self.end(CallEnd::RingsStopped),
            _ => Vec::new(),
        }
    }

    fn end(&mut self, reason: CallEnd) -> Vec<CallEvent> {
        let Some(mut call) = self.call.take() else {
            return Vec::new();
        };
        let mut events: Vec<CallEvent> = call.report().into_iter().collect();
        events.push(CallEvent::Ended {
            number: call.number,
            rings: call.rings,
            reason,
        });
        events
    }
}

impl Call {
    fn new(now: Instant) -> Self {
        Self {
            number: None,
            type_of_address: None,
            rings: 0,
            last_signal: now,
            reported: false,
        }
    }

    /// The `Incoming` event, the first time only.
    fn report(&mut self) -> Option<CallEvent> {
        if std::mem::replace(&mut self.reported, true) {
            return None;
        }
        Some(CallEvent::Incoming {
            number: self.number.clone(),
            type_of_address: self.type_of_address,
        })
    }
}

/// Which command hung up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangUp {
    /// `AT+CHUP` (TS 27.007 §6.5).
    Chup,
    /// `ATH` (V.250 §6.3.6), for modems that refuse `AT+CHUP`.
    Ath,
}

impl HangUp {
    /// The command line.
    pub fn line(self) -> &'static str {
        match self {
            HangUp::Chup => "AT+CHUP",
            HangUp::Ath => "ATH",
        }
    }
}

impl ModemHandle {
    /// Rejects a ringing call: `AT+CHUP`, and `ATH` when the modem refuses that (some
    /// firmwares know only V.250's hang-up). Frees the line, so SMS keep flowing.
    pub async fn hang_up(&self) -> Result<HangUp, ModemError> {
        let mut exec = self.clone();
        match run(&mut exec, Command::new(HangUp::Chup.line())?).await {
            Ok(_) => return Ok(HangUp::Chup),
            Err(error) if is_fatal(&error) => return Err(error),
            Err(error) => tracing::debug!(%error, "AT+CHUP refused; trying ATH"),
        }
        run(&mut exec, Command::new(HangUp::Ath.line())?).await?;
        Ok(HangUp::Ath)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(number: &str) -> Urc {
        Urc::CallerId {
            number: number.into(),
            type_of_address: Some(145),
        }
    }

    #[test]
    fn many_rings_with_caller_id_make_one_incoming_event_then_one_end() {
        let t0 = Instant::now();
        let mut tracker = CallTracker::new(Duration::from_secs(10));
        let mut events = Vec::new();
        for i in 0..4 {
            let at = t0 + Duration::from_secs(5 * i);
            events.extend(tracker.handle_urc(at, &Urc::Ring));
            events.extend(tracker.handle_urc(at, &clip("+33612345678")));
        }
        assert_eq!(
            events,
            vec![CallEvent::Incoming {
                number: Some("+33612345678".into()),
                type_of_address: Some(145)
            }]
        );
        assert!(
            tracker
                .handle_timeout(t0 + Duration::from_secs(20))
                .is_empty()
        );
        let ended = tracker.handle_timeout(t0 + Duration::from_secs(25));
        assert_eq!(
            ended,
            vec![CallEvent::Ended {
                number: Some("+33612345678".into()),
                rings: 4,
                reason: CallEnd::RingsStopped
            }]
        );
        assert!(!tracker.is_ringing());
    }

    #[test]
    fn without_caller_id_the_second_ring_reports_an_unknown_caller() {
        let t0 = Instant::now();
        let mut tracker = CallTracker::default();
        assert!(tracker.handle_urc(t0, &Urc::Ring).is_empty());
        assert_eq!(
            tracker.handle_urc(t0, &Urc::Ring),
            vec![CallEvent::Incoming {
                number: None,
                type_of_address: None
            }]
        );
        let ended = tracker.handle_urc(t0, &Urc::NoCarrier);
        assert!(matches!(
            ended.as_slice(),
            [CallEvent::Ended {
                reason: CallEnd::NoCarrier,
                rings: 2,
                ..
            }]
        ));
    }

    #[test]
    fn a_withheld_number_is_none_and_a_hang_up_ends_the_call() {
        let t0 = Instant::now();
        let mut tracker = CallTracker::default();
        tracker.handle_urc(t0, &Urc::Ring);
        let events = tracker.handle_urc(
            t0,
            &Urc::CallerId {
                number: String::new(),
                type_of_address: Some(128),
            },
        );
        assert_eq!(
            events,
            vec![CallEvent::Incoming {
                number: None,
                type_of_address: Some(128)
            }]
        );
        assert!(matches!(
            tracker.hung_up().as_slice(),
            [CallEvent::Ended {
                reason: CallEnd::HungUp,
                ..
            }]
        ));
        assert!(tracker.hung_up().is_empty());
        assert_eq!(tracker.poll_timeout(), None);
    }
}
