//! The PostgreSQL rich-menu store (feature `postgres`).

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};

use super::rules::MenuKey;
use super::store::{MenuOperation, RichMenuStore, RichMenuStoreError, StoredMenu};
use crate::{LineUserId, RichMenuId};

/// `{s}` is replaced by the schema name.
const MIGRATIONS: &[&str] = &["CREATE TABLE {s}.enishi_richmenu_menus (
        key TEXT COLLATE \"C\" PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        rich_menu_id TEXT NOT NULL
    );
    CREATE TABLE {s}.enishi_richmenu_applied (
        line_user TEXT COLLATE \"C\" PRIMARY KEY,
        rich_menu_id TEXT NOT NULL
    );
    CREATE TABLE {s}.enishi_richmenu_ops (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT COLLATE \"C\" NOT NULL UNIQUE,
        body TEXT NOT NULL,
        settled BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX enishi_richmenu_ops_pending ON {s}.enishi_richmenu_ops (seq) WHERE NOT settled;"];

fn pg(message: &'static str) -> impl FnOnce(tokio_postgres::Error) -> RichMenuStoreError {
    move |e| RichMenuStoreError::storage(format!("postgres: {message}"), e)
}

fn corrupt(what: &'static str, message: impl ToString) -> RichMenuStoreError {
    RichMenuStoreError::Corrupt { what, message: message.to_string() }
}

/// A [`RichMenuStore`] in PostgreSQL tables under one schema (several processes share it;
/// each call checks a connection out of a pool, see [`crate::postgres`]).
#[derive(Clone)]
pub struct PostgresRichMenuStore {
    pool: Pool,
    schema: String,
}

impl fmt::Debug for PostgresRichMenuStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresRichMenuStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresRichMenuStore {
    /// Makes a pool to `url` (without TLS) and migrates `schema`.
    ///
    /// # Errors
    /// As [`from_pool`](Self::from_pool), or [`RichMenuStoreError::Storage`] for a bad URL.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, RichMenuStoreError> {
        let pool = crate::postgres::pool(url)
            .map_err(|e| RichMenuStoreError::storage("postgres: making the connection pool", e))?;
        Self::from_pool(pool, schema).await
    }

    /// Uses connections from `pool`: creates `schema` if needed and applies pending
    /// migrations.
    ///
    /// # Errors
    /// [`RichMenuStoreError::Storage`] for a schema name outside `[a-z_][a-z0-9_]*` or when
    /// PostgreSQL fails or cannot be reached.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, RichMenuStoreError> {
        if !crate::postgres::is_valid_schema_name(schema) {
            return Err(RichMenuStoreError::Storage {
                message: format!(
                    "postgres: invalid schema name {schema:?} ({})",
                    crate::postgres::SCHEMA_NAME_RULE
                ),
                source: None,
            });
        }
        let store = Self { pool, schema: schema.to_owned() };
        let mut client = store.checkout().await?;
        crate::postgres::migrate(&mut client, schema, "enishi_richmenu", MIGRATIONS)
            .await
            .map_err(|e| RichMenuStoreError::storage(e.to_string(), e.source))?;
        Ok(store)
    }

    async fn checkout(&self) -> Result<Object, RichMenuStoreError> {
        self.pool.get().await.map_err(|e| RichMenuStoreError::storage("postgres: connecting", e))
    }
}

async fn write_rows(
    tx: &tokio_postgres::Transaction<'_>,
    s: &str,
    rows: &[(LineUserId, Option<RichMenuId>)],
) -> Result<(), RichMenuStoreError> {
    let mut users = Vec::new();
    let mut menus = Vec::new();
    let mut removed = Vec::new();
    // The last row for a user wins, as in the other stores.
    let mut last: HashMap<&str, Option<&str>> = HashMap::new();
    for (user, menu) in rows {
        last.insert(user.as_str(), menu.as_ref().map(RichMenuId::as_str));
    }
    for (user, menu) in last {
        match menu {
            Some(menu) => {
                users.push(user);
                menus.push(menu);
            }
            None => removed.push(user),
        }
    }
    if !users.is_empty() {
        tx.execute(
            &format!(
                "INSERT INTO {s}.enishi_richmenu_applied (line_user, rich_menu_id)
                 SELECT * FROM unnest($1::text[], $2::text[])
                 ON CONFLICT (line_user) DO UPDATE SET rich_menu_id = excluded.rich_menu_id"
            ),
            &[&users, &menus],
        )
        .await
        .map_err(pg("writing applied menus"))?;
    }
    if !removed.is_empty() {
        tx.execute(
            &format!("DELETE FROM {s}.enishi_richmenu_applied WHERE line_user = ANY($1)"),
            &[&removed],
        )
        .await
        .map_err(pg("removing applied menus"))?;
    }
    Ok(())
}

