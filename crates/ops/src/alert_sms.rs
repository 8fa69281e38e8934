//! Admin alerts as SMS: each alert episode raised (and, if wanted, cleared) is texted to the
//! configured admin numbers, through a modem other than the one in trouble, rate-limited.
//!
//! Why this shape:
//! - It follows the `events` table (`alert_raised`/`alert_cleared`, written by the alert
//!   evaluator in the same transaction as the episode) with its own persistent cursor, like
//!   the webhook outbox and the event scripts. So the evaluator stays unaware of SMS, every
//!   alert kind (also ones added later, such as `credit_low`) is covered, and a restart neither
//!   resends nor loses an alert.
//! - **Another modem.** An alert that names a modem (`modem_down:sim1`) goes out through a
//!   different modem whose status row says `ready`; with none, the dispatcher picks any (the
//!   troubled modem may still send). `modem` in the settings pins one.
//! - **No SMS storm.** At most one SMS per admin per `min_interval`. Alerts inside the interval
//!   are collected and summarised in the next SMS, which goes out when the interval ends even
//!   if no new alert comes.
//! - **Not swallowed.** Rows are queued with `allow_duplicate` (the same alert text twice is
//!   meant), `transactional` (sent to a number on the block list and in quiet hours) and a high
//!   priority (ahead of bulk sends), with source `alert`.
//!
//! Each SMS queued is recorded as an `alert_sms` event (admin, message id, alerts it carries),
//! which is also where the rate limit is read back from after a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use conductor_gateway::Clock;
use conductor_store::{
    Event, ModemId, ModemState, NewEvent, NewOutbound, Store, StoreError, normalize_number,
};
use jiff::Timestamp;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The cursor's name in `event_cursors`.
const CURSOR: &str = "alert_sms";
/// Priority of alert rows: ahead of ordinary sends (0) and of one-time codes (10).
pub const PRIORITY: i64 = 100;
/// The longest alert line; the SMS stays within a few parts.
const LINE_LIMIT: usize = 150;

/// `alerts.sms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSmsSettings {
    /// Admin numbers.
    pub to: Vec<String>,
    /// At most one SMS per admin per this long. Default 1 h.
    pub min_interval: Duration,
    /// Always send through this modem; None picks one that is not in trouble.
    pub modem: Option<ModemId>,
    /// Also text when an episode is cleared. Default true.
    pub on_clear: bool,
    /// How often the events table is looked at. Default 2 s.
    pub poll: Duration,
}

impl Default for AlertSmsSettings {
    fn default() -> Self {
        Self {
            to: Vec::new(),
            min_interval: Duration::from_secs(3600),
            modem: None,
            on_clear: true,
            poll: Duration::from_secs(2),
        }
    }
}

/// Per admin: when the last SMS was queued, and what waits for the next.
#[derive(Debug, Default)]
struct Admin {
    last_sent: Option<Timestamp>,
    pending: Vec<Pending>,
}

#[derive(Clone, Debug)]
struct Pending {
    line: String,
    modem: Option<ModemId>,
}

/// The task; [`AlertSms::spawn`] starts it.
pub struct AlertSms {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: AlertSmsSettings,
    admins: HashMap<String, Admin>,
    cursor: Option<i64>,
}

