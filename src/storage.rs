//! One storage handle: every store enishi keeps, opened from one URL.
//!
//! ```no_run
//! # async fn run() -> Result<(), enishi::storage::StorageError> {
//! use enishi::storage::Storage;
//!
//! // Embedded: one SQLite file (WAL, busy timeout, migrations) holds everything.
//! let storage = Storage::from_url("sqlite://target/enishi.sqlite").await?;
//! // Several processes or machines: PostgreSQL through a reconnecting pool.
//! let shared = Storage::builder("postgres://enishi@db/enishi").schema("shop_a").open().await?;
//! # let _ = (storage, shared);
//! # Ok(()) }
//! ```
//!
//! `memory:` keeps everything in the process (tests, demos). The lower-level stores stay
//! public for hosts who assemble their own; [`Storage::from_parts`] takes any mix of them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::campaign::{ClickStore, DeliveryJournal, MemoryClickStore, MemoryJournal};
use crate::channel::{MemoryOptOuts, OptOutStore};
use crate::chat::{ChatStore, MemoryChatStore};
use crate::commerce::sync::{Dataset, StoredDataset};
use crate::line::webhook::{EventDedup, MemoryDedup};
use crate::link::{IncentiveLedger, LinkStore, MemoryLinkStore};

/// How long webhook event IDs are remembered by default (LINE redelivers for about a day).
pub const DEFAULT_DEDUP_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The storage could not be opened or reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The URL names no storage enishi knows.
    #[error(
        "unsupported storage URL scheme `{scheme}`: expected sqlite://PATH, postgres://… or memory:"
    )]
    UnsupportedScheme {
        /// The URL's scheme.
        scheme: String,
    },
    /// The URL names a backend whose cargo feature is off.
    #[error("storage `{scheme}` needs enishi's cargo feature `{feature}`")]
    FeatureDisabled {
        /// The URL's scheme.
        scheme: &'static str,
        /// The feature to enable.
        feature: &'static str,
    },
    /// A store could not be opened (the file, the connection, a migration).
    #[error("opening the {store} store failed")]
    Open {
        /// Which store: `links`, `dedup`, `journal`, `clicks`, `dataset`, `chat`.
        store: &'static str,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database did not answer (see [`Storage::check`]).
    #[error("the storage is unreachable")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn open_err(
    store: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> StorageError {
    move |source| StorageError::Open { store, source }
}

/// Which database a [`Storage`] uses.
#[derive(Clone)]
enum Backend {
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite(std::path::PathBuf),
    #[cfg(feature = "postgres")]
    Postgres {
        pool: crate::postgres::Pool,
        url: Arc<str>,
        schema: Arc<str>,
    },
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            // The URL may carry a password: only the schema is shown.
            #[cfg(feature = "postgres")]
            Self::Postgres { schema, .. } => {
                f.debug_struct("Postgres").field("schema", schema).finish_non_exhaustive()
            }
        }
    }
}

/// Every store enishi keeps, behind one handle: links (with the incentive ledger), webhook
/// de-duplication, the delivery journal, clicks, the synced shop and the chatbot's store.
/// Cheap to clone (the stores are shared).
///
/// Scenario state is not stored on its own: it is rebuilt from the synced shop and the
/// journal, whose batch IDs make a repeated tick harmless.
#[derive(Clone)]
pub struct Storage {
    links: Arc<dyn LinkStore>,
    incentives: Arc<dyn IncentiveLedger>,
    dedup: Arc<dyn EventDedup>,
    journal: Arc<dyn DeliveryJournal>,
    clicks: Arc<dyn ClickStore>,
    dataset: Arc<dyn StoredDataset>,
    chat: Arc<dyn ChatStore>,
    opt_outs: Arc<dyn OptOutStore>,
    backend: Backend,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// Options for [`Storage`]; see [`Storage::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct StorageBuilder {
    url: String,
    channel: String,
    schema: String,
    pool_size: usize,
    dedup_retention: Duration,
}

