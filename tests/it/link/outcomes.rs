//! Every account-link outcome is told to the user (a LINE reply), the shop (a `tracing` event
//! and the `enishi_link_outcomes_total` counter) and the host (the outcome hook), failures
//! included.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use enishi::line::webhook::{Event, parse_event};
use enishi::link::{
    AccountLinkOutcome, AccountLinkReport, ConflictPolicy, LinkError, LinkOutcomeHook,
    LinkReplyTexts, LinkSource, LinkStore, LinkStoreError, RejectReason,
};
use enishi::testkit::user_id;

use super::flow::{Setup, cust, nonce_of, now, setup, token_of, uid};

const CONFLICT: &str = "ショップまでお問い合わせください";

/// A default reply as the user reads it (the shop's name filled in).
pub(crate) fn default_text(template: Option<String>) -> String {
    template.unwrap().replace("{{ shop }}", "ショップ")
}
const RETRY: &str = "リッチメニューからもう一度お試しください";

// ---- capture: tracing events, metrics, hook calls ------------------------------------------

/// Records every `enishi::link` event as `field=value` text.
#[derive(Default, Clone)]
struct Events(Arc<Mutex<Vec<String>>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl tracing::Subscriber for Events {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("enishi::link")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Events {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Counts counters by `name{label=value,…}`.
#[derive(Debug, Default)]
struct Counters(Mutex<HashMap<String, Arc<AtomicU64>>>);

struct Count(Arc<AtomicU64>);

impl metrics::CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> =
            key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let cell = self.0.lock().unwrap().entry(name).or_default().clone();
        metrics::Counter::from_arc(Arc::new(Count(cell)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

impl Counters {
    fn get(&self, outcome: &str, reason: &str) -> u64 {
        let name = format!("enishi_link_outcomes_total{{outcome={outcome},reason={reason}}}");
        self.0.lock().unwrap().get(&name).map_or(0, |c| c.load(Ordering::SeqCst))
    }
}

#[derive(Debug, Default)]
struct Reports(Mutex<Vec<AccountLinkReport>>);

#[async_trait::async_trait]
impl LinkOutcomeHook for Reports {
    async fn on_account_link(&self, report: &AccountLinkReport) {
        self.0.lock().unwrap().push(report.clone());
    }
}

impl Reports {
    fn all(&self) -> Vec<AccountLinkReport> {
        self.0.lock().unwrap().clone()
    }
}

// ---- helpers --------------------------------------------------------------------------------

/// An `accountLink` ok event for user `n` with a reply token the fake LINE accepts.
pub(super) fn link_event(s: &Setup, n: u64, nonce: &str, redelivery: bool) -> Event {
    let reply_token = s.line.issue_reply_token(&user_id(n)).unwrap();
    parse_event(&format!(
        r#"{{"type":"accountLink","source":{{"type":"user","userId":"{}"}},"replyToken":"{reply_token}",
        "timestamp":1700000000000,"mode":"active","webhookEventId":"01HLINK{n}",
        "deliveryContext":{{"isRedelivery":{redelivery}}},"link":{{"result":"ok","nonce":"{nonce}"}}}}"#,
        user_id(n)
    ))
    .unwrap()
}

/// A nonce bound to customer `c`, issued through the link token of user `n`.
pub(super) async fn nonce_for(s: &Setup, n: u64, c: u32) -> String {
    let token = token_of(&s.linker.start(&uid(n), now()).await.unwrap().link_url);
    nonce_of(&s.linker.complete_login(&token, &cust(c), now()).await.unwrap().redirect)
}

pub(super) fn replies_to(s: &Setup, n: u64) -> Vec<String> {
    s.line
        .messages_for(&user_id(n))
        .iter()
        .filter(|m| m["type"] == "text")
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

struct Watch {
    s: Setup,
    reports: Arc<Reports>,
}

async fn watch(
    configure: impl FnOnce(enishi::link::AccountLinkerBuilder) -> enishi::link::AccountLinkerBuilder,
) -> Watch {
    let reports = Arc::new(Reports::default());
    let s = setup({
        let reports = reports.clone();
        move |b| configure(b.outcome_hook(reports))
    })
    .await;
    Watch { s, reports }
}

// ---- tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn link_outcome_conflict_replies_logs_counts_and_calls_the_hook() {
    let (events, counters) = (Events::default(), Counters::default());
    let _trace = tracing::subscriber::set_default(events.clone());
    let _metrics = metrics::set_default_local_recorder(&counters);
    let w = watch(|b| b).await;
    // The nonce is issued before the other link lands (the sign-in check refuses it after).
    let nonce = nonce_for(&w.s, 1, 1).await;
    w.s.store
        .link(&uid(1), &cust(9), LinkSource::Backend, ConflictPolicy::Reject, now())
        .await
        .unwrap();

    let e = w.s.linker.handle_event(&link_event(&w.s, 1, &nonce, false), now()).await;
    assert!(matches!(e, Err(LinkError::Store(LinkStoreError::Conflict(_)))), "{e:?}");

    let replies = replies_to(&w.s, 1);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].contains(CONFLICT) && !replies[0].contains("連携しました"), "{replies:?}");

    let logged = events.all();
    let line = logged.iter().find(|l| l.contains("outcome=conflict")).expect("a conflict event");
    assert!(line.starts_with("WARN"), "{line}");
    assert!(line.contains(&format!("line_user={}", user_id(1))) && line.contains("customer=C-1"));
    assert!(!logged.iter().any(|l| l.contains(&nonce)), "the nonce is never logged: {logged:?}");

    assert_eq!(counters.get("conflict", "none"), 1);
    assert_eq!(counters.get("linked", "none"), 0);

    let reports = w.reports.all();
    assert_eq!(reports.len(), 1);
    let AccountLinkOutcome::Conflict(c) = &reports[0].outcome else { panic!("{reports:?}") };
    assert_eq!(c.user_linked_to, Some(cust(9)));
    assert_eq!(reports[0].line_user, Some(uid(1)));
    assert!(reports[0].replied);
    // The existing link stands.
    assert_eq!(w.s.store.link_of_user(&uid(1)).await.unwrap().unwrap().customer, cust(9));
}

#[tokio::test]
async fn link_outcome_expired_forged_and_replayed_nonces_say_start_again() {
    let (events, counters) = (Events::default(), Counters::default());
    let _trace = tracing::subscriber::set_default(events.clone());
    let _metrics = metrics::set_default_local_recorder(&counters);
    let w = watch(|b| b).await;

    // Expired.
    let nonce = nonce_for(&w.s, 1, 1).await;
    let late = now() + chrono::Duration::minutes(11);
    let e = w.s.linker.handle_event(&link_event(&w.s, 1, &nonce, false), late).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Expired));
    // Forged.
    let e =
        w.s.linker
            .handle_event(&link_event(&w.s, 2, "forged-nonce-0123456789", false), now())
            .await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Unknown));
    // Replayed by someone else than the user it linked (not a redelivery, user not linked).
    let nonce3 = nonce_for(&w.s, 3, 3).await;
    let e = w.s.linker.handle_event(&link_event(&w.s, 4, &nonce3, false), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Mismatched));
    w.s.linker.handle_event(&link_event(&w.s, 3, &nonce3, false), now()).await.unwrap();
    let e = w.s.linker.handle_event(&link_event(&w.s, 5, &nonce3, false), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Replayed));

    for n in [1, 2, 4, 5] {
        let replies = replies_to(&w.s, n);
        assert_eq!(replies.len(), 1, "user {n}: {replies:?}");
        assert!(replies[0].contains(RETRY) && !replies[0].contains("連携しました"), "{replies:?}");
    }
    // The user whose link worked heard so.
    assert_eq!(replies_to(&w.s, 3), [default_text(LinkReplyTexts::default().linked)]);

    for reason in ["expired", "unknown", "mismatched", "replayed"] {
        assert_eq!(counters.get("rejected", reason), 1, "{reason}");
        assert!(
            events
                .all()
                .iter()
                .any(|l| l.contains("outcome=rejected") && l.contains(&format!("reason={reason}"))),
            "{reason}: {:?}",
            events.all()
        );
    }
    assert_eq!(counters.get("linked", "none"), 1);
    assert!(!events.all().iter().any(|l| l.contains(&nonce) || l.contains(&nonce3)));

    let outcomes: Vec<_> = w.reports.all().into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes.len(), 5);
    assert_eq!(outcomes[0], AccountLinkOutcome::Rejected { reason: RejectReason::Expired });
    assert_eq!(outcomes[1], AccountLinkOutcome::Rejected { reason: RejectReason::Unknown });
    assert!(matches!(outcomes[3], AccountLinkOutcome::Linked(_)));
    assert_eq!(outcomes[4], AccountLinkOutcome::Rejected { reason: RejectReason::Replayed });
}