impl std::fmt::Debug for AlertSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSms")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AlertSms {
    /// Alert SMS to `settings.to` from `store`'s events.
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: AlertSmsSettings) -> Self {
        Self {
            store,
            clock,
            settings,
            admins: HashMap::new(),
            cursor: None,
        }
    }

    /// Runs until `shutdown`.
    pub fn spawn(mut self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            info!(admins = self.settings.to.len(), "alert SMS started");
            loop {
                if let Err(error) = self.step().await {
                    warn!(%error, "alert SMS: could not read or queue; trying again");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        })
    }

    /// Reads new alert events, then queues what is due.
    pub async fn step(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut cursor = match self.cursor {
            Some(cursor) => cursor,
            None => self.start(now).await?,
        };
        loop {
            let events = self.store.events_since(cursor, 200).await?;
            let Some(last) = events.last().map(|e| e.id) else {
                break;
            };
            for event in &events {
                if let Some(pending) = self.line(event) {
                    for admin in &self.settings.to {
                        self.admins
                            .entry(admin.clone())
                            .or_default()
                            .pending
                            .push(pending.clone());
                    }
                }
            }
            // Pending lines are in memory only between here and the sends below: the
            // cursor moves after them, so a crash in between re-reads these events.
            self.flush(now).await?;
            cursor = last;
            self.store
                .set_event_cursor(CURSOR.into(), cursor, now)
                .await?;
            self.cursor = Some(cursor);
        }
        self.flush(now).await
    }

    /// The first step: the cursor, and the rate limit from the last `alert_sms` events.
    async fn start(&mut self, now: Timestamp) -> Result<i64, StoreError> {
        let cursor = match self.store.event_cursor(CURSOR.into()).await? {
            Some(cursor) => cursor,
            None => {
                let last = self.store.last_event_id().await?;
                self.store
                    .set_event_cursor(CURSOR.into(), last, now)
                    .await?;
                last
            }
        };
        if let Some(event) = self
            .store
            .latest_event(vec!["alert_sms".to_owned()])
            .await?
        {
            let at = event.at.timestamp();
            for admin in &self.settings.to {
                self.admins.entry(admin.clone()).or_default().last_sent = at;
            }
        }
        self.cursor = Some(cursor);
        Ok(cursor)
    }

    fn line(&self, event: &Event) -> Option<Pending> {
        let detail = event.detail.as_ref()?;
        let word = match event.kind.as_str() {
            "alert_raised" => "ALERT",
            "alert_cleared" if self.settings.on_clear => "CLEARED",
            _ => return None,
        };
        let key = detail["key"].as_str().unwrap_or("alert");
        let message = detail["message"].as_str().unwrap_or_default();
        let mut line = format!("{word} {key}: {message}");
        if line.chars().count() > LINE_LIMIT {
            line = line.chars().take(LINE_LIMIT - 1).collect::<String>() + "…";
        }
        Some(Pending {
            line,
            modem: event.modem_id.clone(),
        })
    }

    /// Queues one SMS to each admin whose interval has passed and who has something pending.
    async fn flush(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let interval = self.settings.min_interval;
        let due: Vec<String> = self
            .admins
            .iter()
            .filter(|(_, a)| !a.pending.is_empty())
            .filter(|(_, a)| {
                a.last_sent.is_none_or(|last| {
                    Duration::try_from(now.duration_since(last)).is_ok_and(|d| d >= interval)
                })
            })
            .map(|(n, _)| n.clone())
            .collect();
        for number in due {
            let Some(admin) = self.admins.get_mut(&number) else {
                continue;
            };
            let pending = std::mem::take(&mut admin.pending);
            let text = compose(&pending);
            let troubled = pending.iter().find_map(|p| p.modem.clone());
            let modem = match &self.settings.modem {
                Some(modem) => Some(modem.clone()),
                None => healthy_other(&self.store, troubled.as_ref()).await?,
            };
            let id = self
                .store
                .queue_outbound(
                    NewOutbound {
                        to: number.clone(),
                        text,
                        modem_id: modem.clone(),
                        source: "alert".into(),
                        allow_duplicate: true,
                        status_report: None,
                        send_at: None,
                        priority: PRIORITY,
                        expires_at: None,
                        transactional: true,
                    },
                    now,
                )
                .await?;
            if let Some(admin) = self.admins.get_mut(&number) {
                admin.last_sent = Some(now);
            }
            info!(to = %number, message_id = id.0, alerts = pending.len(),
                  modem = modem.as_ref().map(ModemId::as_str), "alert SMS queued");
            self.store
                .append_event(NewEvent {
                    at: now,
                    kind: "alert_sms".into(),
                    message_id: Some(id),
                    modem_id: modem,
                    detail: Some(json!({
                        "to": normalize_number(&number),
                        "alerts": pending.len(),
                        "lines": pending.iter().map(|p| p.line.clone()).collect::<Vec<_>>(),
                    })),
                })
                .await?;
        }
        Ok(())
    }
}

/// The SMS text: the first alert in full, then how many more and their first words.
fn compose(pending: &[Pending]) -> String {
    let mut text = String::from("Conductor: ");
    match pending {
        [] => {}
        [one] => text.push_str(&one.line),
        [first, rest @ ..] => {
            text.push_str(&first.line);
            text.push_str(&format!(
                "\n+{} more since the last SMS (held back by alerts.sms.min_interval):",
                rest.len()
            ));
            for p in rest.iter().take(5) {
                let head: String = p.line.split(':').next().unwrap_or_default().into();
                text.push_str(&format!("\n- {head}"));
            }
            if rest.len() > 5 {
                text.push_str("\n- ... (see `conductor health` / the event log)");
            }
        }
    }
    text
}