impl StorageBuilder {
    /// The LINE channel the links and the chat belong to (default `default`): one database can
    /// hold the links and chats of several channels.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// The PostgreSQL schema (default `enishi`); ignored by SQLite and memory.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most PostgreSQL connections this process opens (default
    /// [`crate::postgres::DEFAULT_POOL_SIZE`] when the feature is on, else 8).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long webhook event IDs are remembered (default [`DEFAULT_DEDUP_RETENTION`]).
    pub fn dedup_retention(mut self, retention: Duration) -> Self {
        self.dedup_retention = retention;
        self
    }

    /// Opens (creating and migrating) every store.
    ///
    /// # Errors
    /// [`StorageError::UnsupportedScheme`] or [`StorageError::FeatureDisabled`] for the URL,
    /// [`StorageError::Open`] when a store cannot be opened.
    pub async fn open(self) -> Result<Storage, StorageError> {
        let url = self.url.trim();
        let scheme = url.split_once(':').map_or(url, |(s, _)| s);
        match scheme {
            "memory" => Ok(Storage::in_memory_with(&self)),
            "sqlite" | "file" => self.open_sqlite(),
            "postgres" | "postgresql" => self.open_postgres().await,
            other => Err(StorageError::UnsupportedScheme { scheme: other.to_owned() }),
        }
    }

    #[cfg(feature = "sqlite")]
    fn open_sqlite(&self) -> Result<Storage, StorageError> {
        use crate::campaign::{SqliteClickStore, SqliteJournal};
        use crate::commerce::sync::SqliteDataset;
        use crate::line::webhook::SqliteDedup;
        use crate::link::SqliteLinkStore;
        let rest = self.url.trim().split_once(':').map_or("", |(_, rest)| rest);
        let path = std::path::PathBuf::from(rest.strip_prefix("//").unwrap_or(rest));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err("links")(Box::new(e)))?;
        }
        let boxed = |e: Box<dyn std::error::Error + Send + Sync>| e;
        let links = SqliteLinkStore::open(&path, &self.channel)
            .map_err(|e| open_err("links")(boxed(Box::new(e))))?;
        let dedup = SqliteDedup::open(&path, self.dedup_retention)
            .map_err(|e| open_err("dedup")(Box::new(e)))?;
        let journal = SqliteJournal::open(&path).map_err(|e| open_err("journal")(Box::new(e)))?;
        let clicks = SqliteClickStore::open(&path).map_err(|e| open_err("clicks")(Box::new(e)))?;
        let dataset = SqliteDataset::open(&path).map_err(|e| open_err("dataset")(Box::new(e)))?;
        let chat = crate::chat::SqliteChatStore::open(&path, &self.channel)
            .map_err(|e| open_err("chat")(Box::new(e)))?;
        let opt_outs = crate::channel::SqliteOptOuts::open(&path)
            .map_err(|e| open_err("opt-outs")(Box::new(e)))?;
        let links = Arc::new(links);
        Ok(Storage {
            incentives: Arc::clone(&links) as Arc<dyn IncentiveLedger>,
            links,
            dedup: Arc::new(dedup),
            journal: Arc::new(journal),
            clicks: Arc::new(clicks),
            dataset: Arc::new(dataset),
            chat: Arc::new(chat),
            opt_outs: Arc::new(opt_outs),
            backend: Backend::Sqlite(path),
        })
    }

    #[cfg(not(feature = "sqlite"))]
    fn open_sqlite(&self) -> Result<Storage, StorageError> {
        Err(StorageError::FeatureDisabled { scheme: "sqlite", feature: "sqlite" })
    }

    #[cfg(feature = "postgres")]
    async fn open_postgres(&self) -> Result<Storage, StorageError> {
        use crate::campaign::{PostgresClickStore, PostgresJournal};
        use crate::commerce::sync::PostgresDataset;
        use crate::line::webhook::PostgresDedup;
        use crate::link::PostgresLinkStore;
        let url = self.url.trim();
        let pool = crate::postgres::pool_with_size(url, self.pool_size)
            .map_err(|e| open_err("links")(Box::new(e)))?;
        let schema = self.schema.as_str();
        let links = PostgresLinkStore::from_pool(pool.clone(), schema, &self.channel)
            .await
            .map_err(|e| open_err("links")(Box::new(e)))?;
        let dedup = PostgresDedup::from_pool(pool.clone(), schema, self.dedup_retention)
            .await
            .map_err(|e| open_err("dedup")(Box::new(e)))?;
        let journal = PostgresJournal::from_pool(pool.clone(), schema)
            .await
            .map_err(|e| open_err("journal")(Box::new(e)))?;
        let clicks = PostgresClickStore::from_pool(pool.clone(), schema)
            .await
            .map_err(|e| open_err("clicks")(Box::new(e)))?;
        let dataset =
            PostgresDataset::from_pool(pool.clone(), schema).await.map_err(open_err("dataset"))?;
        let chat = crate::chat::PostgresChatStore::from_pool(pool.clone(), schema, &self.channel)
            .await
            .map_err(|e| open_err("chat")(Box::new(e)))?;
        let opt_outs = crate::channel::PostgresOptOuts::from_pool(pool.clone(), schema)
            .await
            .map_err(|e| open_err("opt-outs")(Box::new(e)))?;
        let links = Arc::new(links);
        Ok(Storage {
            incentives: Arc::clone(&links) as Arc<dyn IncentiveLedger>,
            links,
            dedup: Arc::new(dedup),
            journal: Arc::new(journal),
            clicks: Arc::new(clicks),
            dataset: Arc::new(dataset),
            chat: Arc::new(chat),
            opt_outs: Arc::new(opt_outs),
            backend: Backend::Postgres { pool, url: url.into(), schema: schema.into() },
        })
    }

    #[cfg(not(feature = "postgres"))]
    async fn open_postgres(&self) -> Result<Storage, StorageError> {
        Err(StorageError::FeatureDisabled { scheme: "postgres", feature: "postgres" })
    }
}

