//! TP-Validity-Period (TS 23.040 §9.2.3.12): how long the SC keeps trying an SMS-SUBMIT.
//!
//! TP-VPF (bits 4-3 of the first octet) says which form follows: none (00), relative (10, one
//! octet), enhanced (01, seven octets, kept raw here) or absolute (11, a time stamp).
//!
//! Relative values (§9.2.3.12.1):
//!
//! | TP-VP     | period                         |
//! |-----------|--------------------------------|
//! | 0-143     | (VP + 1) × 5 minutes           |
//! | 144-167   | 12 hours + (VP − 143) × 30 min |
//! | 168-196   | (VP − 166) days                |
//! | 197-255   | (VP − 192) weeks               |
//!
//! A requested duration is rounded *up* to the next representable value (asking for 7
//! minutes keeps the message 10, never 5), and capped at 63 weeks.

use std::time::Duration;

use crate::timestamp::Timestamp;

/// TP-VP in whichever form TP-VPF chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValidityPeriod {
    /// One octet, see the module table.
    Relative(u8),
    /// An absolute expiry time.
    Absolute(Timestamp),
    /// The enhanced format (§9.2.3.12.3), kept as its seven octets.
    Enhanced([u8; 7]),
}

impl ValidityPeriod {
    /// The relative value covering at least `duration`.
    pub fn relative(duration: Duration) -> Self {
        Self::Relative(relative_from_duration(duration))
    }

    /// The TP-VPF bits (already shifted to bits 4-3) for this form.
    pub fn format_bits(&self) -> u8 {
        match self {
            Self::Relative(_) => 0b10 << 3,
            Self::Enhanced(_) => 0b01 << 3,
            Self::Absolute(_) => 0b11 << 3,
        }
    }

    /// The period for the relative form.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Self::Relative(vp) => Some(relative_duration(*vp)),
            _ => None,
        }
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// The period a relative TP-VP stands for.
pub fn relative_duration(vp: u8) -> Duration {
    let vp = u64::from(vp);
    Duration::from_secs(match vp {
        0..=143 => (vp + 1) * 5 * MINUTE,
        144..=167 => 12 * HOUR + (vp - 143) * 30 * MINUTE,
        168..=196 => (vp - 166) * DAY,
        _ => (vp - 192) * WEEK,
    })
}

/// The smallest relative TP-VP whose period is at least `duration` (255 = 63 weeks when
/// nothing covers it).
pub fn relative_from_duration(duration: Duration) -> u8 {
    let secs = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    let vp = if secs <= 12 * HOUR {
        secs.div_ceil(5 * MINUTE).saturating_sub(1)
    } else if secs <= DAY {
        143 + (secs - 12 * HOUR).div_ceil(30 * MINUTE)
    } else if secs <= 30 * DAY {
        166 + secs.div_ceil(DAY)
    } else {
        192 + secs.div_ceil(WEEK)
    };
    u8::try_from(vp.min(255)).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    #[test]
    fn relative_values_follow_the_spec_table() {
        assert_eq!(relative_duration(0), minutes(5));
        assert_eq!(relative_duration(143), minutes(720));
        assert_eq!(relative_duration(144), minutes(750));
        assert_eq!(relative_duration(167), minutes(1440));
        assert_eq!(relative_duration(168), minutes(2 * 1440));
        assert_eq!(relative_duration(196), minutes(30 * 1440));
        assert_eq!(relative_duration(197), minutes(5 * 10080));
        assert_eq!(relative_duration(255), minutes(63 * 10080));
    }

    #[test]
    fn durations_round_up_to_the_next_representable_value() {
        assert_eq!(relative_from_duration(Duration::ZERO), 0);
        assert_eq!(relative_from_duration(minutes(5)), 0);
        assert_eq!(relative_from_duration(minutes(7)), 1);
        assert_eq!(relative_from_duration(Duration::from_secs(301)), 1);
        assert_eq!(relative_from_duration(minutes(60)), 11);
        assert_eq!(relative_from_duration(minutes(721)), 144);
        assert_eq!(relative_from_duration(minutes(1440)), 167);
        assert_eq!(relative_from_duration(minutes(1441)), 168);
        assert_eq!(relative_from_duration(minutes(3 * 1440)), 169);
        assert_eq!(relative_from_duration(minutes(30 * 1440 + 1)), 197);
        assert_eq!(relative_from_duration(minutes(7 * 10080)), 199);
        assert_eq!(relative_from_duration(minutes(63 * 10080)), 255);
        assert_eq!(relative_from_duration(minutes(100 * 10080)), 255);
        assert_eq!(relative_from_duration(Duration::MAX), 255);
    }

    #[test]
    fn rounding_up_never_gives_less_than_asked_and_is_tight() {
        for vp in 0..=255u8 {
            let d = relative_duration(vp);
            assert_eq!(relative_from_duration(d), vp, "exact value {vp}");
            if vp < 255 {
                assert_eq!(relative_from_duration(d + Duration::from_secs(1)), vp + 1);
            }
        }
    }
}