#[tokio::test]
async fn link_outcome_redelivered_success_is_not_called_a_failure() {
    let w = watch(|b| b).await;
    let nonce = nonce_for(&w.s, 1, 1).await;
    let first = link_event(&w.s, 1, &nonce, false);
    w.s.linker.handle_event(&first, now()).await.unwrap();
    // LINE redelivers the same event; and a duplicate arrives without the redelivery flag.
    let e = w.s.linker.handle_event(&link_event(&w.s, 1, &nonce, true), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Replayed));
    let e = w.s.linker.handle_event(&link_event(&w.s, 1, &nonce, false), now()).await;
    assert_eq!(e.unwrap_err().reject_reason(), Some(RejectReason::Replayed));
    assert_eq!(replies_to(&w.s, 1), [default_text(LinkReplyTexts::default().linked)]);
    let reports = w.reports.all();
    assert_eq!(reports.len(), 3);
    assert!(!reports[1].replied && !reports[2].replied);
}

#[tokio::test]
async fn link_outcome_texts_are_overridable_and_can_be_turned_off() {
    let texts = LinkReplyTexts {
        linked: None,
        conflict: Some("Already linked elsewhere: please contact us.".into()),
        ..LinkReplyTexts::default()
    };
    let w = watch(|b| b.reply_texts(texts)).await;
    let nonce = nonce_for(&w.s, 1, 1).await;
    let second = nonce_for(&w.s, 2, 1).await;
    w.s.linker.handle_event(&link_event(&w.s, 1, &nonce, false), now()).await.unwrap();
    assert!(replies_to(&w.s, 1).is_empty());
    assert!(!w.reports.all()[0].replied);

    let nonce = second;
    let _ = w.s.linker.handle_event(&link_event(&w.s, 2, &nonce, false), now()).await;
    assert_eq!(replies_to(&w.s, 2), ["Already linked elsewhere: please contact us."]);
}

#[tokio::test]
async fn link_outcome_failed_result_is_reported_without_a_reply() {
    let counters = Counters::default();
    let _metrics = metrics::set_default_local_recorder(&counters);
    let w = watch(|b| b).await;
    let nonce = nonce_for(&w.s, 1, 1).await;
    let failed = parse_event(&format!(
        r#"{{"type":"accountLink","timestamp":1,"mode":"active","webhookEventId":"01HF",
        "deliveryContext":{{"isRedelivery":false}},"link":{{"result":"failed","nonce":"{nonce}"}}}}"#
    ))
    .unwrap();
    w.s.linker.handle_event(&failed, now()).await.unwrap();
    let reports = w.reports.all();
    assert_eq!(reports[0].outcome, AccountLinkOutcome::Failed);
    assert_eq!(reports[0].customer, Some(cust(1)));
    assert_eq!(counters.get("failed", "none"), 1);
}