impl Storage {
    /// Options for the storage at `url`: `sqlite://PATH` (feature `sqlite`; a relative path
    /// after `sqlite://`, an absolute one after `sqlite:///`), `postgres://…` (feature
    /// `postgres`) or `memory:`.
    pub fn builder(url: impl Into<String>) -> StorageBuilder {
        StorageBuilder {
            url: url.into(),
            channel: "default".into(),
            schema: "enishi".into(),
            pool_size: 8,
            dedup_retention: DEFAULT_DEDUP_RETENTION,
        }
    }

    /// Opens the storage at `url` with the default options (see [`Storage::builder`]).
    ///
    /// # Errors
    /// As [`StorageBuilder::open`].
    pub async fn from_url(url: &str) -> Result<Self, StorageError> {
        Self::builder(url).open().await
    }

    /// Opens (creating) the SQLite file at `path`.
    ///
    /// # Errors
    /// As [`StorageBuilder::open`].
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn open(path: impl AsRef<std::path::Path>) -> Result<Self, StorageError> {
        Self::builder(format!("sqlite://{}", path.as_ref().display())).open().await
    }

    /// Connects to PostgreSQL at `url` (schema `enishi`).
    ///
    /// # Errors
    /// As [`StorageBuilder::open`].
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::builder(url).open().await
    }

    /// Everything in this process' memory: nothing survives it.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::in_memory_with(&Self::builder("memory:"))
    }

    fn in_memory_with(options: &StorageBuilder) -> Self {
        let links = Arc::new(MemoryLinkStore::new());
        Self {
            incentives: Arc::clone(&links) as Arc<dyn IncentiveLedger>,
            links,
            dedup: Arc::new(MemoryDedup::new(options.dedup_retention)),
            journal: Arc::new(MemoryJournal::new()),
            clicks: Arc::new(MemoryClickStore::new()),
            dataset: Arc::new(Dataset::new()),
            chat: Arc::new(MemoryChatStore::new().with_channel(&options.channel)),
            opt_outs: Arc::new(MemoryOptOuts::new()),
            backend: Backend::Memory,
        }
    }

    /// A storage made of the host's own stores (see the conformance suites). `incentives` is
    /// usually the link store itself (every enishi link store is an [`IncentiveLedger`]), so
    /// the ledger lives in the links' database. The opt-outs are kept in memory until
    /// [`with_opt_outs`](Self::with_opt_outs) gives the host's store.
    #[must_use]
    pub fn from_parts(
        links: Arc<dyn LinkStore>,
        incentives: Arc<dyn IncentiveLedger>,
        dedup: Arc<dyn EventDedup>,
        journal: Arc<dyn DeliveryJournal>,
        clicks: Arc<dyn ClickStore>,
        dataset: Arc<dyn StoredDataset>,
        chat: Arc<dyn ChatStore>,
    ) -> Self {
        Self {
            links,
            incentives,
            dedup,
            journal,
            clicks,
            dataset,
            chat,
            opt_outs: Arc::new(MemoryOptOuts::new()),
            backend: Backend::Memory,
        }
    }

    /// Uses `store` for the per-channel opt-outs (a host's own store, see
    /// `channel::conformance`).
    #[must_use]
    pub fn with_opt_outs(mut self, store: Arc<dyn OptOutStore>) -> Self {
        self.opt_outs = store;
        self
    }

    /// The per-channel opt-out store of this backend: [`MemoryOptOuts`] for `memory:`,
    /// [`SqliteOptOuts`](crate::channel::SqliteOptOuts) in the same file for SQLite,
    /// [`PostgresOptOuts`](crate::channel::PostgresOptOuts) under the same schema for
    /// PostgreSQL. The unsubscribe route records into it and the channel planner and
    /// dispatcher honour it, so an opt-out outlives restarts wherever the journal does.
    #[must_use]
    pub fn opt_outs(&self) -> Arc<dyn OptOutStore> {
        Arc::clone(&self.opt_outs)
    }

    /// The link store.
    #[must_use]
    pub fn links(&self) -> Arc<dyn LinkStore> {
        Arc::clone(&self.links)
    }

    /// The incentive ledger (points or a coupon granted once per customer): the same store,
    /// in the same database, as [`links`](Self::links).
    #[must_use]
    pub fn incentives(&self) -> Arc<dyn IncentiveLedger> {
        Arc::clone(&self.incentives)
    }

    /// Webhook de-duplication.
    #[must_use]
    pub fn dedup(&self) -> Arc<dyn EventDedup> {
        Arc::clone(&self.dedup)
    }

    /// The delivery journal.
    #[must_use]
    pub fn journal(&self) -> Arc<dyn DeliveryJournal> {
        Arc::clone(&self.journal)
    }

    /// The click store of tracked links.
    #[must_use]
    pub fn clicks(&self) -> Arc<dyn ClickStore> {
        Arc::clone(&self.clicks)
    }

    /// The synced shop.
    #[must_use]
    pub fn dataset(&self) -> Arc<dyn StoredDataset> {
        Arc::clone(&self.dataset)
    }

    /// The chatbot's store (hand-offs, chat attributes, surveys, the conversation log), in the
    /// same database as the other stores and scoped to the builder's
    /// [`channel`](StorageBuilder::channel).
    #[must_use]
    pub fn chat(&self) -> Arc<dyn ChatStore> {
        Arc::clone(&self.chat)
    }

    /// `memory`, `sqlite` or `postgres`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Memory => "memory",
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Whether several processes can share this storage (PostgreSQL).
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.kind() == "postgres"
    }

    /// One round trip to the database: what `/readyz` asks.
    ///
    /// # Errors
    /// [`StorageError::Unreachable`] while the database does not answer.
    pub async fn check(&self) -> Result<(), StorageError> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres { pool, .. } => {
                let client =
                    pool.get().await.map_err(|e| StorageError::Unreachable(Box::new(e)))?;
                client
                    .simple_query("SELECT 1")
                    .await
                    .map_err(|e| StorageError::Unreachable(Box::new(e)))?;
                Ok(())
            }
            _ => {
                let probe = crate::CampaignId::new("readiness")
                    .map_err(|e| StorageError::Unreachable(Box::new(e)))?;
                self.journal
                    .counts(&probe)
                    .await
                    .map(drop)
                    .map_err(|e| StorageError::Unreachable(Box::new(e)))
            }
        }
    }

    /// Tries to become the one process (of all sharing this storage) that runs sync and
    /// scenario ticks. PostgreSQL: a session advisory lock on a connection of its own, so a
    /// process that dies or loses its connection lets go at once. SQLite and memory belong to
    /// one process: always granted.
    ///
    /// # Errors
    /// [`StorageError::Unreachable`] when the database cannot be asked.
    pub async fn try_lead(&self, name: &str) -> Result<Option<Leadership>, StorageError> {
        let _ = name;
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres { url, schema, .. } => {
                leader::try_lock(url, &format!("{schema}/{name}")).await
            }
            _ => Ok(Some(Leadership { held: LeaderHold::Local })),
        }
    }

    /// The webhook hub's persistent queue in this storage's database (feature `client`):
    /// SQLite: the `enishi_hub_queue` table in the same file; PostgreSQL: in the same schema,
    /// through the same pool, shared by every process; memory: a new in-process queue on each
    /// call (nothing survives the process). Hand it to
    /// [`HubBuilder::queue_shared`](crate::hub::HubBuilder::queue_shared).
    ///
    /// # Errors
    /// [`StorageError::Open`] (store `hub`) when the table cannot be created.
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub async fn hub_queue(&self) -> Result<Arc<dyn crate::hub::HubQueue>, StorageError> {
        // Only the database arms can fail to open their table.
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        let failed =
            |e: crate::hub::QueueError| StorageError::Open { store: "hub", source: e.into() };
        match &self.backend {
            Backend::Memory => Ok(Arc::new(crate::hub::MemoryHubQueue::new())),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(path) => {
                Ok(Arc::new(crate::hub::SqliteHubQueue::open(path).map_err(failed)?))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres { pool, schema, .. } => Ok(Arc::new(
                crate::hub::PostgresHubQueue::from_pool(pool.clone(), schema)
                    .await
                    .map_err(failed)?,
            )),
        }
    }
}

