//! The SQLite rich-menu store (feature `sqlite`).

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::rules::MenuKey;
use super::store::{MenuOperation, RichMenuStore, RichMenuStoreError, StoredMenu};
use crate::sqlite::{self, Durability, SharedConnection};
use crate::{LineUserId, RichMenuId};

const MIGRATIONS: &[&str] = &["CREATE TABLE enishi_richmenu_menus (
        key TEXT PRIMARY KEY NOT NULL,
        fingerprint TEXT NOT NULL,
        rich_menu_id TEXT NOT NULL
    );
    CREATE TABLE enishi_richmenu_applied (
        line_user TEXT PRIMARY KEY NOT NULL,
        rich_menu_id TEXT NOT NULL
    );
    CREATE TABLE enishi_richmenu_ops (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        settled INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX enishi_richmenu_ops_pending ON enishi_richmenu_ops (seq) WHERE settled = 0;"];

fn sq(message: &'static str) -> impl FnOnce(rusqlite::Error) -> RichMenuStoreError {
    move |e| RichMenuStoreError::storage(format!("sqlite: {message}"), e)
}

fn join(e: tokio::task::JoinError) -> RichMenuStoreError {
    RichMenuStoreError::storage("sqlite: the blocking task failed", e)
}

fn corrupt(what: &'static str, message: impl ToString) -> RichMenuStoreError {
    RichMenuStoreError::Corrupt { what, message: message.to_string() }
}

/// A [`RichMenuStore`] in an SQLite file: the embedded default. Every write is one
/// transaction (`synchronous = FULL`: what was applied survives a power cut).
#[derive(Debug, Clone)]
pub struct SqliteRichMenuStore {
    conn: SharedConnection,
}

impl SqliteRichMenuStore {
    /// Opens (creating and migrating if needed) the store at `path`.
    ///
    /// # Errors
    /// [`RichMenuStoreError::Storage`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RichMenuStoreError> {
        let conn = sqlite::open_file(path.as_ref(), Durability::Full)
            .map_err(sq("opening the database"))?;
        Self::from_connection(conn)
    }

    /// A private in-memory database (tests, demos).
    ///
    /// # Errors
    /// [`RichMenuStoreError::Storage`].
    pub fn in_memory() -> Result<Self, RichMenuStoreError> {
        Self::from_connection(sqlite::open_in_memory().map_err(sq("opening the database"))?)
    }

    fn from_connection(mut conn: Connection) -> Result<Self, RichMenuStoreError> {
        sqlite::migrate(&mut conn, "enishi_richmenu_migrations", MIGRATIONS)
            .map_err(sq("migrating the schema"))?;
        Ok(Self { conn: SharedConnection::new(conn) })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, RichMenuStoreError> + Send + 'static,
    ) -> Result<T, RichMenuStoreError> {
        self.conn.call(f).await.map_err(join)?
    }
}

fn write_rows(
    tx: &rusqlite::Transaction<'_>,
    rows: &[(LineUserId, Option<RichMenuId>)],
) -> Result<(), RichMenuStoreError> {
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO enishi_richmenu_applied (line_user, rich_menu_id) VALUES (?1, ?2)
             ON CONFLICT (line_user) DO UPDATE SET rich_menu_id = excluded.rich_menu_id",
        )
        .map_err(sq("preparing an upsert"))?;
    let mut delete = tx
        .prepare_cached("DELETE FROM enishi_richmenu_applied WHERE line_user = ?1")
        .map_err(sq("preparing a delete"))?;
    for (user, menu) in rows {
        match menu {
            Some(menu) => upsert.execute(params![user.as_str(), menu.as_str()]),
            None => delete.execute(params![user.as_str()]),
        }
        .map_err(sq("writing an applied menu"))?;
    }
    Ok(())
}

#[async_trait]
impl RichMenuStore for SqliteRichMenuStore {
    async fn menus(&self) -> Result<Vec<StoredMenu>, RichMenuStoreError> {
        self.call(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT key, fingerprint, rich_menu_id FROM enishi_richmenu_menus ORDER BY key",
                )
                .map_err(sq("reading menus"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(sq("reading menus"))?;
            let mut out = Vec::new();
            for row in rows {
                let (key, fingerprint, id) = row.map_err(sq("reading menus"))?;
                let key = MenuKey::new(key).map_err(|e| corrupt("menu key", e))?;
                let id = RichMenuId::new(id).map_err(|e| corrupt("rich menu ID", e))?;
                out.push(StoredMenu::new(key, fingerprint, id));
            }
            Ok(out)
        })
        .await
    }

