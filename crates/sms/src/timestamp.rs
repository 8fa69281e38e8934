//! Time stamps: TP-SCTS, TP-DT and the absolute TP-VP (TS 23.040 §9.2.3.11, §9.2.3.12.2).
//!
//! Seven octets of swapped BCD (year, month, day, hour, minute, second, zone); the zone is in
//! quarter hours, the sign in bit 3 of the zone octet, so +05:45 and -03:30 are exact. The
//! year has two digits; it is widened with the POSIX `%y` pivot (69-99 → 19xx, 00-68 → 20xx),
//! the one Python's `strptime` and C's `strptime` use, so fixtures made with either agree.
//!
//! Values are validated (month 1-12, day within its month, hour 0-23, …) and a bad one is a
//! typed [`TimestampError`]. The codec never reads a clock: conversions to and from Unix time
//! are plain arithmetic so the gateway and the virtual modem can bring their own clock.

use std::fmt;

use crate::error::TimestampError;

/// A wall-clock time with its UTC offset, as a service centre stamped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Four-digit year, 1969..=2068 (the two-digit wire year widened, see the module doc).
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31, within the month.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
    /// UTC offset in quarter hours, -79..=79 (what the field can hold; real zones use
    /// -48..=56).
    pub offset_quarters: i8,
}

/// The smallest year the two-digit field can stand for.
const FIRST_YEAR: u16 = 1969;
/// The largest.
const LAST_YEAR: u16 = 2068;

impl Timestamp {
    /// Builds a time stamp, checking every range the wire format and the calendar impose.
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        offset_quarters: i8,
    ) -> Result<Self, TimestampError> {
        check(
            "year",
            i32::from(year),
            i32::from(FIRST_YEAR),
            i32::from(LAST_YEAR),
        )?;
        check("month", i32::from(month), 1, 12)?;
        check(
            "day",
            i32::from(day),
            1,
            i32::from(days_in_month(year, month)),
        )?;
        check("hour", i32::from(hour), 0, 23)?;
        check("minute", i32::from(minute), 0, 59)?;
        check("second", i32::from(second), 0, 59)?;
        check("time zone", i32::from(offset_quarters), -79, 79)?;
        Ok(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            offset_quarters,
        })
    }

    /// Decodes the seven semi-octet-swapped BCD octets.
    pub fn from_octets(octets: [u8; 7]) -> Result<Self, TimestampError> {
        let [y, mo, d, h, mi, s, tz] = octets;
        let yy = bcd("year", y)?;
        let year = if yy >= 69 {
            1900 + u16::from(yy)
        } else {
            2000 + u16::from(yy)
        };
        // Zone: low nibble = sign bit and tens digit, high nibble = units digit.
        let tens = tz & 0x07;
        let units = tz >> 4;
        if units > 9 {
            return Err(TimestampError::NotDecimal {
                part: "time zone",
                octet: tz,
            });
        }
        let magnitude = i8::try_from(tens * 10 + units).unwrap_or(i8::MAX);
        let offset_quarters = if tz & 0x08 != 0 {
            -magnitude
        } else {
            magnitude
        };
        Self::new(
            year,
            bcd("month", mo)?,
            bcd("day", d)?,
            bcd("hour", h)?,
            bcd("minute", mi)?,
            bcd("second", s)?,
            offset_quarters,
        )
    }

    /// The seven octets this time stamp is sent as.
    pub fn to_octets(&self) -> [u8; 7] {
        let quarters = self.offset_quarters.unsigned_abs().min(79);
        let sign = if self.offset_quarters < 0 { 0x08 } else { 0 };
        [
            to_bcd((self.year % 100) as u8),
            to_bcd(self.month),
            to_bcd(self.day),
            to_bcd(self.hour),
            to_bcd(self.minute),
            to_bcd(self.second),
            ((quarters % 10) << 4) | (quarters / 10) | sign,
        ]
    }

    /// The UTC offset in minutes.
    pub fn offset_minutes(&self) -> i32 {
        i32::from(self.offset_quarters) * 15
    }

    /// RFC 3339, e.g. `2021-03-04T12:34:56+01:00`; a zero offset is written `+00:00` (the
    /// network said "UTC+0", which is information `Z` would not keep).
    pub fn to_rfc3339(&self) -> String {
        let minutes = self.offset_minutes();
        let sign = if minutes < 0 { '-' } else { '+' };
        let minutes = minutes.abs();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            sign,
            minutes / 60,
            minutes % 60
        )
    }

    /// Seconds since 1970-01-01T00:00:00Z (negative before), for storing in UTC.
    pub fn unix_seconds(&self) -> i64 {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset_minutes()) * 60
    }

    /// The wall-clock time at `unix_seconds` in a zone `offset_quarters` from UTC, for a
    /// virtual service centre stamping messages with its own clock. `Err` when the year falls
    /// outside 1969..=2068 or the offset outside -79..=79.
    pub fn from_unix_seconds(
        unix_seconds: i64,
        offset_quarters: i8,
    ) -> Result<Self, TimestampError> {
        let local = unix_seconds.saturating_add(i64::from(offset_quarters) * 15 * 60);
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let year = u16::try_from(year).map_err(|_| TimestampError::OutOfRange {
            part: "year",
            value: i32::try_from(year).unwrap_or(i32::MIN),
            min: i32::from(FIRST_YEAR),
            max: i32::from(LAST_YEAR),
        })?;
        // secs < 86 400, so each part fits in a u8.
        Self::new(
            year,
            month,
            day,
            (secs / 3600) as u8,
            (secs / 60 % 60) as u8,
            (secs % 60) as u8,
            offset_quarters,
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn check(part: &'static str, value: i32, min: i32, max: i32) -> Result<(), TimestampError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(TimestampError::OutOfRange {
            part,
            value,
            min,
            max,
        })
    }
}