/// Held while this process leads; dropping it lets another process lead.
#[derive(Debug)]
pub struct Leadership {
    held: LeaderHold,
}

#[derive(Debug)]
enum LeaderHold {
    Local,
    #[cfg(feature = "postgres")]
    Postgres(leader::Lock),
}

impl Leadership {
    /// Whether the lead still holds (a lost PostgreSQL connection loses it).
    #[must_use]
    pub fn is_held(&self) -> bool {
        match &self.held {
            LeaderHold::Local => true,
            #[cfg(feature = "postgres")]
            LeaderHold::Postgres(lock) => lock.is_held(),
        }
    }
}

#[cfg(feature = "postgres")]
mod leader {
    use sha2::{Digest as _, Sha256};

    use super::{LeaderHold, Leadership, StorageError};

    /// A session advisory lock and the connection holding it.
    pub(super) struct Lock {
        client: tokio_postgres::Client,
        task: tokio::task::JoinHandle<()>,
    }

    impl std::fmt::Debug for Lock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Lock").field("held", &self.is_held()).finish()
        }
    }

    impl Lock {
        pub(super) fn is_held(&self) -> bool {
            !self.client.is_closed() && !self.task.is_finished()
        }
    }

    impl Drop for Lock {
        fn drop(&mut self) {
            // Closing the session releases the lock.
            self.task.abort();
        }
    }

    fn key(name: &str) -> i64 {
        let digest = Sha256::digest(name.as_bytes());
        let mut bytes = [0_u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }

    fn unreachable(e: tokio_postgres::Error) -> StorageError {
        StorageError::Unreachable(Box::new(e))
    }

    pub(super) async fn try_lock(
        url: &str,
        name: &str,
    ) -> Result<Option<Leadership>, StorageError> {
        let (client, task) =
            crate::postgres::connect_one(url).await.map_err(StorageError::Unreachable)?;
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key(name)])
            .await
            .map_err(|e| {
                task.abort();
                unreachable(e)
            })?;
        let locked: bool = row.get(0);
        let lock = Lock { client, task };
        Ok(locked.then_some(Leadership { held: LeaderHold::Postgres(lock) }))
    }
}
