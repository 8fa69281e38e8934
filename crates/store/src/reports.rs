//! Status report matching and classification, shared by both backends.
//!
//! Matching (DESIGN.md "Sending"): same modem, same TP-MR, same recipient, and the most recent
//! part that still waits for a report. TP-MR is one octet and wraps at 256, so an old part that
//! never got its report may share the reference with a new one; preferring the newest waiting
//! part makes the wrap harmless. The recipient is compared in normalised form
//! ([`normalize_number`]); when no waiting part has exactly that form (a network reporting
//! `+49171…` for a message queued as `0171…`), the last nine digits decide. Each backend reads
//! the waiting parts (newest first) with its own SQL and locking; the choice is made here.

use std::fmt::Display;

use crate::model::{ReportCategory, StatusReportIn};
use crate::types::normalize_number;

/// Digits compared when the recipient's two forms differ (national vs international).
const SUFFIX_DIGITS: usize = 9;

fn digits_suffix(number: &str) -> Option<String> {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= SUFFIX_DIGITS).then(|| digits[digits.len() - SUFFIX_DIGITS..].iter().collect())
}

/// The part a report on `recipient` is about, among the waiting parts `candidates` (newest
/// first, each with its recipient key last): an exact key first, then the last nine digits.
pub(crate) fn matching<'a, T>(
    candidates: &'a [(i64, i64, T, Option<String>)],
    recipient: &str,
) -> Option<&'a (i64, i64, T, Option<String>)> {
    let key = normalize_number(recipient);
    let exact = candidates
        .iter()
        .find(|c| c.3.as_deref() == Some(key.as_str()));
    exact.or_else(|| {
        let suffix = digits_suffix(&key)?;
        candidates
            .iter()
            .find(|c| c.3.as_deref().and_then(digits_suffix).as_deref() == Some(suffix.as_str()))
    })
}

/// What a report does to part `seq`: its new state, the reason stored when it failed, and the
/// description logged with the event.
pub(crate) fn applied(
    report: &StatusReportIn,
    seq: impl Display,
) -> (&'static str, Option<String>, String) {
    let description = report
        .description
        .clone()
        .unwrap_or_else(|| report.category.as_str().to_owned());
    let (state, reason) = match report.category {
        // Still waiting: the SC keeps trying and will report again.
        ReportCategory::Pending => ("sent", None),
        ReportCategory::Delivered => ("delivered", None),
        ReportCategory::Failed => (
            "failed",
            Some(format!(
                "not delivered: {description} (status report TP-ST 0x{:02X}, part {seq})",
                report.status_code
            )),
        ),
    };
    (state, reason, description)
}