/// A ready modem other than `troubled`, by its status row; None lets the dispatcher choose.
async fn healthy_other(
    store: &Store,
    troubled: Option<&ModemId>,
) -> Result<Option<ModemId>, StoreError> {
    let Some(troubled) = troubled else {
        return Ok(None);
    };
    Ok(store
        .modem_statuses()
        .await?
        .into_iter()
        .find(|s| s.state == ModemState::Ready && &s.modem_id != troubled)
        .map(|s| s.modem_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_gateway::ManualClock;
    use conductor_store::{NewAlert, StoreOptions};

    async fn rig(interval: Duration) -> (tempfile::TempDir, Store, Arc<ManualClock>, AlertSms) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_sqlite(dir.path().join("a.db"), StoreOptions::default())
            .await
            .expect("open");
        let clock = Arc::new(ManualClock::new());
        let sms = AlertSms::new(
            store.clone(),
            clock.clone(),
            AlertSmsSettings {
                to: vec!["+4915100000001".into()],
                min_interval: interval,
                ..AlertSmsSettings::default()
            },
        );
        (dir, store, clock, sms)
    }

    async fn raise(store: &Store, clock: &ManualClock, key: &str) {
        store
            .raise_alert(NewAlert {
                key: key.into(),
                kind: "disk_space".into(),
                modem_id: None,
                message: format!("{key} is wrong"),
                detail: None,
                at: clock.now(),
            })
            .await
            .expect("raise");
    }

    async fn alert_rows(store: &Store) -> Vec<String> {
        store
            .list(conductor_store::ListFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_iter()
            .filter(|m| m.source == "alert")
            .map(|m| m.content)
            .collect()
    }

    #[tokio::test]
    async fn one_sms_per_interval_and_the_next_one_summarises_what_was_held_back() {
        let (_dir, store, clock, mut sms) = rig(Duration::from_secs(3600)).await;
        sms.step().await.expect("start");
        raise(&store, &clock, "a").await;
        sms.step().await.expect("step");
        assert_eq!(alert_rows(&store).await.len(), 1);
        raise(&store, &clock, "b").await;
        raise(&store, &clock, "c").await;
        clock.advance(Duration::from_secs(600));
        sms.step().await.expect("step");
        assert_eq!(
            alert_rows(&store).await.len(),
            1,
            "inside the interval: nothing"
        );
        clock.advance(Duration::from_secs(3000));
        sms.step().await.expect("step");
        let rows = alert_rows(&store).await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows.iter()
                .any(|r| r.contains("ALERT b") && r.contains("+1 more")),
            "{rows:?}"
        );
    }

    #[tokio::test]
    async fn a_clear_inside_the_interval_waits_and_leads_the_next_sms_with_the_rest_summarised() {
        let (_dir, store, clock, mut sms) = rig(Duration::from_secs(3600)).await;
        sms.step().await.expect("start");
        raise(&store, &clock, "a").await;
        sms.step().await.expect("step");
        assert_eq!(alert_rows(&store).await.len(), 1);
        clock.advance(Duration::from_secs(60));
        store
            .clear_alert("a".into(), "fixed".into(), clock.now())
            .await
            .expect("clear");
        raise(&store, &clock, "b").await;
        sms.step().await.expect("step");
        assert_eq!(alert_rows(&store).await.len(), 1, "inside the interval");
        // The interval ends with no new alert: what was held back goes out by itself.
        clock.advance(Duration::from_secs(3540));
        sms.step().await.expect("step");
        let rows = alert_rows(&store).await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        let next = rows
            .iter()
            .find(|r| r.contains("CLEARED a"))
            .unwrap_or_else(|| panic!("{rows:?}"));
        assert!(next.starts_with("Conductor: CLEARED a"), "{next}");
        assert!(next.contains("\n+1 more since the last SMS"), "{next}");
        assert!(next.contains("\n- ALERT b"), "{next}");
        sms.step().await.expect("step");
        assert_eq!(alert_rows(&store).await.len(), 2, "nothing left to send");
    }
}
