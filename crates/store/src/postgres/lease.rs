//! Modem leases on PostgreSQL (see `crate::lease` for why), and the fence the claim and
//! `part_sending` apply with them.
//!
//! Atomicity: an acquisition is one statement (`INSERT … ON CONFLICT DO UPDATE … WHERE`), so
//! of two nodes racing for a free or expired lease exactly one row update wins and the other
//! sees the winner. The fence takes `FOR SHARE` on this node's lease rows inside the claim's
//! or the part record's transaction: a takeover (an `UPDATE` of that row) waits until that
//! transaction commits, so the new holder's recovery, which runs after its acquisition, sees
//! every row this node claimed or started for the modem.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;

use super::{Db, Postgres, Tx, at, sql_time};
use crate::error::StoreError;
use crate::lease::{Acquisition, Lease};
use crate::types::ModemId;

const ACQUIRE: &str = "acquiring a modem lease";

/// `expiry` as `make_interval`'s fractional seconds.
fn seconds(expiry: Duration) -> f64 {
    expiry.as_secs_f64()
}

pub(crate) async fn acquire(
    pg: &Postgres,
    modem: &ModemId,
    node: &str,
    now: Timestamp,
    expiry: Duration,
) -> Result<Acquisition, StoreError> {
    let now = at(now);
    let client = pg.client(ACQUIRE).await?;
    // The previous holder, read in the same statement (the CTE sees the row before the
    // upsert), so the log can say whose expired lease was taken over.
    let row = client
        .query_one(
            "WITH before AS (SELECT node_id FROM modem_leases WHERE modem_id = $1),
                  upsert AS (
                 INSERT INTO modem_leases (modem_id, node_id, heartbeat_at, acquired_at, expires_at)
                 VALUES ($1, $2, $3::timestamptz, $3::timestamptz,
                         $3::timestamptz + make_interval(secs => $4::float8))
                 ON CONFLICT (modem_id) DO UPDATE
                    SET node_id = EXCLUDED.node_id,
                        heartbeat_at = EXCLUDED.heartbeat_at,
                        acquired_at = CASE WHEN modem_leases.node_id = EXCLUDED.node_id
                                           THEN modem_leases.acquired_at
                                           ELSE EXCLUDED.acquired_at END,
                        expires_at = EXCLUDED.expires_at
                  WHERE modem_leases.node_id = EXCLUDED.node_id
                     OR modem_leases.expires_at <= EXCLUDED.heartbeat_at
                 RETURNING 1)
             SELECT EXISTS (SELECT 1 FROM upsert), (SELECT node_id FROM before)",
            &[&modem.as_str(), &node, &now, &seconds(expiry)],
        )
        .await
        .map_err(|e| pg.error(ACQUIRE, e.into()))?;
    let won: bool = row.get(0);
    let before: Option<String> = row.get(1);
    if won {
        return Ok(Acquisition::Acquired {
            taken_from: before.filter(|previous| previous != node),
        });
    }
    // Lost: read the live holder (a racing node may have just won it).
    let holder = client
        .query_opt(
            "SELECT node_id, expires_at FROM modem_leases WHERE modem_id = $1",
            &[&modem.as_str()],
        )
        .await
        .map_err(|e| pg.error(ACQUIRE, e.into()))?;
    Ok(match holder {
        Some(row) => Acquisition::HeldBy {
            node: row.get(0),
            expires_at: sql_time(row.get(1)),
        },
        // Released between the two statements: try again at the next attempt.
        None => Acquisition::HeldBy {
            node: before.unwrap_or_default(),
            expires_at: sql_time(now),
        },
    })
}

pub(crate) async fn renew(
    pg: &Postgres,
    modem: &ModemId,
    node: &str,
    now: Timestamp,
    expiry: Duration,
) -> Result<bool, StoreError> {
    const DOING: &str = "renewing a modem lease";
    let now = at(now);
    let client = pg.client(DOING).await?;
    let n = client
        .execute(
            "UPDATE modem_leases
                SET heartbeat_at = $3::timestamptz,
                    expires_at = $3::timestamptz + make_interval(secs => $4::float8)
              WHERE modem_id = $1 AND node_id = $2",
            &[&modem.as_str(), &node, &now, &seconds(expiry)],
        )
        .await
        .map_err(|e| pg.error(DOING, e.into()))?;
    Ok(n == 1)
}

pub(crate) async fn release(pg: &Postgres, modem: &ModemId, node: &str) -> Result<(), StoreError> {
    const DOING: &str = "releasing a modem lease";
    let client = pg.client(DOING).await?;
    client
        .execute(
            "DELETE FROM modem_leases WHERE modem_id = $1 AND node_id = $2",
            &[&modem.as_str(), &node],
        )
        .await
        .map_err(|e| pg.error(DOING, e.into()))?;
    Ok(())
}

