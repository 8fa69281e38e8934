//! Incoming calls: each call is logged once as a `call` event with the caller's number,
//! optionally rejected (`AT+CHUP`, else `ATH`) so the line is free for SMS, and optionally
//! answered with an SMS.
//!
//! Why here, in the modem's worker: the hang-up must go through the same modem handle as
//! sends (commands serialise), and the auto-reply is an ordinary queued row, so it obeys
//! every sending rule (limits, block list, quiet hours). A caller who redials gets at most
//! one reply per `auto_reply_interval` (in memory: a restart forgets it), and a withheld
//! number gets none (there is nobody to send to).

use std::collections::HashMap;
use std::time::Duration;

use conductor_modem::{CallEvent, CallTracker, Urc};
use conductor_store::NewOutbound;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tracing::{info, warn};

use crate::worker::ModemWorker;

/// What a modem does with calls (config `modems[].calls`).
#[derive(Clone, Debug, PartialEq)]
pub struct CallSettings {
    /// Hang up ringing calls.
    pub reject: bool,
    /// Send this text to the caller.
    pub auto_reply: Option<String>,
    /// At most one auto-reply per caller in this long. Default 1 h.
    pub auto_reply_interval: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            reject: false,
            auto_reply: None,
            auto_reply_interval: Duration::from_secs(3600),
        }
    }
}

/// The worker's call state.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    tracker: CallTracker,
    /// When each caller last got an auto-reply, on the gateway's clock.
    replied: HashMap<String, Timestamp>,
}

impl Calls {
    /// When the call in progress should be checked for having ended.
    pub(crate) fn deadline(&self) -> Option<tokio::time::Instant> {
        self.tracker
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
    }
}

/// RING, `+CLIP` and `NO CARRIER`: what the call tracker reads.
fn is_call_urc(urc: &Urc) -> bool {
    matches!(urc, Urc::Ring | Urc::CallerId { .. } | Urc::NoCarrier)
}

fn now_std() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl ModemWorker {
    /// Takes the call URCs (RING, `+CLIP`, `NO CARRIER`); `false` for any other URC.
    pub(crate) async fn on_call_urc(&mut self, urc: &Urc) -> bool {
        if !is_call_urc(urc) {
            return false;
        }
        let events = self.calls.tracker.handle_urc(now_std(), urc);
        self.on_call_events(events).await;
        true
    }

    /// The call's RINGs may have stopped.
    pub(crate) async fn call_timeout(&mut self) {
        let events = self.calls.tracker.handle_timeout(now_std());
        self.on_call_events(events).await;
    }

    async fn on_call_events(&mut self, events: Vec<CallEvent>) {
        for event in events {
            if let CallEvent::Incoming {
                number,
                type_of_address,
            } = event
            {
                self.incoming_call(number, type_of_address).await;
            }
        }
    }

    async fn incoming_call(&mut self, number: Option<String>, type_of_address: Option<u8>) {
        let settings = self.calls_settings.clone();
        let mut hang_up = None;
        if settings.reject {
            match self.handle.hang_up().await {
                Ok(how) => {
                    hang_up = Some(how.line());
                    self.calls.tracker.hung_up();
                    self.drop_rings_of_the_rejected_call().await;
                }
                Err(error) => warn!(%error, "could not reject an incoming call"),
            }
        }
        let auto_reply = match (&settings.auto_reply, &number) {
            (None, _) => json!(null),
            (Some(_), None) => json!("skipped: number withheld"),
            (Some(text), Some(number)) => self.auto_reply(number, text, &settings).await,
        };
        info!(
            caller = number.as_deref().unwrap_or("withheld"),
            rejected = hang_up.is_some(),
            "incoming call"
        );
        self.event(
            "call",
            json!({
                "number": number,
                "type_of_address": type_of_address,
                "rejected": hang_up.is_some(),
                "hang_up": hang_up,
                "auto_reply": auto_reply,
            }),
        )
        .await;
    }

    /// Drops the RING, `+CLIP` and `NO CARRIER` lines queued while the hang-up ran.
    ///
    /// Why: the modem prints URCs in order, and the modem task queues each one as it reads
    /// it, so whatever the modem printed before it took the hang-up (a call rings every few
    /// seconds, repeatedly) is in the queue by the time its `OK` returns. Those lines belong
    /// to the call just rejected; fed to the tracker, which has already closed that call,
    /// they would open a second one: a second event, a second hang-up. Other URCs (a `+CMTI`)
    /// are handled as usual, in their order.
    async fn drop_rings_of_the_rejected_call(&mut self) {
        let mut others = Vec::new();
        while let Ok(urc) = self.urcs.try_recv() {
            if !is_call_urc(&urc) {
                others.push(urc);
            }
        }
        for urc in others {
            self.on_urc(urc).await;
        }
    }

    /// Queues the reply unless this caller had one within the interval; says what happened.
    async fn auto_reply(
        &mut self,
        number: &str,
        text: &str,
        settings: &CallSettings,
    ) -> serde_json::Value {
        let now = self.now();
        let interval =
            SignedDuration::try_from(settings.auto_reply_interval).unwrap_or(SignedDuration::MAX);
        if let Some(last) = self.calls.replied.get(number)
            && now.duration_since(*last) < interval
        {
            return json!("skipped: replied within the interval");
        }
        let message = NewOutbound {
            to: number.to_owned(),
            text: text.to_owned(),
            modem_id: Some(self.id.clone()),
            source: "auto_reply".to_owned(),
            allow_duplicate: true,
            status_report: None,
            send_at: None,
            priority: 0,
            expires_at: None,
            transactional: false,
        };
        match self.ctx.store.queue_outbound(message, now).await {
            Ok(id) => {
                self.calls.replied.insert(number.to_owned(), now);
                self.ctx.dispatch.notify_one();
                json!({ "message_id": id })
            }
            Err(error) => {
                warn!(%error, "could not queue the auto-reply to a caller");
                json!(format!("failed: {error}"))
            }
        }
    }
}
