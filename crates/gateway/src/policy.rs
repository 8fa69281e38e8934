//! The gateway's side of the sending policy (issue 11): quiet hours on the gateway's clock,
//! the claim's settings, and opt-out keywords in received messages.
//!
//! Why here and not in the store: the store takes no clock and no time zone (its crate doc),
//! so quiet hours, which are local times ("21:00–08:00" where the operator is), are turned
//! into an instant here, from the one replaceable clock (DESIGN.md "Times"). Every decision
//! itself is made in the claim's transaction (`conductor_store::policy`), so rows written by
//! any writer get the same answer. Opt-out keywords are matched on every newly stored inbound
//! message; the block list they change is read by the next claim.

use std::collections::HashMap;

use conductor_store::policy::{ClaimPolicy, Limits, matches_keyword, normalize_recipient};
use conductor_store::{MessageId, ModemId};
use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use tracing::{info, warn};

use crate::config::{GatewayConfig, ModemSettings};
use crate::worker::ModemWorker;

/// Local times during which rows that are not transactional wait (`outbound.quiet_hours`).
/// `start` after `end` spans midnight (21:00–08:00).
#[derive(Clone, Debug, PartialEq)]
pub struct QuietHours {
    /// When quiet starts, local time.
    pub start: Time,
    /// When it ends, local time.
    pub end: Time,
    /// The zone the times are in: the host's (DESIGN.md "Times": schedules are local).
    pub time_zone: TimeZone,
}

impl QuietHours {
    /// Quiet from `start` to `end` in the host's time zone.
    pub fn local(start: Time, end: Time) -> Self {
        Self {
            start,
            end,
            time_zone: TimeZone::system(),
        }
    }

    /// While `now` is inside quiet hours, the instant they end; None outside them.
    pub fn until(&self, now: Timestamp) -> Option<Timestamp> {
        if self.start == self.end {
            return None;
        }
        let local = now.to_zoned_datetime(self.time_zone.clone());
        let time = local.time();
        let inside = if self.start < self.end {
            time >= self.start && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !inside {
            return None;
        }
        let day = if time >= self.end {
            // Before midnight in a window that spans it: it ends tomorrow.
            local.date().tomorrow().ok()?
        } else {
            local.date()
        };
        day.to_datetime(self.end)
            .to_zoned_datetime(self.time_zone.clone())
            .ok()
            .map(|z| z.timestamp())
    }
}

/// A modem's limits as the claim applies them: `rate_limit_per_minute` counts as
/// `limits.per_minute` when that is not set, so the old setting keeps working.
pub(crate) fn modem_limits(settings: &ModemSettings) -> Limits {
    let mut limits = settings.limits.clone();
    limits.per_minute = limits
        .per_minute
        .or(settings.rate_limit_per_minute.filter(|&n| n > 0));
    limits
}

/// The claim's settings at `now`: the modems' `limits`, and `room` jobs free on each ready
/// modem.
pub(crate) fn claim_policy(
    config: &GatewayConfig,
    limits: HashMap<ModemId, Limits>,
    room: HashMap<ModemId, usize>,
    now: Timestamp,
) -> ClaimPolicy {
    let outbound = &config.outbound;
    ClaimPolicy {
        numbers: Some(outbound.numbers.clone()),
        limits: limits.into_iter().filter(|(_, l)| l.any()).collect(),
        recipient_per_hour: outbound.recipient_per_hour,
        routing: outbound.routing.clone(),
        room,
        quiet_until: outbound.quiet_hours.as_ref().and_then(|q| q.until(now)),
        default_ttl: outbound.default_ttl,
        max_parts: outbound.max_parts,
        transliterate: outbound.transliterate,
    }
}

impl ModemWorker {
    /// Applies the opt-out keywords to a message just stored: STOP puts its sender on the block
    /// list, START takes it off. Failures are logged; the message itself is safe either way.
    pub(crate) async fn opt_out(&self, id: MessageId) {
        let outbound = &self.ctx.config.outbound;
        let row = match self.ctx.store.message(id).await {
            Ok(Some(detail)) => detail.message,
            Ok(None) => return,
            Err(e) => {
                warn!(id = id.0, error = %e, "could not read message #{id} to check it for an opt-out keyword");
                return;
            }
        };
        let stop = matches_keyword(&row.content, &outbound.stop_keywords);
        let start = !stop && matches_keyword(&row.content, &outbound.start_keywords);
        if !stop && !start {
            return;
        }
        let number = normalize_recipient(&row.phone_number, &outbound.numbers)
            .unwrap_or_else(|_| conductor_store::normalize_number(&row.phone_number));
        let now = self.now();
        let keyword = row.content.trim().to_owned();
        let result = if stop {
            self.ctx
                .store
                .block_number(
                    number.clone(),
                    "inbound".to_owned(),
                    Some(keyword.clone()),
                    Some(id),
                    now,
                )
                .await
        } else {
            self.ctx
                .store
                .unblock_number(number.clone(), "inbound".to_owned(), Some(id), now)
                .await
        };
        match result {
            Ok(true) if stop => {
                info!(id = id.0, %number, %keyword, "{number} opted out ({keyword:?}): messages to it are blocked unless transactional")
            }
            Ok(true) => {
                info!(id = id.0, %number, "{number} opted back in ({keyword:?}): removed from the block list")
            }
            Ok(false) => {}
            Err(e) => {
                warn!(id = id.0, %number, error = %e, "could not update the block list for message #{id}; `conductor block` can do it by hand")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn quiet_hours_over_midnight_end_the_next_morning() {
        let quiet = QuietHours {
            start: Time::constant(21, 0, 0, 0),
            end: Time::constant(8, 0, 0, 0),
            time_zone: TimeZone::UTC,
        };
        assert_eq!(
            quiet.until(at("2024-03-01T22:30:00Z")),
            Some(at("2024-03-02T08:00:00Z"))
        );
        assert_eq!(
            quiet.until(at("2024-03-02T03:00:00Z")),
            Some(at("2024-03-02T08:00:00Z"))
        );
        assert_eq!(quiet.until(at("2024-03-02T08:00:00Z")), None);
        assert_eq!(quiet.until(at("2024-03-02T12:00:00Z")), None);
    }

    #[test]
    fn quiet_hours_inside_one_day() {
        let quiet = QuietHours {
            start: Time::constant(12, 0, 0, 0),
            end: Time::constant(14, 0, 0, 0),
            time_zone: TimeZone::fixed(jiff::tz::offset(2)),
        };
        // 11:00 UTC is 13:00 at +02:00.
        assert_eq!(
            quiet.until(at("2024-03-01T11:00:00Z")),
            Some(at("2024-03-01T12:00:00Z"))
        );
        assert_eq!(quiet.until(at("2024-03-01T13:00:00Z")), None);
    }
}