#[async_trait]
impl RichMenuStore for PostgresRichMenuStore {
    async fn menus(&self) -> Result<Vec<StoredMenu>, RichMenuStoreError> {
        let client = self.checkout().await?;
        let s = &self.schema;
        let rows = client
            .query(&format!("SELECT key, fingerprint, rich_menu_id FROM {s}.enishi_richmenu_menus ORDER BY key"), &[])
            .await
            .map_err(pg("reading menus"))?;
        rows.iter()
            .map(|r| {
                let key =
                    MenuKey::new(r.get::<_, String>(0)).map_err(|e| corrupt("menu key", e))?;
                let id = RichMenuId::new(r.get::<_, String>(2))
                    .map_err(|e| corrupt("rich menu ID", e))?;
                Ok(StoredMenu::new(key, r.get::<_, String>(1), id))
            })
            .collect()
    }

    async fn put_menu(&self, menu: &StoredMenu) -> Result<(), RichMenuStoreError> {
        let client = self.checkout().await?;
        let s = &self.schema;
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.enishi_richmenu_menus (key, fingerprint, rich_menu_id) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
                         rich_menu_id = excluded.rich_menu_id"
                ),
                &[&menu.key.as_str(), &menu.fingerprint, &menu.rich_menu_id.as_str()],
            )
            .await
            .map_err(pg("storing a menu"))?;
        Ok(())
    }

    async fn applied(&self) -> Result<HashMap<LineUserId, RichMenuId>, RichMenuStoreError> {
        let client = self.checkout().await?;
        let s = &self.schema;
        let rows = client
            .query(&format!("SELECT line_user, rich_menu_id FROM {s}.enishi_richmenu_applied"), &[])
            .await
            .map_err(pg("reading applied menus"))?;
        rows.iter()
            .map(|r| {
                let user = LineUserId::new(r.get::<_, String>(0))
                    .map_err(|e| corrupt("LINE user ID", e))?;
                let menu = RichMenuId::new(r.get::<_, String>(1))
                    .map_err(|e| corrupt("rich menu ID", e))?;
                Ok((user, menu))
            })
            .collect()
    }

    async fn set_applied(
        &self,
        rows: &[(LineUserId, Option<RichMenuId>)],
    ) -> Result<(), RichMenuStoreError> {
        let mut client = self.checkout().await?;
        let tx = client.transaction().await.map_err(pg("beginning"))?;
        write_rows(&tx, &self.schema, rows).await?;
        tx.commit().await.map_err(pg("committing"))
    }

    async fn record(&self, op: &MenuOperation) -> Result<(), RichMenuStoreError> {
        let body = serde_json::to_string(op).map_err(|e| corrupt("operation", e))?;
        let client = self.checkout().await?;
        let s = &self.schema;
        let inserted = client
            .execute(
                &format!(
                    "INSERT INTO {s}.enishi_richmenu_ops (id, body) VALUES ($1, $2)
                     ON CONFLICT (id) DO NOTHING"
                ),
                &[&op.id, &body],
            )
            .await
            .map_err(pg("recording an operation"))?;
        if inserted == 1 {
            return Ok(());
        }
        let row = client
            .query_one(
                &format!("SELECT body FROM {s}.enishi_richmenu_ops WHERE id = $1"),
                &[&op.id],
            )
            .await
            .map_err(pg("reading an operation"))?;
        if row.get::<_, String>(0) == body {
            Ok(())
        } else {
            Err(RichMenuStoreError::Conflict(op.id.clone()))
        }
    }

    async fn update(&self, op: &MenuOperation) -> Result<(), RichMenuStoreError> {
        let body = serde_json::to_string(op).map_err(|e| corrupt("operation", e))?;
        let client = self.checkout().await?;
        let s = &self.schema;
        let n = client
            .execute(
                &format!(
                    "UPDATE {s}.enishi_richmenu_ops SET body = $2 WHERE id = $1 AND NOT settled"
                ),
                &[&op.id, &body],
            )
            .await
            .map_err(pg("updating an operation"))?;
        if n == 0 { Err(RichMenuStoreError::NotPending(op.id.clone())) } else { Ok(()) }
    }

    async fn pending(&self) -> Result<Vec<MenuOperation>, RichMenuStoreError> {
        let client = self.checkout().await?;
        let s = &self.schema;
        let rows = client
            .query(
                &format!("SELECT body FROM {s}.enishi_richmenu_ops WHERE NOT settled ORDER BY seq"),
                &[],
            )
            .await
            .map_err(pg("reading operations"))?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.get::<_, String>(0)).map_err(|e| corrupt("operation", e))
            })
            .collect()
    }

    async fn settle(
        &self,
        id: &str,
        applied: &[(LineUserId, Option<RichMenuId>)],
    ) -> Result<(), RichMenuStoreError> {
        let mut client = self.checkout().await?;
        let s = self.schema.clone();
        let tx = client.transaction().await.map_err(pg("beginning"))?;
        let n = tx
            .execute(
                &format!("UPDATE {s}.enishi_richmenu_ops SET settled = TRUE WHERE id = $1 AND NOT settled"),
                &[&id],
            )
            .await
            .map_err(pg("settling an operation"))?;
        if n == 0 {
            return Err(RichMenuStoreError::NotPending(id.to_owned()));
        }
        write_rows(&tx, &s, applied).await?;
        tx.commit().await.map_err(pg("committing"))
    }
}
