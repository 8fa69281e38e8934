//! Noticing other writers' commits on PostgreSQL: `LISTEN conductor_messages`.
//!
//! Why: a row inserted by n8n (or queued through another node) must be sent within a second
//! (issue 9). The trigger on `messages` notifies once per statement, with the writing store's
//! `conductor.writer` token as payload (empty for external writers), so a node ignores its own
//! commits exactly as SQLite's `PRAGMA data_version` does.
//!
//! The listener holds one dedicated connection (notifications are per session, so a pooled
//! connection cannot listen). If it drops, the listener reconnects with a doubling delay and
//! reports a change once it is back, because notifications sent meanwhile are lost. On top,
//! [`Listener::changed`] returns after [`SAFETY_NET`] without a notification: the periodic scan
//! that catches anything else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_postgres::AsyncMessage;

use super::{CHANNEL, Postgres};
use crate::error::StoreError;

/// The longest a watcher waits without a notification before waking anyway.
pub(crate) const SAFETY_NET: Duration = Duration::from_secs(5);

/// A `LISTEN` session that flags other writers' commits. Dropping it closes the session.
#[derive(Debug)]
pub(crate) struct Listener {
    changed: Arc<AtomicBool>,
    wake: Arc<Notify>,
    task: tokio::task::AbortHandle,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Starts listening; returns once the first `LISTEN` is in place, so nothing committed
    /// after this returns is missed.
    pub(crate) async fn start(db: &Postgres) -> Result<Self, StoreError> {
        const DOING: &str = "listening for changes";
        let config = db.config().clone();
        let tls = db.tls.clone();
        let own = db.writer_token.clone();
        let target = db.target().to_owned();
        let changed = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let first = listen(&config, &tls)
            .await
            .map_err(|source| StoreError::Postgres {
                target: target.clone(),
                doing: DOING,
                source,
            })?;
        let (flag, notify) = (Arc::clone(&changed), Arc::clone(&wake));
        let task = tokio::spawn(async move {
            let mut session = Some(first);
            let mut delay = Duration::from_millis(100);
            loop {
                let (client, mut payloads) = match session.take() {
                    Some(s) => s,
                    None => match listen(&config, &tls).await {
                        Ok(s) => {
                            delay = Duration::from_millis(100);
                            // Notifications sent while we were away are lost: say "changed".
                            flag.store(true, Ordering::SeqCst);
                            notify.notify_one();
                            s
                        }
                        Err(e) => {
                            tracing::warn!(database = %target, error = %e,
                                "change listener cannot reconnect; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                            continue;
                        }
                    },
                };
                while let Some(payload) = payloads.recv().await {
                    if payload != own {
                        flag.store(true, Ordering::SeqCst);
                        notify.notify_one();
                    }
                }
                drop(client);
                tracing::warn!(database = %target, "change listener lost its connection");
            }
        });
        Ok(Self {
            changed,
            wake,
            task: task.abort_handle(),
        })
    }

    /// True when another writer committed since the last call.
    pub(crate) fn poll(&self) -> bool {
        self.changed.swap(false, Ordering::SeqCst)
    }

    /// Waits for another writer's commit, or for the safety net's period. Cancel-safe.
    pub(crate) async fn changed(&self) {
        if self.poll() {
            return;
        }
        let _ = tokio::time::timeout(SAFETY_NET, self.wake.notified()).await;
        self.changed.store(false, Ordering::SeqCst);
    }
}

/// Opens a session, starts `LISTEN`, and returns its client (keep it: dropping it ends the
/// session) and the notification payloads.
async fn listen(
    config: &tokio_postgres::Config,
    tls: &super::tls::MakeRustls,
) -> Result<(tokio_postgres::Client, mpsc::UnboundedReceiver<String>), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, rx))
}
