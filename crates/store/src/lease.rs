//! Modem leases: which gateway node drives which modem (issue 9, several nodes on PostgreSQL).
//!
//! Why leases: a network modem (TCP) can be named by two nodes' configs, a running node and a
//! standby. Exactly one may hold the port's conversation, or both would write PDUs to it and
//! the modem would answer the wrong one. A lease row (modem, node, heartbeat, expiry) decides:
//! a node opens a modem's port only after [`Store::acquire_lease`] says it holds the lease,
//! renews it every heartbeat, and stops driving the modem at once when it cannot; another node
//! takes the lease only after `expires_at` has passed. On PostgreSQL the claim and the record
//! written before each PDU ([`Store::part_sending`]) also check the lease (a fence), so a node
//! that stalled past its expiry cannot send for a modem another node took over.
//!
//! SQLite serves one node per file (the database lock file keeps a second daemon away), so
//! there every acquisition succeeds, renewals always hold and nothing is written: behaviour
//! there is unchanged. Times come from the caller's clock like every store method; nodes must
//! keep their clocks in sync (NTP), since one node's `expires_at` is read by another.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::store::Store;
use crate::types::{ModemId, SqlTime};

/// Default time between two renewals of a lease.
pub const DEFAULT_LEASE_HEARTBEAT: Duration = Duration::from_secs(5);

/// Default time a lease holds without a renewal: a standby takes a dead node's modem over
/// within this plus one heartbeat (its acquisition attempts) plus the modem's start, under
/// 30 s with the defaults.
pub const DEFAULT_LEASE_EXPIRY: Duration = Duration::from_secs(20);

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The modem (`modems[].id`).
    pub modem: ModemId,
    /// The node holding it (`database.node`).
    pub node: String,
    /// The holder's last renewal.
    pub heartbeat_at: SqlTime,
    /// When the holder acquired it (a renewal keeps this).
    pub acquired_at: SqlTime,
    /// Until when it holds without another renewal.
    pub expires_at: SqlTime,
}

impl Lease {
    /// Whether the lease still holds at `now`: its node is alive as far as the database knows.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.timestamp().is_some_and(|t| t > now)
    }
}

/// What [`Store::acquire_lease`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquisition {
    /// The caller holds the lease now. `taken_from`: the node whose expired lease it replaced
    /// (its in-flight sends must be recovered as after a crash); `None` when the lease was
    /// free or already the caller's.
    Acquired {
        /// The previous holder, when it was another node.
        taken_from: Option<String>,
    },
    /// Another node holds a live lease: do not open the modem.
    HeldBy {
        /// That node.
        node: String,
        /// When its lease expires unless renewed.
        expires_at: SqlTime,
    },
}

impl Store {
    /// Whether this backend is shared by several nodes, which must then hold modem leases
    /// (PostgreSQL). On SQLite the lease operations succeed without writing.
    pub fn needs_leases(&self) -> bool {
        self.is_postgres()
    }

    /// Takes `modem`'s lease for `node` until `now + expiry`, atomically, only if it is free,
    /// expired, or `node`'s already (a restarted node with the same `database.node` gets its
    /// modems back at once). On SQLite: always acquired.
    pub async fn acquire_lease(
        &self,
        modem: &ModemId,
        node: &str,
        now: Timestamp,
        expiry: Duration,
    ) -> Result<Acquisition, crate::StoreError> {
        match self.postgres() {
            Some(pg) => crate::postgres::lease::acquire(pg, modem, node, now, expiry).await,
            None => Ok(Acquisition::Acquired { taken_from: None }),
        }
    }

    /// The heartbeat: moves `modem`'s lease to `now + expiry` if `node` still holds it.
    /// `Ok(false)`: it does not (another node took it over after it expired); stop driving
    /// the modem at once. On SQLite: always `Ok(true)`.
    pub async fn renew_lease(
        &self,
        modem: &ModemId,
        node: &str,
        now: Timestamp,
        expiry: Duration,
    ) -> Result<bool, crate::StoreError> {
        match self.postgres() {
            Some(pg) => crate::postgres::lease::renew(pg, modem, node, now, expiry).await,
            None => Ok(true),
        }
    }

    /// Gives `modem`'s lease up if `node` holds it (a graceful stop, after its port closed), so
    /// a standby takes over without waiting for the expiry.
    pub async fn release_lease(
        &self,
        modem: &ModemId,
        node: &str,
    ) -> Result<(), crate::StoreError> {
        match self.postgres() {
            Some(pg) => crate::postgres::lease::release(pg, modem, node).await,
            None => Ok(()),
        }
    }

