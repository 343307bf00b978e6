//! One SQLite set-up for every embedded store: how a file is opened, how a schema migrates and
//! how a connection is shared by async callers. The stores (links, webhook de-duplication,
//! delivery journal, clicks, synced dataset) differ only in their tables.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use rusqlite::{Connection, TransactionBehavior, params};

/// How long a writer waits for another connection's write lock before `SQLITE_BUSY`: claims
/// and links hold it only briefly, so waiting beats failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous=FULL`: a commit survives a power cut (links, de-duplication, clicks).
    Full,
    /// `synchronous=NORMAL`: a commit survives a process crash, the last ones may not survive
    /// a power cut; for stores rebuilt or re-read anyway (synced dataset) or write-heavy ones
    /// whose every state change is idempotent (journal).
    Normal,
}

/// Opens (creating if needed) a database file in WAL mode, so readers never block the writer.
pub(crate) fn open_file(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    prepare(&conn)?;
    Ok(conn)
}

/// A private in-memory database (tests, demos; nothing survives it).
pub(crate) fn open_in_memory() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    prepare(&conn)?;
    Ok(conn)
}

/// What every connection needs, including one a host opened itself.
pub(crate) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
}

/// Applies the numbered `migrations` not yet recorded in `table`, in one immediate transaction
/// (two processes opening one file at once migrate it once).
pub(crate) fn migrate(
    conn: &mut Connection,
    table: &str,
    migrations: &[&str],
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)"
    ))?;
    let done: i64 =
        tx.query_row(&format!("SELECT COALESCE(MAX(version), 0) FROM {table}"), [], |r| r.get(0))?;
    for (version, sql) in (1_i64..).zip(migrations) {
        if version > done {
            tx.execute_batch(sql)?;
            tx.execute(
                &format!("INSERT INTO {table} (version, applied_at_ms) VALUES (?1, ?2)"),
                params![version, Utc::now().timestamp_millis()],
            )?;
        }
    }
    tx.commit()
}

/// One connection shared by a store's async calls, each run on tokio's blocking pool.
#[derive(Debug, Clone)]
pub(crate) struct SharedConnection(Arc<Mutex<Connection>>);

impl SharedConnection {
    pub(crate) fn new(conn: Connection) -> Self {
        Self(Arc::new(Mutex::new(conn)))
    }

    /// Runs `f` with the connection on the blocking pool.
    ///
    /// A panic in an earlier call rolled its transaction back (a `Transaction` rolls back on
    /// drop), so a poisoned lock still guards a usable connection. `Err` only when `f` itself
    /// panicked or the runtime is shutting down.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let conn = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_in_order() {
        let mut conn = open_in_memory().unwrap();
        let steps = ["CREATE TABLE a (x INTEGER)", "ALTER TABLE a ADD COLUMN y INTEGER"];
        migrate(&mut conn, "m", &steps[..1]).unwrap();
        migrate(&mut conn, "m", &steps).unwrap();
        // A third run applies nothing (the ALTER would fail if it ran twice).
        migrate(&mut conn, "m", &steps).unwrap();
        let versions: i64 = conn.query_row("SELECT COUNT(*) FROM m", [], |r| r.get(0)).unwrap();
        assert_eq!(versions, 2);
        conn.execute("INSERT INTO a (x, y) VALUES (1, 2)", []).unwrap();
    }

    #[test]
    fn a_file_is_opened_in_wal_mode_with_the_chosen_durability() {
        let dir = std::env::temp_dir().join(format!("enishi-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conn = open_file(&dir.join("t.db"), Durability::Full).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2));
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_panicking_call_leaves_the_connection_usable() {
        let shared = SharedConnection::new(open_in_memory().unwrap());
        let panicked: Result<(), _> = shared
            .call(|c| {
                let tx = c.transaction().unwrap();
                tx.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
                panic!("mid-transaction");
            })
            .await;
        assert!(panicked.is_err());
        // The transaction rolled back on unwind; the next call sees no table and works.
        let tables: i64 = shared
            .call(|c| c.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tables, 0);
    }
}
