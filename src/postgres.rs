//! PostgreSQL connection pools shared by the stores (feature `postgres`).
//!
//! Every PostgreSQL store ([`PostgresLinkStore`](crate::link::PostgresLinkStore),
//! [`PostgresDedup`](crate::line::webhook::PostgresDedup),
//! [`PostgresJournal`](crate::campaign::PostgresJournal),
//! [`PostgresClickStore`](crate::campaign::PostgresClickStore),
//! [`PostgresDataset`](crate::commerce::sync::PostgresDataset)) checks a connection out of a
//! [`deadpool_postgres`] pool for each call. A connection that the server (or a restart, or a
//! network cut) closed is dropped when it is next checked out and a new one is opened, so the
//! stores come back on their own once PostgreSQL is reachable again. A call that was running
//! on a connection when it was cut fails once with the store's backend error.
//!
//! The stores' `connect(url, …)` constructors build a pool with [`pool`]. To share one pool
//! between stores, or to connect with TLS, build the pool yourself and use their `from_pool`
//! constructors:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use enishi::link::PostgresLinkStore;
//! use enishi::line::webhook::PostgresDedup;
//!
//! let pool = enishi::postgres::pool("postgres://enishi@db/enishi")?;
//! let links = PostgresLinkStore::from_pool(pool.clone(), "enishi", "1650000000").await?;
//! let dedup = PostgresDedup::from_pool(pool, "enishi", enishi::line::webhook::DEFAULT_RETENTION).await?;
//! # let _ = (links, dedup);
//! # Ok(()) }
//! ```

use std::str::FromStr as _;

use chrono::Utc;
pub use deadpool_postgres;
pub use deadpool_postgres::Pool;
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::{Client, NoTls};

/// The most connections a pool made by [`pool`] opens at once.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// A pool could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The connection URL is not a PostgreSQL connection string.
    #[error("the PostgreSQL connection URL is not valid")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The pool rejected its configuration.
    #[error("the PostgreSQL pool could not be built")]
    Build(#[source] deadpool_postgres::BuildError),
    /// The URL asks for TLS (`sslmode=require`) and enishi was built without the
    /// `postgres-tls` feature.
    #[error(
        "the PostgreSQL URL asks for TLS (sslmode=require): enable enishi's `postgres-tls` feature"
    )]
    TlsUnavailable,
}

/// A pool of at most [`DEFAULT_POOL_SIZE`] connections to `url`. See [`pool_with_size`].
///
/// # Errors
/// [`PoolError::InvalidUrl`] for a string that is not a connection URL.
pub fn pool(url: &str) -> Result<Pool, PoolError> {
    pool_with_size(url, DEFAULT_POOL_SIZE)
}

/// A pool of at most `max_size` connections to `url`. With `sslmode=require` in the URL the
/// connections use TLS (feature `postgres-tls`: rustls, the webpki roots); `sslmode=prefer`
/// (the default) and `disable` connect in plain text. For another TLS set-up build a
/// [`deadpool_postgres::Manager`] with your connector. Nothing is connected yet:
/// connections are opened when they are first needed. Each checkout first asks the server
/// for an empty query, so a connection closed behind the pool's back is replaced before a
/// store uses it.
///
/// # Errors
/// [`PoolError::InvalidUrl`] for a string that is not a connection URL;
/// [`PoolError::Build`] when the pool rejects its configuration;
/// [`PoolError::TlsUnavailable`] for `sslmode=require` without the `postgres-tls` feature.
pub fn pool_with_size(url: &str, max_size: usize) -> Result<Pool, PoolError> {
    let config = tokio_postgres::Config::from_str(url).map_err(PoolError::InvalidUrl)?;
    let recycle = ManagerConfig { recycling_method: RecyclingMethod::Verified };
    let manager = if wants_tls(&config) {
        Manager::from_config(config, tls::connector()?, recycle)
    } else {
        Manager::from_config(config, NoTls, recycle)
    };
    Pool::builder(manager).max_size(max_size.max(1)).build().map_err(PoolError::Build)
}

