//! In-memory counters of what the modems do that no row records: `+CMS ERROR` / `+CME ERROR`
//! answers by code, and reconnects. `/metrics` renders them (issue 7, "CMS/CME errors by
//! code", "reconnects") through [`crate::GatewayHandle::counters`].
//!
//! Why memory and not the database: they are rates for Prometheus, which copes with a counter
//! that restarts at zero with the daemon; writing a row per modem error would add a write
//! transaction to every failed send for nothing an operator reads back. What a refusal meant
//! for a message is on the message's row already (promise 5).
//!
//! Fed by the modem worker: the outbound code on every failed send, and the state watcher on
//! every state the modem task publishes. A reconnect is counted from the driver's own outage
//! counter ([`conductor_modem::ModemState::outages`], one per lost link or modem restart), when
//! the modem is ready again: a watch channel may skip the short states in between, the counter
//! does not.

use std::collections::BTreeMap;
use std::sync::Mutex;

use conductor_modem::{FinalResult, ModemError, SendError};
use conductor_store::ModemId;

/// Which family an error code belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// `+CMS ERROR` (3GPP TS 27.005 §3.2.5: the message service).
    Cms,
    /// `+CME ERROR` (3GPP TS 27.007 §9.2: the equipment, the SIM, the network).
    Cme,
}

impl ErrorKind {
    /// `cms` or `cme`, the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cms => "cms",
            Self::Cme => "cme",
        }
    }
}

/// How often one modem answered with one error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorCount {
    /// The modem's configured id.
    pub modem: String,
    /// CMS or CME.
    pub kind: ErrorKind,
    /// The numeric code, or `text` for a verbose answer that maps to no code.
    pub code: String,
    /// Answers since the gateway started.
    pub count: u64,
}

/// How often one modem came back after losing its link (or restarting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectCount {
    /// The modem's configured id.
    pub modem: String,
    /// Reconnects since the gateway started.
    pub count: u64,
}

/// A copy of every counter, sorted by modem (then kind and code).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// CMS/CME errors.
    pub errors: Vec<ErrorCount>,
    /// Reconnects, one entry for every modem seen ready at least once (zero included, so a
    /// rate can be computed from the first scrape).
    pub reconnects: Vec<ReconnectCount>,
}

/// The gateway's counters; shared by every worker and the handle.
#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    errors: BTreeMap<(String, ErrorKind, String), u64>,
    reconnects: BTreeMap<String, u64>,
    /// The driver's outage count when the modem was last seen ready.
    outages_seen: BTreeMap<String, u64>,
}

impl Counters {
    /// Counts the modem's final result if it is a CMS or CME error; anything else is ignored.
    pub(crate) fn record_result(&self, modem: &ModemId, result: &FinalResult) {
        let (kind, code) = match result {
            FinalResult::CmsError(code) => (ErrorKind::Cms, code.0.to_string()),
            FinalResult::CmsErrorText(_) => (ErrorKind::Cms, "text".to_owned()),
            FinalResult::CmeError(code) => (ErrorKind::Cme, code.0.to_string()),
            FinalResult::CmeErrorText(_) => (ErrorKind::Cme, "text".to_owned()),
            _ => return,
        };
        if let Ok(mut inner) = self.inner.lock() {
            *inner
                .errors
                .entry((modem.0.clone(), kind, code))
                .or_insert(0) += 1;
        }
    }

    /// Counts the error code of a failed operation, if the modem answered with one.
    pub(crate) fn record_modem_error(&self, modem: &ModemId, error: &ModemError) {
        if let Some(result) = error.final_result() {
            self.record_result(modem, result);
        }
    }

    /// Counts the error code of a failed send, whichever side of the `> ` prompt it came from.
    pub(crate) fn record_send_error(&self, modem: &ModemId, error: &SendError) {
        match error {
            SendError::Rejected { result, .. } | SendError::Failed { result, .. } => {
                self.record_result(modem, result);
            }
            SendError::NotSent(error) => self.record_modem_error(modem, error),
            SendError::Ambiguous { .. } => {}
        }
    }

