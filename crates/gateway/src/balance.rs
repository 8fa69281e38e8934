//! The scheduled balance check: a USSD code (`*100#`) sent every `every` on the gateway's
//! clock, its answer recorded as a `balance_checked` event with the amount read from it, so a
//! prepaid SIM running out of credit is noticed (the `credit_low` alert of `conductor-ops`)
//! before sends start failing. Also the daemon's way to run a USSD code for the API and the
//! CLI ([`GatewayHandle::ussd`]): the daemon owns the port.
//!
//! Why through the worker's modem handle: the handle queues the request behind the command
//! in flight, and the worker runs the check between its other operations, so a check never
//! interleaves with a send on that modem.

use std::time::Duration;

use conductor_modem::{ModemError, UssdReply};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tracing::{info, warn};

use crate::supervisor::GatewayHandle;
use crate::worker::ModemWorker;

/// A modem's balance check (config `modems[].balance`).
#[derive(Clone, Debug, PartialEq)]
pub struct BalanceCheck {
    /// The USSD code, e.g. `*100#`.
    pub code: String,
    /// How often. The first check runs once the modem is ready.
    pub every: Duration,
    /// An amount below this raises the `credit_low` alert; `None`: never.
    pub low_below: Option<f64>,
}

/// The first decimal number in a USSD answer: the amount of "Your balance is 12.34 EUR"
/// (12.34), "Solde: 3,20 €" (3.2, a decimal comma), "Balance -1.50" (-1.5, a minus sign
/// right before the digits). Thousands separators are not understood: "1,234.50" reads as
/// 1.234. Operators word their answers in every way; the first number is what a balance
/// answer leads with, and the raw text is recorded beside it for anything else.
pub fn parse_amount(text: &str) -> Option<f64> {
    let chars: Vec<char> = text.chars().collect();
    let start = chars.iter().position(char::is_ascii_digit)?;
    let mut number = String::new();
    if start > 0 && chars[start - 1] == '-' {
        number.push('-');
    }
    let mut i = start;
    let mut seen_separator = false;
    while let Some(&c) = chars.get(i) {
        if c.is_ascii_digit() {
            number.push(c);
        } else if matches!(c, '.' | ',')
            && !seen_separator
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
        {
            seen_separator = true;
            number.push('.');
        } else {
            break;
        }
        i += 1;
    }
    number.parse().ok()
}

/// Why the daemon could not run a USSD code.
#[derive(Debug, thiserror::Error)]
pub enum UssdRequestError {
    /// No such modem is served.
    #[error("no modem {0:?} is served by this daemon; `conductor status` lists the modems")]
    UnknownModem(String),
    /// The modem failed.
    #[error(transparent)]
    Modem(#[from] ModemError),
}

impl GatewayHandle {
    /// Runs a USSD code on `modem` through its driver task (between the commands of that
    /// modem, never inside a send), and returns the decoded answer.
    pub async fn ussd(&self, modem: &str, code: &str) -> Result<UssdReply, UssdRequestError> {
        let handle = self
            .modem_handle(modem)
            .ok_or_else(|| UssdRequestError::UnknownModem(modem.to_owned()))?;
        Ok(handle.ussd(code).await?)
    }
}

impl ModemWorker {
    /// Runs the balance check when it is due.
    pub(crate) async fn balance_if_due(&mut self) {
        let Some(check) = self.balance_settings.clone() else {
            return;
        };
        if !self.is_ready() {
            return;
        }
        let now = self.now();
        let every = SignedDuration::try_from(check.every).unwrap_or(SignedDuration::MAX);
        if self
            .last_balance_check
            .is_some_and(|last: Timestamp| now.duration_since(last) < every)
        {
            return;
        }
        self.last_balance_check = Some(now);
        match self.handle.ussd(&check.code).await {
            Ok(reply) => {
                let amount = parse_amount(&reply.text);
                info!(code = %check.code, text = %reply.text, ?amount, "balance checked");
                self.event(
                    "balance_checked",
                    json!({
                        "code": check.code,
                        "status": reply.status,
                        "text": reply.text,
                        "amount": amount,
                        "low_below": check.low_below,
                    }),
                )
                .await;
            }
            Err(error) => {
                warn!(code = %check.code, %error, "balance check failed");
                self.event(
                    "balance_check_failed",
                    json!({ "code": check.code, "error": error.to_string() }),
                )
                .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_amount;

    #[test]
    fn the_first_decimal_number_is_the_amount() {
        assert_eq!(parse_amount("Your balance is 12.34 EUR"), Some(12.34));
        assert_eq!(parse_amount("Solde: 3,20 € valable 30 j"), Some(3.2));
        assert_eq!(parse_amount("Balance -1.50 USD"), Some(-1.5));
        assert_eq!(parse_amount("You have 5 EUR. Top up at 1.2."), Some(5.0));
        assert_eq!(parse_amount("Credit: 7. Thanks"), Some(7.0));
        assert_eq!(parse_amount("no number here"), None);
    }
}