/// `sslmode=require`: the server must speak TLS.
pub(crate) fn wants_tls(config: &tokio_postgres::Config) -> bool {
    config.get_ssl_mode() == tokio_postgres::config::SslMode::Require
}

/// One connection outside any pool (the leader's lock lives on it), with TLS as the URL says.
#[cfg(feature = "client")]
pub(crate) async fn connect_one(
    url: &str,
) -> Result<
    (tokio_postgres::Client, tokio::task::JoinHandle<()>),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let config = tokio_postgres::Config::from_str(url)?;
    let log = |e: tokio_postgres::Error| {
        tracing::warn!(target: "enishi::postgres", error = %e, "a PostgreSQL connection closed");
    };
    if wants_tls(&config) {
        let (client, connection) = config.connect(tls::connector()?).await?;
        Ok((client, tokio::spawn(async move { connection.await.unwrap_or_else(log) })))
    } else {
        let (client, connection) = config.connect(NoTls).await?;
        Ok((client, tokio::spawn(async move { connection.await.unwrap_or_else(log) })))
    }
}

#[cfg(feature = "postgres-tls")]
mod tls {
    use std::sync::Arc;

    use super::PoolError;

    /// rustls with ring and the webpki roots.
    pub(super) fn connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, PoolError> {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| PoolError::TlsUnavailable)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

#[cfg(not(feature = "postgres-tls"))]
mod tls {
    use super::PoolError;

    pub(super) fn connector() -> Result<tokio_postgres::NoTls, PoolError> {
        Err(PoolError::TlsUnavailable)
    }
}

/// What a valid schema name looks like (for error messages).
pub(crate) const SCHEMA_NAME_RULE: &str =
    "expected 1 to 63 characters of [a-z0-9_], not starting with a digit";

/// Schema names are input we own: lowercase identifiers only, so they never need quoting.
pub(crate) fn is_valid_schema_name(schema: &str) -> bool {
    (1..=63).contains(&schema.len())
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A step of [`migrate`] failed: what it was doing, and PostgreSQL's error.
#[derive(Debug, thiserror::Error)]
#[error("postgres: {doing}")]
pub(crate) struct MigrationError {
    /// What the migration was doing, e.g. `locking the migration`.
    pub(crate) doing: &'static str,
    /// PostgreSQL's error.
    #[source]
    pub(crate) source: tokio_postgres::Error,
}

/// Creates `schema` if needed and applies the numbered `migrations` not yet recorded in
/// `<schema>.<store>_migrations`, in one transaction under a transaction-scoped advisory lock
/// (`<store>_migrate:<schema>`), so processes starting at once migrate the schema once. `{s}`
/// in a migration is replaced by the schema name. `schema` must be a valid schema name
/// ([`is_valid_schema_name`]).
pub(crate) async fn migrate(
    client: &mut Client,
    schema: &str,
    store: &str,
    migrations: &[&str],
) -> Result<(), MigrationError> {
    let step = |doing| move |source| MigrationError { doing, source };
    let tx = client.transaction().await.map_err(step("beginning the migration"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("{store}_migrate:{schema}")],
    )
    .await
    .map_err(step("locking the migration"))?;
    let table = format!("{schema}.{store}_migrations");
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {table} (
             version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL);"
    ))
    .await
    .map_err(step("creating the migration table"))?;
    let done: i64 = tx
        .query_one(&format!("SELECT COALESCE(MAX(version), 0) FROM {table}"), &[])
        .await
        .map_err(step("reading the schema version"))?
        .get(0);
    for (version, sql) in (1_i64..).zip(migrations) {
        if version > done {
            tx.batch_execute(&sql.replace("{s}", schema)).await.map_err(step("migrating"))?;
            tx.execute(
                &format!("INSERT INTO {table} (version, applied_at_ms) VALUES ($1, $2)"),
                &[&version, &Utc::now().timestamp_millis()],
            )
            .await
            .map_err(step("recording the schema version"))?;
        }
    }
    tx.commit().await.map_err(step("committing the migration"))
}
