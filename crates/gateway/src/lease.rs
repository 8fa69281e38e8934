//! Modem leases (issue 9): on a database several nodes share, a node drives a modem only while
//! it holds that modem's lease row.
//!
//! Why: a network modem can be named in two nodes' configs (a running node and a standby),
//! and two conversations on one modem would interleave AT commands and PDUs. One keeper task
//! per configured modem:
//!
//! 1. tries [`Store::acquire_lease`] every heartbeat until it holds the lease (a standby waits
//!    here while another live node holds it, and takes over once that lease expires);
//! 2. recovers the sends in flight through that modem ([`Store::recover_interrupted_on`]):
//!    on takeover the dead node's become `unknown` (or queued again) exactly as after a crash;
//! 3. asks the supervisor to open the modem, then renews the lease every heartbeat;
//! 4. when a renewal says another node holds the lease, or no renewal has succeeded for
//!    `expiry - heartbeat` (the database is unreachable, or this node stalled), asks the
//!    supervisor to stop the modem at once — before any other node may consider the lease
//!    expired — and goes back to 1. A send between prompt and verdict cannot finish then: it
//!    stays recorded as in flight and whoever acquires the lease next makes it `unknown`.
//!
//! The store's fence ([`Store::fence_node`]) backs this up inside the database: claims and the
//! record written before each PDU check the lease, so even a node whose keeper has not noticed
//! yet cannot send through a modem another node took over.
//!
//! On SQLite none of this runs: one node per database file (its lock file keeps a second daemon
//! away), and every modem starts at once as before.

use std::sync::Arc;
use std::time::Duration;

use conductor_store::{Acquisition, DEFAULT_LEASE_EXPIRY, DEFAULT_LEASE_HEARTBEAT, ModemId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Delivery;
use crate::supervisor::Context;

/// How this node takes part in a shared database (`database.node`, `database.lease_*`).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This node's id in lease rows, `status` and logs. Default: `<hostname>-<pid>`, unique
    /// per process; a fixed id (config `database.node`) lets a restarted node take its own
    /// modems back at once instead of after the expiry.
    pub node: String,
    /// Time between two renewals of each lease (default 5 s).
    pub heartbeat: Duration,
    /// Time a lease holds without renewal (default 20 s): a standby takes a dead node's modems
    /// over after at most this plus one heartbeat, under 30 s with the defaults.
    pub expiry: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node: default_node_id(),
            heartbeat: DEFAULT_LEASE_HEARTBEAT,
            expiry: DEFAULT_LEASE_EXPIRY,
        }
    }
}

/// `<hostname>-<pid>`: unique per running process, readable in `status`.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

/// What a keeper tells the supervisor.
#[derive(Debug)]
pub(crate) enum LeaseEvent {
    /// The lease is this node's and its in-flight sends are recovered: open the modem.
    Acquired(String),
    /// The lease is lost or about to expire: stop driving the modem at once.
    Lost(String),
    /// The modem could not be made ready under its lease for the open bound: close its port
    /// and answer, so the keeper releases the lease only once the port is closed.
    Unusable(String, tokio::sync::oneshot::Sender<()>),
}

/// Where a configured modem's lease stands as this node sees it: what readiness (systemd's
/// `READY=1`) and the status line need to tell a standby from a node still starting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseStanding {
    /// The keeper's first attempt has not been answered yet.
    Pending,
    /// This node holds the lease: the modem is opened (or being opened) here.
    Held,
    /// Another live node holds the lease: this node stands by and takes it over if that
    /// lease expires.
    Standby {
        /// The holder (`database.node`).
        holder: String,
    },
    /// The database did not answer the last attempt: the modem is not driven here.
    Unreachable,
    /// The modem could not be made ready within the open bound (`2 × lease_expiry`), so its
    /// lease was given up for another node to try; acquired again after one expiry.
    Released,
}

/// Records `modem`'s standing (None: forget it, the modem was removed).
pub(crate) fn set_standing(ctx: &Context, modem: &str, standing: Option<LeaseStanding>) {
    let mut map = match ctx.standings.lock() {
        Ok(map) => map,
        Err(poisoned) => poisoned.into_inner(),
    };
    match standing {
        Some(standing) => {
            map.insert(modem.to_owned(), standing);
        }
        None => {
            map.remove(modem);
        }
    }
}

/// How long a modem may stay not ready under this node's lease before the lease is given up:
/// two expiries (40 s with the defaults), time for a slow SIM and network registration, but
/// bounded, so a standby whose path to the device works takes over from a node that cannot
/// open it (a cable pulled on this host, ser2net unreachable from here).
pub(crate) fn open_bound(expiry: Duration) -> Duration {
    expiry * 2
}