/// A swapped-BCD octet: low nibble is the tens digit.
fn bcd(part: &'static str, octet: u8) -> Result<u8, TimestampError> {
    let tens = octet & 0x0F;
    let units = octet >> 4;
    if tens > 9 || units > 9 {
        return Err(TimestampError::NotDecimal { part, octet });
    }
    Ok(tens * 10 + units)
}

/// The swapped-BCD octet for 0..=99.
fn to_bcd(value: u8) -> u8 {
    let value = value % 100;
    ((value % 10) << 4) | (value / 10)
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(octets: [u8; 7]) -> Result<Timestamp, TimestampError> {
        Timestamp::from_octets(octets)
    }

    #[test]
    fn the_classic_deliver_time_stamp_is_1999_with_utc_plus_two() {
        // 99 30 92 51 61 95 80 from the "hellohello" PDU.
        let t = ts([0x99, 0x30, 0x92, 0x51, 0x61, 0x95, 0x80]);
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Ok("1999-03-29T15:16:59+02:00")
        );
    }

    #[test]
    fn negative_and_quarter_hour_zones_are_exact() {
        // +05:45 = 23 quarters: tens 2, units 3 -> 0x32.
        let nepal = ts([0x12, 0x30, 0x40, 0x21, 0x43, 0x65, 0x32]);
        assert_eq!(
            nepal.map(|t| t.to_rfc3339()).as_deref(),
            Ok("2021-03-04T12:34:56+05:45")
        );
        // -03:30 = 14 quarters, sign bit: tens 1 | 8 = 9, units 4 -> 0x49.
        let newfoundland = ts([0x12, 0x30, 0x40, 0x21, 0x43, 0x65, 0x49]);
        assert_eq!(
            newfoundland.map(|t| t.to_rfc3339()).as_deref(),
            Ok("2021-03-04T12:34:56-03:30")
        );
        assert_eq!(newfoundland.map(|t| t.to_octets()[6]), Ok(0x49));
    }

    #[test]
    fn octets_round_trip() {
        let octets = [0x12, 0x30, 0x40, 0x21, 0x43, 0x65, 0x8A];
        assert_eq!(ts(octets).map(|t| t.to_octets()), Ok(octets));
    }

    #[test]
    fn month_thirteen_is_out_of_range() {
        assert_eq!(
            ts([0x12, 0x31, 0x40, 0x21, 0x43, 0x65, 0x00]),
            Err(TimestampError::OutOfRange {
                part: "month",
                value: 13,
                min: 1,
                max: 12
            })
        );
    }

    #[test]
    fn days_are_checked_against_their_month() {
        // 2021-02-29 does not exist; 2020-02-29 does.
        assert!(ts([0x12, 0x20, 0x92, 0x00, 0x00, 0x00, 0x00]).is_err());
        assert!(ts([0x02, 0x20, 0x92, 0x00, 0x00, 0x00, 0x00]).is_ok());
        assert!(ts([0x12, 0x40, 0x13, 0x00, 0x00, 0x00, 0x00]).is_err());
        assert!(ts([0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00]).is_err());
    }

    #[test]
    fn hex_digits_in_a_time_stamp_are_not_decimal() {
        assert_eq!(
            ts([0x12, 0x30, 0x40, 0x2A, 0x43, 0x65, 0x00]),
            Err(TimestampError::NotDecimal {
                part: "hour",
                octet: 0x2A
            })
        );
        assert!(ts([0x12, 0x30, 0x40, 0x21, 0x43, 0x65, 0xA0]).is_err());
        assert!(ts([0x12, 0x30, 0x40, 0x21, 0x43, 0x66, 0x00]).is_err());
    }

    #[test]
    fn unix_seconds_convert_both_ways() {
        let t = ts([0x12, 0x30, 0x40, 0x21, 0x43, 0x65, 0x40]);
        // 2021-03-04T12:34:56+01:00 = 11:34:56Z.
        assert_eq!(t.map(|t| t.unix_seconds()), Ok(1_614_857_696));
        let back = Timestamp::from_unix_seconds(1_614_857_696, 4);
        assert_eq!(back, t);
        assert_eq!(
            Timestamp::from_unix_seconds(0, 0)
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Ok("1970-01-01T00:00:00+00:00")
        );
        assert!(Timestamp::from_unix_seconds(4_000_000_000_000, 0).is_err());
        assert!(Timestamp::from_unix_seconds(-4_000_000_000_000, 0).is_err());
    }
}