pub(crate) async fn list(pg: &Postgres) -> Result<Vec<Lease>, StoreError> {
    const DOING: &str = "reading modem leases";
    let client = pg.client(DOING).await?;
    let rows = client
        .query(
            "SELECT modem_id, node_id, heartbeat_at, acquired_at, expires_at
               FROM modem_leases ORDER BY modem_id",
            &[],
        )
        .await
        .map_err(|e| pg.error(DOING, e.into()))?;
    Ok(rows
        .iter()
        .map(|row| Lease {
            modem: ModemId(row.get(0)),
            node: row.get(1),
            heartbeat_at: sql_time(row.get(2)),
            acquired_at: sql_time(row.get(3)),
            expires_at: sql_time(row.get(4)),
        })
        .collect())
}

/// The node this store was fenced to (`Store::fence_node`), if any.
pub(crate) fn fenced_node(pg: &Postgres) -> Option<String> {
    match pg.fence.read() {
        Ok(fence) => fence.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// What the claim needs to know about leases: of `ready`, the modems this node holds a live
/// lease on (locked `FOR SHARE` until the claim commits), and the modems other nodes hold live
/// leases on (their rows are theirs to send). Unfenced: every ready modem, nobody else's.
pub(crate) struct ClaimFence {
    pub held: HashSet<String>,
    pub elsewhere: Vec<String>,
}

pub(crate) async fn claim_fence(
    pg: &Postgres,
    tx: &Tx<'_>,
    ready: &[&str],
    now: std::time::SystemTime,
) -> Db<ClaimFence> {
    let Some(node) = fenced_node(pg) else {
        return Ok(ClaimFence {
            held: ready.iter().map(|m| (*m).to_owned()).collect(),
            elsewhere: Vec::new(),
        });
    };
    let held = tx
        .query(
            "SELECT modem_id FROM modem_leases
              WHERE modem_id = ANY($1) AND node_id = $2 AND expires_at > $3
              ORDER BY modem_id FOR SHARE",
            &[&ready, &node, &now],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let elsewhere = tx
        .query(
            "SELECT modem_id FROM modem_leases WHERE node_id <> $1 AND expires_at > $2",
            &[&node, &now],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    Ok(ClaimFence { held, elsewhere })
}

/// Before a PDU is written: `modem`'s lease must still be this node's (locked `FOR SHARE` so
/// a takeover waits for this transaction), else [`StoreError::LeaseLost`].
pub(crate) async fn check_held(
    pg: &Postgres,
    tx: &Tx<'_>,
    modem: &str,
    now: std::time::SystemTime,
) -> Db<()> {
    let Some(node) = fenced_node(pg) else {
        return Ok(());
    };
    let held = tx
        .query_opt(
            "SELECT 1 FROM modem_leases
              WHERE modem_id = $1 AND node_id = $2 AND expires_at > $3 FOR SHARE",
            &[&modem, &node, &now],
        )
        .await?
        .is_some();
    if held {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            modem: modem.to_owned(),
            node,
        }
        .into())
    }
}

/// `part_sending`, fenced: the row's modem must still be leased to this node.
pub(crate) async fn part_sending(
    pg: &Postgres,
    tx: &Tx<'_>,
    id: crate::types::MessageId,
    part: &crate::model::PartSending,
    now: Timestamp,
) -> Db<()> {
    if fenced_node(pg).is_some()
        && let Some(row) = tx
            .query_opt(
                "SELECT sending_modem FROM messages WHERE id = $1 AND status = 'sending'",
                &[&id.0],
            )
            .await?
        && let Some(modem) = row.get::<_, Option<String>>(0)
    {
        check_held(pg, tx, &modem, at(now)).await?;
    }
    super::outbound::part_sending(tx, id, part, now).await
}

/// The session that holds a node id's advisory lock (see `crate::lease::NodeLock`): dropping it
/// ends the session, which frees the id.
pub(crate) struct NodeSession {
    _client: tokio_postgres::Client,
    task: tokio::task::AbortHandle,
}

impl Drop for NodeSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a dedicated session and takes `node`'s advisory lock in it, or says who has it.
pub(crate) async fn lock_node(pg: &Postgres, node: &str) -> Result<NodeSession, StoreError> {
    const DOING: &str = "taking this node's id";
    let failed = |source| StoreError::Postgres {
        target: pg.target().to_owned(),
        doing: DOING,
        source,
    };
    let (client, connection) = pg.config().connect(pg.tls.clone()).await.map_err(failed)?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    })
    .abort_handle();
    let session = NodeSession {
        _client: client,
        task,
    };
    let taken: bool = session
        ._client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended('conductor-node:' || $1, 0))",
            &[&node],
        )
        .await
        .map_err(failed)?
        .get(0);
    if taken {
        Ok(session)
    } else {
        Err(StoreError::NodeInUse {
            node: node.to_owned(),
        })
    }
}