    async fn put_menu(&self, menu: &StoredMenu) -> Result<(), RichMenuStoreError> {
        let menu = menu.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO enishi_richmenu_menus (key, fingerprint, rich_menu_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
                     rich_menu_id = excluded.rich_menu_id",
                params![menu.key.as_str(), menu.fingerprint, menu.rich_menu_id.as_str()],
            )
            .map_err(sq("storing a menu"))?;
            Ok(())
        })
        .await
    }

    async fn applied(&self) -> Result<HashMap<LineUserId, RichMenuId>, RichMenuStoreError> {
        self.call(|c| {
            let mut stmt = c
                .prepare("SELECT line_user, rich_menu_id FROM enishi_richmenu_applied")
                .map_err(sq("reading applied menus"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sq("reading applied menus"))?;
            let mut out = HashMap::new();
            for row in rows {
                let (user, menu) = row.map_err(sq("reading applied menus"))?;
                let user = LineUserId::new(user).map_err(|e| corrupt("LINE user ID", e))?;
                let menu = RichMenuId::new(menu).map_err(|e| corrupt("rich menu ID", e))?;
                out.insert(user, menu);
            }
            Ok(out)
        })
        .await
    }

    async fn set_applied(
        &self,
        rows: &[(LineUserId, Option<RichMenuId>)],
    ) -> Result<(), RichMenuStoreError> {
        let rows = rows.to_vec();
        self.call(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sq("beginning"))?;
            write_rows(&tx, &rows)?;
            tx.commit().map_err(sq("committing"))
        })
        .await
    }

    async fn record(&self, op: &MenuOperation) -> Result<(), RichMenuStoreError> {
        let id = op.id.clone();
        let body = serde_json::to_string(op).map_err(|e| corrupt("operation", e))?;
        self.call(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sq("beginning"))?;
            let existing: Option<String> = tx
                .query_row("SELECT body FROM enishi_richmenu_ops WHERE id = ?1", params![id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sq("reading an operation"))?;
            match existing {
                Some(existing) if existing == body => return Ok(()),
                Some(_) => return Err(RichMenuStoreError::Conflict(id)),
                None => {}
            }
            tx.execute(
                "INSERT INTO enishi_richmenu_ops (id, body) VALUES (?1, ?2)",
                params![id, body],
            )
            .map_err(sq("recording an operation"))?;
            tx.commit().map_err(sq("committing"))
        })
        .await
    }

    async fn update(&self, op: &MenuOperation) -> Result<(), RichMenuStoreError> {
        let id = op.id.clone();
        let body = serde_json::to_string(op).map_err(|e| corrupt("operation", e))?;
        self.call(move |c| {
            let n = c
                .execute(
                    "UPDATE enishi_richmenu_ops SET body = ?2 WHERE id = ?1 AND settled = 0",
                    params![id, body],
                )
                .map_err(sq("updating an operation"))?;
            if n == 0 { Err(RichMenuStoreError::NotPending(id)) } else { Ok(()) }
        })
        .await
    }

    async fn pending(&self) -> Result<Vec<MenuOperation>, RichMenuStoreError> {
        self.call(|c| {
            let mut stmt = c
                .prepare("SELECT body FROM enishi_richmenu_ops WHERE settled = 0 ORDER BY seq")
                .map_err(sq("reading operations"))?;
            let rows =
                stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sq("reading operations"))?;
            let mut out = Vec::new();
            for row in rows {
                let body = row.map_err(sq("reading operations"))?;
                out.push(serde_json::from_str(&body).map_err(|e| corrupt("operation", e))?);
            }
            Ok(out)
        })
        .await
    }

    async fn settle(
        &self,
        id: &str,
        applied: &[(LineUserId, Option<RichMenuId>)],
    ) -> Result<(), RichMenuStoreError> {
        let (id, rows) = (id.to_owned(), applied.to_vec());
        self.call(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sq("beginning"))?;
            let n = tx
                .execute(
                    "UPDATE enishi_richmenu_ops SET settled = 1 WHERE id = ?1 AND settled = 0",
                    params![id],
                )
                .map_err(sq("settling an operation"))?;
            if n == 0 {
                return Err(RichMenuStoreError::NotPending(id));
            }
            write_rows(&tx, &rows)?;
            tx.commit().map_err(sq("committing"))
        })
        .await
    }
}
