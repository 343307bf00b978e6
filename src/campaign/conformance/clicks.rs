//! The conformance suite every [`ClickStore`] runs.
//!
//! Each check takes handles onto one new, empty store and panics with a message saying what
//! the store got wrong; [`run_all`] runs them all, each on a store from a factory:
//!
//! ```
//! use std::sync::Arc;
//! use enishi::campaign::{ClickStore, MemoryClickStore};
//!
//! # #[tokio::main]
//! # async fn main() {
//! enishi::campaign::conformance::clicks::run_all(|| async {
//!     vec![Arc::new(MemoryClickStore::new()) as Arc<dyn ClickStore>]
//! })
//! .await;
//! # }
//! ```
#![allow(clippy::missing_panics_doc)] // every check panics by design, like `assert!`

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::campaign::{Click, ClickStore, DEFAULT_CLICK_WINDOW};
use crate::conformance::Handles;
use crate::{CampaignId, CustomerId};

fn campaign(s: &str) -> CampaignId {
    CampaignId::new(s).unwrap_or_else(|e| panic!("{e}"))
}

fn customer(s: &str) -> CustomerId {
    CustomerId::new(s).unwrap_or_else(|e| panic!("{e}"))
}

fn at(days: i64, seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 6, 1, 0, 0).single().unwrap_or(DateTime::UNIX_EPOCH)
        + Duration::days(days)
        + Duration::seconds(seconds)
}

/// Four clicks: three of `scenario.welcome` (one customer twice on one link, a day apart; one
/// with a URL that needs escaping), one of `sale`. Recorded out of time order.
fn sample() -> [Click; 4] {
    let welcome = campaign("scenario.welcome");
    let x = "https://a.example/x";
    [
        Click::new(welcome.clone(), Some("d3".into()), customer("c/2"), x, at(1, 0)),
        Click::new(welcome.clone(), None, customer("c1"), "https://a.example/ü?q=1", at(0, 0)),
        Click::new(campaign("sale"), None, customer("c3"), "https://a.example/", at(0, 0)),
        Click::new(welcome, Some("d3".into()), customer("c/2"), x, at(2, 0)),
    ]
}

async fn record_sample(s: &Handles<'_, dyn ClickStore>) -> [Click; 4] {
    let clicks = sample();
    for (i, click) in clicks.iter().enumerate() {
        s[i].record(click).await.unwrap_or_else(|e| panic!("recording a click failed: {e:?}"));
    }
    clicks
}

/// Clicks come back per campaign, oldest first, with every field as recorded; a campaign
/// without clicks has none.
pub async fn clicks_are_per_campaign_oldest_first(stores: &[Arc<dyn ClickStore>]) {
    let s = Handles::new(stores);
    let clicks = record_sample(&s).await;
    let welcome = campaign("scenario.welcome");
    let got = s[1].clicks(&welcome).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(got, vec![clicks[1].clone(), clicks[0].clone(), clicks[3].clone()], "oldest first");
    let sale = s[0].clicks(&campaign("sale")).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(sale, vec![clicks[2].clone()], "clicks of another campaign");
    let none = s[0].clicks(&campaign("none")).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(none.is_empty(), "a campaign without clicks has {} clicks", none.len());
}

/// `clickers` names each customer who clicked once, since a time (inclusive) or ever.
pub async fn clickers_since(stores: &[Arc<dyn ClickStore>]) {
    let s = Handles::new(stores);
    record_sample(&s).await;
    let welcome = campaign("scenario.welcome");
    let since = s[1].clickers(&welcome, Some(at(1, 0))).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(since, BTreeSet::from([customer("c/2")]), "clickers at or after day 1");
    let ever = s[0].clickers(&welcome, None).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(ever, BTreeSet::from([customer("c1"), customer("c/2")]), "clickers ever");
}

/// A replayed link within the window is kept raw but counts once; a click a day later counts
/// again (with [`DEFAULT_CLICK_WINDOW`]).
pub async fn replays_are_kept_raw_and_counted_once(stores: &[Arc<dyn ClickStore>]) {
    let s = Handles::new(stores);
    let clicks = record_sample(&s).await;
    let welcome = campaign("scenario.welcome");
    let mut replay = clicks[0].clone();
    replay.at = at(1, 3600);
    s[1].record(&replay).await.unwrap_or_else(|e| panic!("{e:?}"));
    let raw = s[0].clicks(&welcome).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(raw.len(), 4, "raw clicks are kept");
    let unique = s[0]
        .unique_clicks(&welcome, DEFAULT_CLICK_WINDOW)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(unique, vec![clicks[1].clone(), clicks[0].clone(), clicks[3].clone()]);
    let unique =
        s[1].unique_clicks(&welcome, Duration::days(2)).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(unique, vec![clicks[1].clone(), clicks[0].clone()], "a 2-day window");
}

/// Many tasks on every handle record at once: every click is kept.
pub async fn concurrent_clicks_are_all_kept(stores: &[Arc<dyn ClickStore>]) {
    const CLICKS: i64 = 64;
    let s = Handles::new(stores);
    let c = campaign("burst");
    let tasks: Vec<_> = (0..CLICKS)
        .map(|i| {
            let store = Arc::clone(&s[usize::try_from(i).unwrap_or(0)]);
            let click = Click::new(
                c.clone(),
                None,
                customer(&format!("c{i}")),
                "https://a.example/",
                at(0, i % 5),
            );
            tokio::spawn(async move { store.record(&click).await })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap_or_else(|e| panic!("a recording task panicked: {e}"))
            .unwrap_or_else(|e| panic!("recording a click failed: {e:?}"));
    }
    let got = s[0].clicks(&c).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(got.len(), CLICKS as usize, "clicks recorded at once were lost");
    assert!(got.windows(2).all(|w| w[0].at <= w[1].at), "not oldest first");
    let who: BTreeSet<_> = got.iter().map(|c| c.customer.clone()).collect();
    assert_eq!(who.len(), CLICKS as usize, "a click was stored twice or lost");
}

/// Runs every check, each on a new, empty store from `new_store` (one or more handles onto
/// one store; a new schema, file or database each time).
pub async fn run_all<F, Fut>(mut new_store: F)
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<Arc<dyn ClickStore>>> + Send,
{
    clicks_are_per_campaign_oldest_first(&new_store().await).await;
    clickers_since(&new_store().await).await;
    replays_are_kept_raw_and_counted_once(&new_store().await).await;
    concurrent_clicks_are_all_kept(&new_store().await).await;
}