/// Why a keeper stopped renewing.
enum Loss {
    /// The lease is lost or about to expire.
    Lease(String),
    /// The modem was not ready for the open bound: give the lease up on purpose.
    Unusable(Duration),
}

/// How long before the lease would expire the keeper gives the modem up: one heartbeat, so the
/// port is closed before any other node can see the lease expired (at least 1/4 of the expiry
/// when the heartbeat is set too close to it).
fn give_up_after(heartbeat: Duration, expiry: Duration) -> Duration {
    expiry.saturating_sub(heartbeat).max(expiry / 4)
}

/// The keeper of one modem's lease (see the module doc); returns when `stop` is cancelled.
pub(crate) async fn keep(
    ctx: Arc<Context>,
    modem: ModemId,
    events: mpsc::UnboundedSender<LeaseEvent>,
    stop: CancellationToken,
) {
    let cluster = &ctx.config.cluster;
    let node = cluster.node.as_str();
    let store = &ctx.store;
    let at_least_once = ctx.config.outbound.delivery == Delivery::AtLeastOnce;
    let give_up = give_up_after(cluster.heartbeat, cluster.expiry);
    set_standing(&ctx, &modem.0, Some(LeaseStanding::Pending));
    // What was last said while waiting, so a standby logs each change once.
    let mut said: Option<String> = None;
    let mut backoff = Duration::from_millis(500);
    loop {
        // 1. Acquire.
        let sent_at = Instant::now();
        let attempt = tokio::time::timeout(
            cluster.heartbeat,
            store.acquire_lease(&modem, node, ctx.clock.now(), cluster.expiry),
        )
        .await;
        let wait = match attempt {
            Ok(Ok(Acquisition::Acquired { taken_from })) => {
                match &taken_from {
                    Some(previous) => warn!(
                        "node {node} took modem {modem} over from node {previous}, whose lease \
                         expired; its sends in flight are recovered as after a crash"
                    ),
                    None => info!("node {node} holds the lease of modem {modem}"),
                }
                said = None;
                backoff = Duration::from_millis(500);
                set_standing(&ctx, &modem.0, Some(LeaseStanding::Held));
                // 2. Recover what was in flight through this modem, then 3. open it.
                if !recover(&ctx, &modem, at_least_once).await {
                    // Not started: the lease expires or is taken again at the next attempt.
                    cluster.heartbeat
                } else {
                    if events.send(LeaseEvent::Acquired(modem.0.clone())).is_err() {
                        return;
                    }
                    match renew_until_lost(&ctx, &modem, sent_at, give_up, &stop).await {
                        None => return,
                        Some(Loss::Lease(reason)) => {
                            error!(
                                "node {node} stops driving modem {modem} at once: {reason}; a \
                                 send between prompt and verdict becomes `unknown` when the \
                                 lease is acquired again"
                            );
                            set_standing(&ctx, &modem.0, Some(LeaseStanding::Unreachable));
                            if events.send(LeaseEvent::Lost(modem.0.clone())).is_err() {
                                return;
                            }
                            Duration::ZERO
                        }
                        Some(Loss::Unusable(bound)) => {
                            error!(
                                "modem {modem} has not been ready for {bound:.0?} under node \
                                 {node}'s lease: closing its port and giving the lease up so \
                                 a node that can open the device takes it over; node {node} \
                                 tries again in {:.0?}. Check the device and its connection \
                                 on this host (`conductor modem scan`, the log above)",
                                cluster.expiry
                            );
                            let (ack, closed) = tokio::sync::oneshot::channel();
                            if events
                                .send(LeaseEvent::Unusable(modem.0.clone(), ack))
                                .is_err()
                            {
                                return;
                            }
                            // Released only once the port is closed: never two conversations.
                            let _ = closed.await;
                            if let Err(e) = store.release_lease(&modem, node).await {
                                warn!(error = %e, "cannot release the lease of modem {modem}; it expires in {:.0?} instead", cluster.expiry);
                            }
                            set_standing(&ctx, &modem.0, Some(LeaseStanding::Released));
                            // Stand back one expiry, so a standby (trying every heartbeat)
                            // acquires it first.
                            cluster.expiry
                        }
                    }
                }
            }
            Ok(Ok(Acquisition::HeldBy {
                node: holder,
                expires_at,
            })) => {
                let text = format!("held by node {holder}");
                if said.as_deref() != Some(text.as_str()) {
                    info!(
                        "modem {modem} is held by node {holder} (lease until {expires_at} UTC): \
                         node {node} stands by and takes it over if that lease expires"
                    );
                    said = Some(text);
                }
                backoff = Duration::from_millis(500);
                set_standing(
                    &ctx,
                    &modem.0,
                    Some(LeaseStanding::Standby {
                        holder: holder.clone(),
                    }),
                );
                cluster.heartbeat
            }
            Ok(Err(e)) => {
                set_standing(&ctx, &modem.0, Some(LeaseStanding::Unreachable));
                if said.as_deref() != Some("database") {
                    warn!(error = %e, "cannot acquire the lease of modem {modem}: the database does not answer; not driving it, retrying with backoff");
                    said = Some("database".to_owned());
                }
                backoff = (backoff * 2).min(cluster.heartbeat);
                backoff
            }
            Err(_) => {
                set_standing(&ctx, &modem.0, Some(LeaseStanding::Unreachable));
                if said.as_deref() != Some("database") {
                    warn!(
                        "acquiring the lease of modem {modem} timed out: the database does not answer; not driving it, retrying with backoff"
                    );
                    said = Some("database".to_owned());
                }
                backoff = (backoff * 2).min(cluster.heartbeat);
                backoff
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Recovers the sends in flight through `modem` (a dead node's, or this node's before a
/// restart). False when the database refused: the modem is not started then.
async fn recover(ctx: &Context, modem: &ModemId, at_least_once: bool) -> bool {
    match ctx
        .store
        .recover_interrupted_on(vec![modem.clone()], ctx.clock.now(), at_least_once)
        .await
    {
        Ok(recovered) => {
            for id in &recovered.unknown {
                warn!(
                    id = id.0,
                    "message #{id} was interrupted while sending through modem {modem}: not \
                     resent; `conductor requeue {id}` resends it"
                );
            }
            for id in &recovered.requeued {
                info!(
                    id = id.0,
                    "message #{id} was claimed for modem {modem} but not sent: queued again"
                );
            }
            true
        }
        Err(e) => {
            warn!(error = %e, "cannot recover the sends in flight through modem {modem}; not driving it yet, retrying");
            false
        }
    }
}

/// Renews every heartbeat. Returns why the lease is lost (or given up: the modem was not
/// ready for the open bound), or None when `stop` was cancelled (the supervisor releases the
/// lease once the port is closed).
async fn renew_until_lost(
    ctx: &Context,
    modem: &ModemId,
    mut last_ok: Instant,
    give_up: Duration,
    stop: &CancellationToken,
) -> Option<Loss> {
    let cluster = &ctx.config.cluster;
    let mut failing = false;
    let bound = open_bound(cluster.expiry);
    // Since when the modem has not been ready under this lease (from the acquisition).
    let mut not_ready_since = Some(last_ok);
    loop {
        let ready = ctx.lanes().iter().any(|lane| {
            lane.id == *modem && lane.state.borrow().phase == conductor_modem::Phase::Ready
        });
        match (ready, not_ready_since) {
            (true, _) => not_ready_since = None,
            (false, None) => not_ready_since = Some(Instant::now()),
            (false, Some(since)) if since.elapsed() >= bound => {
                return Some(Loss::Unusable(bound));
            }
            (false, Some(_)) => {}
        }
        let deadline = last_ok + give_up;
        let next = (Instant::now() + cluster.heartbeat).min(deadline);
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep_until(next) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Some(Loss::Lease(format!(
                "its lease could not be renewed for {:.0?} (the database does not answer)",
                give_up
            )));
        }
        let renewal = tokio::time::timeout(
            deadline - now,
            ctx.store
                .renew_lease(modem, &cluster.node, ctx.clock.now(), cluster.expiry),
        )
        .await;
        match renewal {
            Ok(Ok(true)) => {
                if failing {
                    info!("the lease of modem {modem} is renewed again: the database answers");
                    failing = false;
                }
                last_ok = now;
            }
            Ok(Ok(false)) => {
                return Some(Loss::Lease(
                    "another node took its lease over (this node's renewals stopped for longer \
                     than the expiry)"
                        .to_owned(),
                ));
            }
            Ok(Err(e)) => {
                if !failing {
                    warn!(error = %e, "cannot renew the lease of modem {modem}; the modem stops unless the database answers within {give_up:.0?}");
                    failing = true;
                }
            }
            Err(_) => {
                if !failing {
                    warn!(
                        "renewing the lease of modem {modem} timed out; the modem stops unless the database answers within {give_up:.0?}"
                    );
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_gives_a_modem_up_one_heartbeat_before_its_lease_expires() {
        let d = Duration::from_secs;
        assert_eq!(give_up_after(d(5), d(20)), d(15));
        assert_eq!(give_up_after(d(20), d(20)), d(5));
    }

    #[test]
    fn the_default_node_id_names_the_process() {
        let node = default_node_id();
        assert!(
            node.ends_with(&format!("-{}", std::process::id())),
            "{node}"
        );
    }

    #[test]
    fn the_defaults_take_over_in_under_thirty_seconds() {
        let c = ClusterConfig::default();
        assert!(c.expiry + c.heartbeat < Duration::from_secs(30));
    }
}
