//! What an operator sees: Prometheus text on `/metrics`, `tracing` events — and never a secret.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use enishi::app::Enishi;
use enishi::campaign::{Campaign, MessageTemplate};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;
use enishi::testkit::DEFAULT_ECFORCE_TOKEN;
use metrics_exporter_prometheus::PrometheusBuilder;

use super::harness::{SECRET, event, post_webhook, serve, shop, user};

#[tokio::test]
async fn app_metrics_are_scraped_as_prometheus_text() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // This test's thread only (the runtime is current-thread): other tests are not disturbed.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let shop = shop(4).await;
    let app = shop.builder(Storage::in_memory()).build().unwrap();
    app.sync().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let router = app.router().merge(Enishi::metrics_router(handle));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("enishi_customers 4"), "{text}");
    assert!(text.contains("enishi_linked_customers 2"), "{text}");
    assert!(text.contains("enishi_sync_records_total"), "{text}");
}

/// Writes every event (target, message and fields) of the threads that asked into one text.
///
/// Installed as the global default once, so no callsite is ever cached as "nobody listens"
/// (a thread-local `set_default` races with other tests hitting a callsite first).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

thread_local! {
    static CAPTURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The process-wide capture, started on this thread.
fn capture() -> Captured {
    static GLOBAL: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    let captured = GLOBAL
        .get_or_init(|| {
            let c = Captured::default();
            tracing::subscriber::set_global_default(c.clone()).expect("no other global subscriber");
            c
        })
        .clone();
    CAPTURING.with(|c| c.set(true));
    captured
}

struct Line<'a>(&'a mut String);

impl tracing::field::Visit for Line<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
}

impl tracing::Subscriber for Captured {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        CAPTURING.with(std::cell::Cell::get)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut line = format!("span {}:", span.metadata().name());
        span.record(&mut Line(&mut line));
        self.0.lock().unwrap().push_str(&(line + "\n"));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = String::from("record:");
        values.record(&mut Line(&mut line));
        self.0.lock().unwrap().push_str(&(line + "\n"));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{} {}:", event.metadata().level(), event.metadata().target());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push_str(&(line + "\n"));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn app_tracing_shows_the_work_and_no_secret() {
    let captured = capture();

    let shop = shop(4).await;
    let app = shop.builder(Storage::in_memory()).build().unwrap();
    app.sync().await.unwrap();
    let base = serve(&app).await;
    assert_eq!(
        post_webhook(&base, &event("unfollow", &user(3), "01APPTRACE1", Utc::now())).await,
        200
    );
    let campaign =
        Campaign::new("traced".parse().unwrap(), [MessageTemplate::text("こんにちは").unwrap()]);
    let plan =
        app.plan(&campaign, &SegmentDefinition::parse("line linked").unwrap()).await.unwrap();
    app.send(plan).await.unwrap();
    // Everything above ran in this task or on this thread's runtime.
    CAPTURING.with(|c| c.set(false));
    let text = captured.0.lock().unwrap().clone();
    for expected in ["shop synced", "campaign planned"] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    for secret in [shop.line.channel_access_token(), SECRET, DEFAULT_ECFORCE_TOKEN] {
        assert!(!text.contains(secret), "a secret leaked into the logs:\n{text}");
    }
    assert!(!format!("{app:?}").contains(shop.line.channel_access_token()));
}
