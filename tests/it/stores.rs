//! What the store tests share: a fresh SQLite file or PostgreSQL schema per test, removed
//! afterwards.

/// What to remove after a test: nothing, an SQLite file, or a PostgreSQL schema.
pub(crate) enum Cleanup {
    None,
    #[cfg(feature = "sqlite")]
    File(std::path::PathBuf),
    #[cfg(feature = "postgres")]
    Schema(String),
}

impl Cleanup {
    /// Removes what the test made.
    pub(crate) async fn run(self) {
        match self {
            Self::None => {}
            #[cfg(feature = "sqlite")]
            Self::File(path) => remove_sqlite(&path),
            #[cfg(feature = "postgres")]
            Self::Schema(schema) => {
                let (client, conn) =
                    tokio_postgres::connect(&crate::pg::url(), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
            }
        }
    }
}

/// A new SQLite file path in the temp directory, `enishi-<what>-<uuid>.sqlite`.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_path(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("enishi-{what}-{}.sqlite", uuid::Uuid::new_v4()))
}

/// Removes an SQLite file and its WAL files.
#[cfg(feature = "sqlite")]
pub(crate) fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// A new schema name, `enishi_<what>_it_<uuid>`.
#[cfg(feature = "postgres")]
pub(crate) fn pg_schema(what: &str) -> String {
    format!("enishi_{what}_it_{}", uuid::Uuid::new_v4().simple())
}

/// A pool of 2 connections to the test database: one per store handle, as in separate
/// processes, so races cross connections, and three copies of the test binary at once stay
/// under the server's `max_connections`.
#[cfg(feature = "postgres")]
pub(crate) fn pg_pool() -> enishi::postgres::Pool {
    enishi::postgres::pool_with_size(&crate::pg::url(), 2).unwrap()
}

/// Unwraps a PostgreSQL store's constructor, saying how to start PostgreSQL when it failed.
#[cfg(feature = "postgres")]
pub(crate) fn pg_needed<T, E: std::fmt::Debug>(made: Result<T, E>) -> T {
    made.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is needed at {} ({e:?}). Start it (see README \"Testing\") or set \
             ENISHI_TEST_DATABASE_URL.",
            crate::pg::url()
        )
    })
}
