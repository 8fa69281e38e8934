//! Forward-only schema migrations on PostgreSQL, applied when a store opens.
//!
//! Why an advisory lock: several nodes start together against one database; each migration
//! runs in one transaction that first takes `pg_advisory_xact_lock(MIGRATION_LOCK)`, then reads
//! the version from `schema_migrations`, so exactly one node applies each migration and the
//! others find it done (PostgreSQL's DDL is transactional, so a failed migration leaves
//! nothing behind). A database newer than this build is refused, as with SQLite.
//!
//! Keeping the two backends in step: PostgreSQL's first migration is numbered 5 and creates
//! what SQLite's 0001..0005 created together. Every later SQLite migration `NNNN_name.sql` gets a
//! twin `migrations/postgres/NNNN_name.sql` with the same number and the same tables and
//! columns (`timestamptz` for times, `boolean` for 0/1 flags, `bigint` for integers), appended
//! to [`MIGRATIONS`] below; a unit test fails while the last one is not
//! [`crate::SCHEMA_VERSION`].

use crate::error::StoreError;
use crate::migrate::SCHEMA_VERSION;

use super::Postgres;

/// One migration: its number (the schema version after it), name and SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only; never edit one that has shipped.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 5,
        name: "initial",
        sql: include_str!("../../migrations/postgres/0005_initial.sql"),
    },
    Migration {
        version: 6,
        name: "toolbox",
        sql: include_str!("../../migrations/postgres/0006_toolbox.sql"),
    },
    Migration {
        version: 7,
        name: "modem_leases",
        sql: include_str!("../../migrations/postgres/0007_modem_leases.sql"),
    },
];

/// The advisory lock key every Conductor node takes while migrating ("cndctr" in ASCII).
const MIGRATION_LOCK: i64 = 0x636e_6463_7472;

/// Brings the database to [`SCHEMA_VERSION`].
pub(crate) async fn migrate(db: &Postgres) -> Result<(), StoreError> {
    const DOING: &str = "migrating the schema";
    let mut client = db.client(DOING).await?;
    let pg_err = |e: tokio_postgres::Error| db.error(DOING, e.into());
    // The common case (every open after the first) takes no lock.
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(pg_err)?
        .get(0);
    let current: i64 = if exists {
        client
            .query_one(
                "SELECT COALESCE(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0)
    } else {
        0
    };
    check_not_newer(current, db)?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    for migration in MIGRATIONS {
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    bigint      PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg_err)?;
        // Re-read under the lock: another node may have migrated meanwhile.
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        check_not_newer(current, db)?;
        if current >= migration.version {
            continue;
        }
        if current == 0 {
            let foreign: bool = tx
                .query_one("SELECT to_regclass('messages') IS NOT NULL", &[])
                .await
                .map_err(pg_err)?
                .get(0);
            if foreign {
                return Err(StoreError::PostgresForeignSchema {
                    target: db.target().to_owned(),
                });
            }
        }
        let fail = |source| StoreError::PostgresMigration {
            target: db.target().to_owned(),
            version: migration.version,
            name: migration.name,
            source,
        };
        tx.batch_execute(migration.sql).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(pg_err)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            database = db.target(),
            "database migrated"
        );
    }
    Ok(())
}

fn check_not_newer(found: i64, db: &Postgres) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: db.target().into(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_migrations_follow_one_another_and_end_at_the_sqlite_schema_version() {
        for pair in MIGRATIONS.windows(2) {
            assert_eq!(pair[1].version, pair[0].version + 1, "{}", pair[1].name);
        }
        assert_eq!(
            MIGRATIONS.last().map(|m| m.version),
            Some(SCHEMA_VERSION),
            "a SQLite migration has no PostgreSQL twin in migrations/postgres/ yet"
        );
    }
}
