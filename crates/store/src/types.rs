//! The store's vocabulary: ids, [`Status`] and [`Direction`] (spelled as in SQL), [`SqlTime`]
//! and recipient normalisation.
//!
//! Why: the `messages` table is shared with external writers, so the spellings here are the
//! SQL contract's (DESIGN.md "Status values"), and times are kept exactly as stored and parsed
//! on demand: a row written by hand with an odd time must still list, never fail a query.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

/// A `messages.id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A modem's configured id (`modems[].id` in the config), as stored in `modem_id` columns.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ModemId(pub String);

impl ModemId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ModemId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for ModemId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Which way a message travels: `inbound` or `outbound`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received from the network.
    Inbound,
    /// To be sent, or sent.
    Outbound,
}

impl Direction {
    /// The SQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A spelling that is not a [`Status`] or [`Direction`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what} (expected one of: {expected})")]
pub struct UnknownSpelling {
    /// What was parsed.
    pub value: String,
    /// `status` or `direction`.
    pub what: &'static str,
    /// The valid spellings.
    pub expected: &'static str,
}

impl FromStr for Direction {
    type Err = UnknownSpelling;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inbound" => Ok(Self::Inbound),
            "outbound" => Ok(Self::Outbound),
            _ => Err(UnknownSpelling {
                value: s.to_owned(),
                what: "direction",
                expected: "inbound, outbound",
            }),
        }
    }
}

/// A message's status, spelled as in `messages.status` (DESIGN.md "Status values").
///
/// ```text
/// inbound:  unread ──► read
/// outbound: queued ──► sending ──► sent ──► delivered
///             │  ▲        │ │        └────► failed
///             │  └─retry──┘ ├─► failed (permanent error, attempts exhausted)
///             │             └─► unknown (crash / timeout after the PDU was written)
///             ├─► duplicate (same recipient and text inside the window)
///             ├─► expired (still queued past `expires_at` or the default TTL)
///             ├─► blocked (the recipient opted out; not for transactional rows)
///             └─► cancelled
/// requeue: unknown | failed | cancelled | duplicate | expired | blocked ──► queued
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Inbound, not yet processed by anyone.
    Unread,
    /// Inbound, processed.
    Read,
    /// Outbound, waiting for the dispatcher.
    Queued,
    /// Outbound, claimed by the dispatcher; committed before AT+CMGS (promise 3).
    Sending,
    /// Outbound, every part accepted by the network.
    Sent,
    /// Outbound, every part reported delivered.
    Delivered,
    /// Outbound, rejected for good; `reason` says why.
    Failed,
    /// Outbound, not sent: same recipient and text as an earlier row inside the window.
    Duplicate,
    /// Outbound, the send was interrupted after the PDU may have left: not resent by itself.
    Unknown,
    /// Outbound, cancelled before it was sent.
    Cancelled,
    /// Outbound, not sent: still queued after its `expires_at` (or the default TTL), so it
    /// would have gone out late.
    Expired,
    /// Outbound, not sent: the recipient is on the block list (answered STOP) and the row is
    /// not transactional.
    Blocked,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 12] = [
        Self::Unread,
        Self::Read,
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Duplicate,
        Self::Unknown,
        Self::Cancelled,
        Self::Expired,
        Self::Blocked,
    ];

    /// The SQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unread => "unread",
            Self::Read => "read",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Duplicate => "duplicate",
            Self::Unknown => "unknown",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Blocked => "blocked",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownSpelling;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownSpelling {
                value: s.to_owned(),
                what: "status",
                expected: "unread, read, queued, sending, sent, delivered, failed, duplicate, \
                           unknown, cancelled, expired, blocked",
            })
    }
}

/// A time as stored in a text column: UTC `YYYY-MM-DD HH:MM:SS` when Conductor or
/// `datetime('now')` wrote it, anything when someone else did.
///
/// Kept as text so that a hand-written oddity still lists; [`SqlTime::timestamp`] parses it.
/// Serialises as RFC 3339 when it parses (what the CLI's JSON and the API promise), else as the
/// stored text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SqlTime(pub String);

impl SqlTime {
    /// Formats `t` the way the SQL contract stores times (UTC, second precision).
    pub fn from_timestamp(t: Timestamp) -> Self {
        Self(sql_time(t))
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instant, if the text is a time SQLite's date functions would also read: `YYYY-MM-DD
    /// HH:MM:SS[.fff]` (UTC) or RFC 3339 with an offset.
    pub fn timestamp(&self) -> Option<Timestamp> {
        parse_sql_time(&self.0)
    }
}

impl fmt::Display for SqlTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SqlTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.timestamp() {
            Some(t) => serializer.collect_str(&t),
            None => serializer.serialize_str(&self.0),
        }
    }
}

/// `t` in the SQL contract's form: UTC `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn sql_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// Reads a stored time: the contract's UTC form (with or without fractional seconds, with a
/// space or a `T`), or RFC 3339 with an offset.
pub(crate) fn parse_sql_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let civil = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s)
        .or_else(|_| jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", s))
        .or_else(|_| s.parse::<jiff::civil::DateTime>())
        .ok()?;
    jiff::tz::Offset::UTC.to_timestamp(civil).ok()
}

/// The recipient/sender in the one form that needs no configuration to derive: spaces, dashes,
/// dots and parentheses removed, and a leading `00` read as `+` (the international prefix).
///
/// National numbers (`0171…`) stay as they are: turning them into `+49171…` needs the home
/// country, which the store does not know, so `0171 234` and `+49171 234` are different
/// recipients to duplicate detection. The generated column `messages.number_key` computes the
/// same thing in SQL, so rows from every writer are comparable; keep the two in step.
pub fn normalize_number(number: &str) -> String {
    let stripped: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    match stripped.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => stripped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_spellings_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert!("Queued".parse::<Status>().is_err());
    }

    #[test]
    fn numbers_lose_punctuation_and_a_leading_double_zero_becomes_plus() {
        assert_eq!(normalize_number("0049 171-234.56"), "+4917123456");
        assert_eq!(normalize_number("+49 (171) 23456"), "+4917123456");
        assert_eq!(normalize_number("0171 23456"), "017123456");
    }

    #[test]
    fn stored_times_parse_in_both_forms() {
        let t = parse_sql_time("2024-03-01 12:34:56");
        assert_eq!(t.map(|t| t.as_second()), Some(1_709_296_496));
        assert_eq!(
            parse_sql_time("2024-03-01T14:34:56+02:00").map(|t| t.as_second()),
            Some(1_709_296_496)
        );
        assert_eq!(parse_sql_time("yesterday"), None);
        let t = Timestamp::from_second(1_709_296_496).ok();
        assert_eq!(t.map(sql_time).as_deref(), Some("2024-03-01 12:34:56"));
    }
}