    /// Notes the state the modem task published: when the modem is ready, every outage the
    /// driver counted since it was last seen ready is a reconnect.
    pub(crate) fn record_state(&self, modem: &ModemId, ready: bool, outages: u64) {
        if !ready {
            return;
        }
        if let Ok(mut inner) = self.inner.lock() {
            let seen = inner.outages_seen.insert(modem.0.clone(), outages);
            let new = outages.saturating_sub(seen.unwrap_or(0));
            *inner.reconnects.entry(modem.0.clone()).or_insert(0) += new;
        }
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> CounterSnapshot {
        let Ok(inner) = self.inner.lock() else {
            return CounterSnapshot::default();
        };
        CounterSnapshot {
            errors: inner
                .errors
                .iter()
                .map(|((modem, kind, code), &count)| ErrorCount {
                    modem: modem.clone(),
                    kind: *kind,
                    code: code.clone(),
                    count,
                })
                .collect(),
            reconnects: inner
                .reconnects
                .iter()
                .map(|(modem, &count)| ReconnectCount {
                    modem: modem.clone(),
                    count,
                })
                .collect(),
        }
    }
}

/// Every reply of a modem operation passes through [`crate::worker::ModemWorker::counted`], so
/// `+CMS ERROR`/`+CME ERROR` answers to reads, lists, deletions and storage queries are counted
/// like those to sends.
impl crate::worker::ModemWorker {
    /// `result`, after counting its error code if the modem answered with one.
    pub(crate) fn counted<T>(&self, result: Result<T, ModemError>) -> Result<T, ModemError> {
        if let Err(error) = &result {
            self.ctx.counters.record_modem_error(&self.id, error);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use conductor_modem::CmsCode;

    use super::*;

    fn modem(id: &str) -> ModemId {
        ModemId(id.to_owned())
    }

    #[test]
    fn cms_and_cme_answers_are_counted_by_modem_and_code_and_other_results_are_not() {
        let counters = Counters::default();
        let rejected = SendError::Rejected {
            code: Some(CmsCode(42)),
            result: FinalResult::CmsError(CmsCode(42)),
            retryable: true,
        };
        counters.record_send_error(&modem("a"), &rejected);
        counters.record_send_error(&modem("a"), &rejected);
        counters.record_send_error(
            &modem("b"),
            &SendError::NotSent(ModemError::Command {
                command: "AT+CMGS=20".into(),
                result: FinalResult::CmeErrorText("SIM busy".into()),
            }),
        );
        counters.record_send_error(
            &modem("b"),
            &SendError::Ambiguous {
                reason: "timeout".into(),
            },
        );
        counters.record_result(&modem("b"), &FinalResult::Error);
        let errors = counters.snapshot().errors;
        assert_eq!(
            errors,
            vec![
                ErrorCount {
                    modem: "a".into(),
                    kind: ErrorKind::Cms,
                    code: "42".into(),
                    count: 2,
                },
                ErrorCount {
                    modem: "b".into(),
                    kind: ErrorKind::Cme,
                    code: "text".into(),
                    count: 1,
                },
            ]
        );
    }

    #[test]
    fn a_reconnect_is_counted_once_per_outage_when_the_modem_is_ready_again() {
        let counters = Counters::default();
        let a = modem("a");
        counters.record_state(&a, true, 0);
        assert_eq!(counters.snapshot().reconnects[0].count, 0, "first start");
        counters.record_state(&a, false, 1);
        assert_eq!(counters.snapshot().reconnects[0].count, 0, "still down");
        // Two outages while the watcher was not looking: ready → lost → ready → lost → ready.
        counters.record_state(&a, true, 2);
        counters.record_state(&a, true, 2);
        assert_eq!(
            counters.snapshot().reconnects,
            vec![ReconnectCount {
                modem: "a".into(),
                count: 2
            }]
        );
    }
}
