//! PostgreSQL helpers shared by the store tests: lose a store's connections on purpose.

/// The test database URL.
pub(crate) fn url() -> String {
    std::env::var("ENISHI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The test database URL with a fresh `application_name`, so a test kills only its own
/// connections. Returns the URL and the name.
pub(crate) fn url_with_app_name() -> (String, String) {
    let name = format!("enishi_it_{}", uuid::Uuid::new_v4().simple());
    let url = url();
    let sep = if url.contains('?') { '&' } else { '?' };
    (format!("{url}{sep}application_name={name}"), name)
}

/// Terminates every server process of connections named `app_name` (as an administrator
/// or a restart would) and returns how many it ended.
pub(crate) async fn terminate(app_name: &str) -> usize {
    let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app_name],
        )
        .await
        .unwrap();
    rows.iter().filter(|r| r.get::<_, bool>(0)).count()
}

/// Runs `call` until it succeeds: at most one failure is allowed (the call that was running
/// on a lost connection). Panics on a second failure.
pub(crate) async fn at_most_one_failure<T, E: std::fmt::Debug, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    match call().await {
        Ok(v) => v,
        Err(first) => match call().await {
            Ok(v) => v,
            Err(second) => {
                panic!("failed twice after a lost connection: {first:?} then {second:?}")
            }
        },
    }
}
