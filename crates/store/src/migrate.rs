//! Forward-only schema migrations, applied when a store opens.
//!
//! Why: the daemon, the CLI and external tools open the same file, possibly different versions
//! of them; the schema version must be unambiguous and upgrades must be atomic.
//!
//! How: `PRAGMA user_version` holds the number of the last migration applied (it lives in the
//! file header, so it is read without touching any table); `schema_migrations` keeps a
//! human-readable log. Each migration runs in its own `BEGIN IMMEDIATE` transaction that also
//! sets `user_version`, and re-reads the version inside that transaction, so two processes
//! opening a fresh file at once apply each migration exactly once. A database newer than this
//! build is refused ([`StoreError::SchemaTooNew`]): migrations only go forward.
//! The SQL lives in `migrations/sqlite/NNNN_name.sql`, included at compile time.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// One migration: its number (= `user_version` after it), name and SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only; never edit one that has shipped.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "api",
        sql: include_str!("../migrations/sqlite/0002_api.sql"),
    },
    Migration {
        version: 3,
        name: "number_index",
        sql: include_str!("../migrations/sqlite/0003_number_index.sql"),
    },
    Migration {
        version: 4,
        name: "alerts",
        sql: include_str!("../migrations/sqlite/0004_alerts.sql"),
    },
    Migration {
        version: 5,
        name: "sending_policy",
        sql: include_str!("../migrations/sqlite/0005_sending_policy.sql"),
    },
    Migration {
        version: 6,
        name: "toolbox",
        sql: include_str!("../migrations/sqlite/0006_toolbox.sql"),
    },
    Migration {
        version: 7,
        name: "modem_leases",
        sql: include_str!("../migrations/sqlite/0007_modem_leases.sql"),
    },
];

/// Migrations that rebuild a table other tables reference (SQLite cannot alter a CHECK): they
/// run with `PRAGMA foreign_keys` off, which can only change outside a transaction, because a
/// DROP TABLE with it on deletes the referencing rows by cascade. `PRAGMA foreign_key_check`
/// must find nothing before they commit.
const REBUILDS_TABLES: &[i64] = &[5];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = 7;

/// Brings the database at `path` (open on `conn`) to [`SCHEMA_VERSION`].
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    busy: std::time::Duration,
) -> Result<(), StoreError> {
    let sql_err = |doing: &'static str| move |e| StoreError::sqlite(path, doing, busy, e);
    let current = user_version(conn).map_err(sql_err("reading the schema version"))?;
    check_not_newer(current, path)?;
    if current == SCHEMA_VERSION {
        // The common case (every open after the first) takes no write lock at all.
        return Ok(());
    }
    for migration in MIGRATIONS {
        let rebuilds = REBUILDS_TABLES.contains(&migration.version);
        if rebuilds {
            conn.pragma_update(None, "foreign_keys", false)
                .map_err(sql_err("turning foreign keys off for a table rebuild"))?;
        }
        let applied = apply(conn, migration, path, busy, rebuilds);
        if rebuilds {
            conn.pragma_update(None, "foreign_keys", true)
                .map_err(sql_err("turning foreign keys back on"))?;
        }
        applied?;
    }
    Ok(())
}

/// Applies one migration in its own immediate transaction, unless another process already did.
fn apply(
    conn: &mut Connection,
    migration: &Migration,
    path: &Path,
    busy: std::time::Duration,
    rebuilds: bool,
) -> Result<(), StoreError> {
    let sql_err = |doing: &'static str| move |e| StoreError::sqlite(path, doing, busy, e);
    {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("starting a migration"))?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let current = user_version(&tx).map_err(sql_err("reading the schema version"))?;
        check_not_newer(current, path)?;
        if current >= migration.version {
            return Ok(());
        }
        if current == 0 && has_table(&tx, "messages").map_err(sql_err("inspecting the schema"))? {
            return Err(StoreError::ForeignSchema {
                path: path.to_path_buf(),
            });
        }
        let fail = |source| StoreError::Migration {
            path: path.to_path_buf(),
            version: migration.version,
            name: migration.name,
            source,
        };
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TEXT NOT NULL DEFAULT (datetime('now'))
             )",
        )
        .map_err(fail)?;
        tx.execute_batch(migration.sql).map_err(fail)?;
        if rebuilds {
            let broken: i64 = tx
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                    row.get(0)
                })
                .map_err(fail)?;
            if broken > 0 {
                return Err(fail(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                    Some(format!(
                        "{broken} rows break a foreign key after rebuilding a table; the \
                         database is left unchanged (run PRAGMA foreign_key_check to see them)"
                    )),
                )));
            }
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
            (migration.version, migration.name),
        )
        .map_err(fail)?;
        tx.pragma_update(None, "user_version", migration.version)
            .map_err(fail)?;
        tx.commit().map_err(sql_err("committing a migration"))?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            path = %path.display(),
            "database migrated"
        );
    }
    Ok(())
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [name],
        |row| row.get(0),
    )
}

fn check_not_newer(found: i64, path: &Path) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
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
    fn migrations_are_numbered_one_after_another_and_end_at_the_schema_version() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i as i64 + 1, "{}", migration.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