    /// Every lease row, live or expired, by modem: `status`, `health`, the API and metrics
    /// show which node holds which modem. Empty on SQLite.
    pub async fn leases(&self) -> Result<Vec<Lease>, crate::StoreError> {
        match self.postgres() {
            Some(pg) => crate::postgres::lease::list(pg).await,
            None => Ok(Vec::new()),
        }
    }

    /// Takes `node` for this process, for as long as the returned lock is kept (PostgreSQL: a
    /// session advisory lock on the id, in a connection of its own). Why: two processes
    /// started with one `database.node` would both renew the same leases and drive the same
    /// modems; the second is refused with [`crate::StoreError::NodeInUse`]. A session lock,
    /// not a row, so a node killed with SIGKILL frees its id as soon as the server sees its
    /// connection close, and a restarted node still takes its modems back at once. On SQLite
    /// (one daemon per file, its lock file) nothing is taken.
    pub async fn lock_node(&self, node: &str) -> Result<NodeLock, crate::StoreError> {
        Ok(NodeLock {
            _session: match self.postgres() {
                Some(pg) => Some(crate::postgres::lease::lock_node(pg, node).await?),
                None => None,
            },
        })
    }

    /// Makes this store's claims and part records check `node`'s leases (PostgreSQL; the
    /// gateway calls it once at start): a row is claimed only for a modem `node` holds a live
    /// lease on, and [`Store::part_sending`] refuses with [`crate::StoreError::LeaseLost`]
    /// once the lease is gone. A no-op on SQLite.
    pub fn fence_node(&self, node: &str) {
        if let Some(pg) = self.postgres() {
            let mut fence = match pg.fence.write() {
                Ok(fence) => fence,
                Err(poisoned) => poisoned.into_inner(),
            };
            *fence = Some(node.to_owned());
        }
    }
}

/// This process's hold on its node id ([`Store::lock_node`]); dropping it frees the id.
pub struct NodeLock {
    _session: Option<crate::postgres::lease::NodeSession>,
}

impl std::fmt::Debug for NodeLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLock")
            .field("held", &self._session.is_some())
            .finish()
    }
}

/// One node as the lease rows show it: what `status`, `health`, the API and metrics print.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeLeases {
    /// The node (`database.node`).
    pub node: String,
    /// Whether any of its leases still holds: the node is alive as far as the database knows.
    pub live: bool,
    /// The modems it holds (live leases).
    pub modems: Vec<ModemId>,
    /// Modems whose leases it let expire (it died or lost the database); another node takes
    /// them over, or the node itself when it comes back.
    pub expired: Vec<ModemId>,
    /// Its latest heartbeat.
    pub heartbeat_at: SqlTime,
}

/// Groups lease rows by node, nodes by name.
pub fn by_node(leases: &[Lease], now: Timestamp) -> Vec<NodeLeases> {
    let mut nodes: Vec<NodeLeases> = Vec::new();
    for lease in leases {
        let index = match nodes.iter().position(|n| n.node == lease.node) {
            Some(index) => index,
            None => {
                nodes.push(NodeLeases {
                    node: lease.node.clone(),
                    live: false,
                    modems: Vec::new(),
                    expired: Vec::new(),
                    heartbeat_at: lease.heartbeat_at.clone(),
                });
                nodes.len() - 1
            }
        };
        let entry = &mut nodes[index];
        if lease.is_live(now) {
            entry.live = true;
            entry.modems.push(lease.modem.clone());
        } else {
            entry.expired.push(lease.modem.clone());
        }
        if lease.heartbeat_at > entry.heartbeat_at {
            entry.heartbeat_at = lease.heartbeat_at.clone();
        }
    }
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(modem: &str, node: &str, expires: i64) -> Lease {
        let t = |s: i64| SqlTime::from_timestamp(Timestamp::from_second(s).expect("time"));
        Lease {
            modem: ModemId::from(modem),
            node: node.into(),
            heartbeat_at: t(expires - 20),
            acquired_at: t(0),
            expires_at: t(expires),
        }
    }

    #[test]
    fn nodes_list_their_live_and_expired_modems() {
        let now = Timestamp::from_second(100).expect("time");
        let nodes = by_node(
            &[
                lease("m1", "b", 110),
                lease("m2", "a", 90),
                lease("m3", "b", 120),
            ],
            now,
        );
        assert_eq!(nodes.len(), 2);
        assert_eq!((nodes[0].node.as_str(), nodes[0].live), ("a", false));
        assert_eq!(nodes[0].expired, vec![ModemId::from("m2")]);
        assert_eq!(
            nodes[1].modems,
            vec![ModemId::from("m1"), ModemId::from("m3")]
        );
        assert_eq!(nodes[1].heartbeat_at.as_str(), "1970-01-01 00:01:40");
    }
}
