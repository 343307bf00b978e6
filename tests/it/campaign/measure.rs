//! Tests of campaign measure: tracked links, the redirect route, KPI arithmetic and the report.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, NaiveDate, TimeZone as _, Utc};
use enishi::campaign::{
    Batch, BatchOutcome, BatchRecipient, BatchRecord, BatchStatus, BlockFact, Bucket, Click,
    ClickResponse, ClickStore, DEFAULT_CLICK_WINDOW, LineStatsFact, LinkContext, LinkTracker,
    MemoryClickStore, PurchaseFact, ReportInput, ReportOptions, SendFact, TrackError, Transport,
    handle_click, track_route, unique_clicks, uplift,
};
use enishi::line::message::{
    Action, ButtonsTemplate, Emoji, FlexBox, FlexBubble, FlexButton, FlexComponent, FlexLayout,
    ImagemapAction, ImagemapArea, ImagemapMessage, Message, TextMessage, UriAction,
    validate_messages,
};
use enishi::{BatchId, CampaignId, CustomerId};
use serde_json::{Value, json};

const KEY: [u8; 32] = *b"tests: 32 bytes of a random key!";

/// Another valid key, different for each `seed`.
fn key(seed: u8) -> Vec<u8> {
    (0..32).map(|i| seed.wrapping_mul(31).wrapping_add(i)).collect()
}

fn tracker() -> LinkTracker {
    LinkTracker::new(KEY.to_vec(), "https://shop.example/r/").unwrap()
}

fn campaign(s: &str) -> CampaignId {
    s.parse().unwrap()
}

fn customer(s: &str) -> CustomerId {
    s.parse().unwrap()
}

fn context() -> LinkContext {
    LinkContext::new(campaign("scenario.welcome"), customer("c-1")).with_step("day3")
}

fn token_of(url: &str) -> &str {
    url.strip_prefix("https://shop.example/r/").expect("a tracked URL")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 6, 1, 0, 0).unwrap()
}

#[test]
fn measure_tracker_rejects_weak_keys_and_unusable_base_urls() {
    assert!(matches!(
        LinkTracker::new(vec![1; 31], "https://a.example/r"),
        Err(TrackError::KeyTooShort(31))
    ));
    // Long enough, but not random.
    for (weak, why) in [(vec![0; 32], "zero"), (vec![0; 64], "zero"), (vec![42; 32], "same")] {
        let e = LinkTracker::new(weak.clone(), "https://a.example/r").unwrap_err();
        assert!(matches!(e, TrackError::WeakKey(_)) && e.to_string().contains(why), "{e}");
        let e = tracker().with_previous_key(weak).unwrap_err();
        assert!(matches!(e, TrackError::WeakKey(_)), "{e}");
    }
    // A base URL with credentials is refused, and the error does not repeat them.
    let e = LinkTracker::new(KEY.to_vec(), "https://user:s3cret@a.example/r").unwrap_err();
    assert!(matches!(e, TrackError::BaseUrl { .. }), "{e}");
    assert!(!e.to_string().contains("s3cret") && !format!("{e:?}").contains("s3cret"), "{e:?}");
    for bad in
        ["/r", "ftp://a.example/r", "https://a.example/r?x=1", "https://a.example/r#f", "nope"]
    {
        assert!(
            matches!(LinkTracker::new(KEY.to_vec(), bad), Err(TrackError::BaseUrl { .. })),
            "{bad}"
        );
    }
    let debug = format!("{:?}", tracker());
    assert!(!debug.contains("42"), "the key must not appear in Debug: {debug}");
    assert!(debug.contains("redacted"));
    assert!(matches!(
        tracker().tracked_url(&context(), "javascript:alert(1)"),
        Err(TrackError::NotHttp(_))
    ));
    assert!(matches!(
        tracker().tracked_url(&context(), "tel:0312345678"),
        Err(TrackError::NotHttp(_))
    ));
}

#[test]
fn measure_tokens_verify_only_untouched() {
    let t = tracker();
    let target = "https://shop.example/items/42?utm_source=line&x=%E3%81%82#top";
    let url = t.tracked_url(&context(), target).unwrap();
    let token = token_of(&url);
    let link = t.verify(token).unwrap();
    assert_eq!(link.url, target);
    assert_eq!(link.context, context());

    // Another key, a truncated tag, an empty token, garbage, an altered payload.
    let other = LinkTracker::new(key(7), "https://shop.example/r").unwrap();
    assert!(matches!(other.verify(token), Err(TrackError::InvalidToken)));
    let (payload, tag) = token.split_once('.').unwrap();
    for bad in [
        String::new(),
        "x".to_owned(),
        payload.to_owned(),
        format!("{payload}."),
        format!("{payload}.{}", &tag[..tag.len() - 2]),
        format!("{payload}.{tag}A"),
        format!(".{tag}"),
        "a".repeat(10_000),
    ] {
        assert!(matches!(t.verify(&bad), Err(TrackError::InvalidToken)), "{bad}");
    }
    // Same tag, payload pointing elsewhere: the classic open-redirect forgery.
    let forged_payload = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!(["scenario.welcome", "day3", "c-1", "https://evil.example/"]))
            .unwrap(),
    );
    assert!(matches!(t.verify(&format!("{forged_payload}.{tag}")), Err(TrackError::InvalidToken)));
    // Every single-character change of the token is rejected.
    for i in 0..token.len() {
        let mut bytes = token.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        if changed != token {
            assert!(t.verify(&changed).is_err(), "position {i}");
        }
    }
}

#[test]
fn measure_previous_keys_still_verify_after_rotation() {
    let old = tracker();
    let url = old.tracked_url(&context(), "https://shop.example/a").unwrap();
    let rotated = LinkTracker::new(key(9), "https://shop.example/r")
        .unwrap()
        .with_previous_key(KEY.to_vec())
        .unwrap();
    assert_eq!(rotated.verify(token_of(&url)).unwrap().url, "https://shop.example/a");
    let fresh = rotated.tracked_url(&context(), "https://shop.example/a").unwrap();
    assert_ne!(fresh, url, "new links are signed with the new key");
    assert!(old.verify(token_of(&fresh)).is_err());
}

async fn serve(store: Arc<MemoryClickStore>) -> String {
    let app = axum::Router::new().nest("/r", track_route(tracker(), store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/r")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn measure_route_redirects_valid_tokens_and_records_the_click() {
    let store = Arc::new(MemoryClickStore::new());
    let base = serve(store.clone()).await;
    let target = "https://shop.example/items/42?a=1&b=%20x";
    let url = tracker().tracked_url(&context(), target).unwrap();
    let before = Utc::now();
    let response = no_redirects()
        .get(format!("{base}/{}", token_of(&url)))
        .header("user-agent", "Mozilla/5.0 (iPhone) Line/14.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], target);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let clicks = store.all();
    assert_eq!(clicks.len(), 1);
    let click = &clicks[0];
    assert_eq!(
        (click.campaign.as_str(), click.step.as_deref()),
        ("scenario.welcome", Some("day3"))
    );
    assert_eq!(click.customer, customer("c-1"));
    assert_eq!(click.url, target);
    assert!(click.at >= before && click.at <= Utc::now());
    let clickers = store.clickers(&campaign("scenario.welcome"), Some(before)).await.unwrap();
    assert_eq!(clickers.into_iter().collect::<Vec<_>>(), vec![customer("c-1")]);
    assert!(store.clickers(&campaign("other"), None).await.unwrap().is_empty());
}

#[tokio::test]
async fn measure_route_answers_forged_tokens_with_an_error_page_and_no_redirect() {
    let store = Arc::new(MemoryClickStore::new());
    let base = serve(store.clone()).await;
    let url = tracker().tracked_url(&context(), "https://shop.example/a").unwrap();
    let (payload, tag) = token_of(&url).split_once('.').unwrap();
    let evil = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!(["scenario.welcome", "day3", "c-1", "https://evil.example/"]))
            .unwrap(),
    );
    let other_key = LinkTracker::new(key(3), "https://x.example/r").unwrap();
    let foreign = other_key.tracked_url(&context(), "https://evil.example/").unwrap();
    let foreign = foreign.rsplit('/').next().unwrap().to_owned();
    for token in [
        format!("{evil}.{tag}"),
        format!("{payload}.AAAAAAAAAAAAAAAAAAAAAA"),
        foreign,
        "unknown".to_owned(),
        "https%3A%2F%2Fevil.example".to_owned(),
    ] {
        let response = no_redirects().get(format!("{base}/{token}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{token}");
        assert!(response.headers().get("location").is_none(), "{token}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let body = response.text().await.unwrap();
        assert!(body.contains("このリンクは無効です"));
        assert!(!body.contains("evil"), "the page never echoes the token");
    }
    assert!(store.all().is_empty(), "no click recorded for an invalid token");
}

#[tokio::test]
async fn measure_route_does_not_count_previews_or_head_requests() {
    let store = Arc::new(MemoryClickStore::new());
    let base = serve(store.clone()).await;
    let url = tracker().tracked_url(&context(), "https://shop.example/a").unwrap();
    let link = format!("{base}/{}", token_of(&url));
    let preview = no_redirects()
        .get(&link)
        .header("user-agent", "facebookexternalhit/1.1;line-poker/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 302);
    let head = no_redirects().head(&link).send().await.unwrap();
    assert_eq!(head.status(), 302);
    assert_eq!(head.headers()["location"], "https://shop.example/a");
    assert!(store.all().is_empty());
    no_redirects().get(&link).send().await.unwrap();
    assert_eq!(store.all().len(), 1);
}

/// Every tracked URL in `value`, verified back to its target.
fn tracked_targets(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            for part in s.split(|c: char| c.is_whitespace() || !c.is_ascii() || "()".contains(c)) {
                if let Some(token) =
                    part.trim_end_matches('.').strip_prefix("https://shop.example/r/")
                {
                    out.push(tracker().verify(token).unwrap().url);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| tracked_targets(i, out)),
        Value::Object(map) => map.values().for_each(|i| tracked_targets(i, out)),
        _ => {}
    }
}

#[test]
fn measure_rewriting_text_keeps_everything_but_the_urls() {
    let text = "$ 春のセール https://shop.example/sale?x=1&y=2。詳しくは(https://shop.example/faq)へ $ \
                See https://shop.example/en. Call tel:0312345678, mail x@shop.example; https://";
    let emoji_second =
        text.encode_utf16().enumerate().filter(|(_, u)| *u == u16::from(b'$')).nth(1).unwrap().0;
    let message: Message = TextMessage::new(text)
        .with_emoji(Emoji::new(0, "5ac1bfd5040ab15980c9b435", "001"))
        .with_emoji(Emoji::new(emoji_second as u32, "5ac1bfd5040ab15980c9b435", "002"))
        .into();
    let rewritten = tracker().rewrite(&message, &context()).unwrap();
    validate_messages(std::slice::from_ref(&rewritten)).unwrap();
    let Message::Text(m) = &rewritten else { panic!("still a text message") };

    let mut targets = Vec::new();
    tracked_targets(&json!(m.text), &mut targets);
    assert_eq!(
        targets,
        [
            "https://shop.example/sale?x=1&y=2",
            "https://shop.example/faq",
            "https://shop.example/en"
        ]
    );
    // Putting the original URLs back gives the original text.
    let mut restored = m.text.clone();
    for part in m.text.split(|c: char| c.is_whitespace() || !c.is_ascii() || c == '(' || c == ')') {
        if let Some(token) = part.trim_end_matches('.').strip_prefix("https://shop.example/r/") {
            let original = tracker().verify(token).unwrap().url;
            restored = restored.replace(part.trim_end_matches('.'), &original);
        }
    }
    assert_eq!(restored, text);
    // Emoji still point at their `$`.
    let units: Vec<u16> = m.text.encode_utf16().collect();
    assert_eq!(m.emojis[0].index, 0);
    assert_eq!(units[m.emojis[1].index as usize], u16::from(b'$'));
    assert!(m.emojis[1].index as usize > emoji_second);
}

#[test]
fn measure_rewriting_templates_imagemaps_and_flex_touches_only_link_uris() {
    let buttons = Message::template(
        "Sale https://shop.example/alt",
        ButtonsTemplate::new("Spring sale")
            .with_thumbnail_image_url("https://cdn.example/thumb.jpg")
            .with_action(Action::uri("Shop", "https://shop.example/sale"))
            .with_action(Action::uri("Call", "tel:0312345678"))
            .with_action(Action::postback("Later", "action=later")),
    );
    let imagemap = ImagemapMessage::new("https://cdn.example/imagemap", "Imagemap", 1040)
        .with_action(ImagemapAction::uri(
            ImagemapArea::new(0, 0, 520, 1040),
            "https://shop.example/left",
        ))
        .with_action(ImagemapAction::message(ImagemapArea::new(520, 0, 520, 1040), "right"));
    let mut open =
        UriAction::new("https://shop.example/m").with_desktop_uri("https://shop.example/pc");
    open.label = Some("Open".into());
    let flex = Message::flex(
        "Flex",
        FlexBubble::new().with_body(FlexBox::new(
            FlexLayout::Vertical,
            vec![FlexComponent::from(FlexButton::new(open))],
        )),
    );
    let messages = vec![buttons, Message::from(imagemap), flex];
    let rewritten = tracker().rewrite_all(&messages, &context()).unwrap();
    validate_messages(&rewritten).unwrap();
    let before = serde_json::to_value(&messages).unwrap();
    let after = serde_json::to_value(&rewritten).unwrap();
    let mut targets = Vec::new();
    tracked_targets(&after, &mut targets);
    let mut sorted = targets.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "https://shop.example/left",
            "https://shop.example/m",
            "https://shop.example/pc",
            "https://shop.example/sale"
        ]
    );
    // Alt text, media URLs, tel: and postbacks are untouched.
    assert_eq!(after[0]["altText"], before[0]["altText"]);
    assert_eq!(after[0]["template"]["thumbnailImageUrl"], "https://cdn.example/thumb.jpg");
    assert_eq!(after[0]["template"]["actions"][1], before[0]["template"]["actions"][1]);
    assert_eq!(after[0]["template"]["actions"][2], before[0]["template"]["actions"][2]);
    assert_eq!(after[1]["baseUrl"], "https://cdn.example/imagemap");
    assert_eq!(after[1]["actions"][1], before[1]["actions"][1]);
}

#[test]
fn measure_rewriting_refuses_urls_longer_than_line_allows() {
    let long = format!("https://shop.example/{}", "a".repeat(900));
    let message =
        Message::template("x", ButtonsTemplate::new("x").with_action(Action::uri("Go", long)));
    assert!(matches!(
        tracker().rewrite(&message, &context()),
        Err(TrackError::TooLong { field: "uri", max: 1000, .. })
    ));
}

fn at(days: i64, seconds: i64) -> DateTime<Utc> {
    t0() + Duration::days(days) + Duration::seconds(seconds)
}

fn send(c: &str, step: &str, who: &str, when: DateTime<Utc>) -> SendFact {
    SendFact::sent(campaign(c), Some(step.to_owned()), customer(who), when)
}

#[test]
fn measure_block_windows_include_exactly_one_and_seven_days() {
    let mut input = ReportInput::new();
    let cases = [
        ("b-before", Some(at(0, -1))), // blocked before the send: not counted
        ("b-at", Some(at(0, 0))),      // at the send: 1 d and 7 d
        ("b-1d", Some(at(1, 0))),      // exactly 24 h: 1 d and 7 d
        ("b-1d+1s", Some(at(1, 1))),   // 7 d only
        ("b-7d", Some(at(7, 0))),      // exactly 168 h: 7 d
        ("b-7d+1s", Some(at(7, 1))),   // neither
        ("b-never", None),
    ];
    for (who, blocked) in cases {
        input.sends.push(send("scenario.w", "s1", who, t0()));
        if let Some(when) = blocked {
            input.blocks.push(BlockFact::new(customer(who), when));
        }
    }
    let report = input.build(&ReportOptions::default());
    let k = &report.campaigns[0].steps[0].kpis;
    assert_eq!((k.sent, k.blocked_1d, k.blocked_7d), (7, 2, 4));
    assert_eq!(k.block_rate_1d, Some(2.0 / 7.0));
    assert_eq!(k.block_rate_7d, Some(4.0 / 7.0));
}

#[test]
fn measure_kpis_conversions_revenue_and_uplift_on_hand_made_data() {
    let mut input = ReportInput::new();
    let c = "scenario.welcome";
    // 10 treatment sends of step "d0": 4 convert within 7 days (one of them twice), one
    // orders 7 days + 1 s later (outside), one ordered before the send.
    for i in 0..10 {
        input.sends.push(send(c, "d0", &format!("t{i}"), t0()));
    }
    input.orders.push(PurchaseFact::new(customer("t0"), at(0, 60), 1_000));
    input.orders.push(PurchaseFact::new(customer("t0"), at(2, 0), 500));
    input.orders.push(PurchaseFact::new(customer("t1"), at(7, 0), 2_000));
    input.orders.push(PurchaseFact::new(customer("t2"), at(3, 0), 3_000));
    input.orders.push(PurchaseFact::new(customer("t3"), at(6, 0), 4_000));
    input.orders.push(PurchaseFact::new(customer("t4"), at(7, 1), 9_999));
    input.orders.push(PurchaseFact::new(customer("t5"), at(0, -1), 9_999));
    // One send LINE did not accept.
    input.sends[9] = input.sends[9].clone().undelivered();
    // 5 holdout customers: 1 converts.
    for i in 0..5 {
        input.sends.push(SendFact::holdout(
            campaign(c),
            Some("d0".into()),
            customer(&format!("h{i}")),
            t0(),
        ));
    }
    input.orders.push(PurchaseFact::new(customer("h0"), at(1, 0), 700));
    // Tracked clicks: t0 twice, t1 once → 2 clickers.
    for who in ["t0", "t0", "t1"] {
        input.clicks.push(Click::new(
            campaign(c),
            Some("d0".into()),
            customer(who),
            "https://shop.example/",
            at(0, 30),
        ));
    }
    let day = NaiveDate::from_ymd_opt(2026, 4, 6).unwrap();
    input.line_stats.push(LineStatsFact::new(
        campaign(c),
        Some("d0".into()),
        day,
        day,
        Some(6),
        None,
    ));

    let report = input.build(&ReportOptions::default().with_title("t"));
    let step = &report.campaigns[0].steps[0];
    let k = &step.kpis;
    assert_eq!((k.sent, k.delivered), (10, 9));
    assert_eq!((k.conversions, k.revenue), (4, 1_000 + 500 + 2_000 + 3_000 + 4_000));
    assert_eq!(k.conversion_rate, Some(0.4));
    assert_eq!((k.holdout, k.holdout_conversions, k.holdout_revenue), (5, 1, 700));
    assert_eq!(k.holdout_conversion_rate, Some(0.2));
    assert_eq!(k.clickers, 2);
    assert_eq!(k.clicks, 2, "t0's second click at the same moment is a replay");
    assert_eq!(k.click_rate, Some(2.0 / 9.0));
    assert_eq!((k.opened, k.clicked_line), (Some(6), None));
    assert_eq!(k.open_rate, Some(6.0 / 9.0));
    let u = k.uplift.as_ref().unwrap();
    assert!((u.difference - 0.2).abs() < 1e-12);
    assert!(u.low < 0.0 && u.high > 0.2 && !u.is_significant(), "{u:?}");
    assert!((u.relative.unwrap() - 1.0).abs() < 1e-12);
    // One weekly bucket (Monday 2026-04-06, JST), with the same rates.
    assert_eq!(step.timeline.len(), 1);
    assert_eq!(step.timeline[0].start, day);
    assert_eq!(step.timeline[0].conversion_rate, Some(0.4));
    // Totals equal the single step.
    assert_eq!(&report.campaigns[0].totals, k);
    // A shorter window loses the 7-day order.
    let short = input.build(&ReportOptions::default().with_conversion_window(Duration::days(6)));
    assert_eq!(short.campaigns[0].steps[0].kpis.conversions, 3);
}

#[test]
fn measure_uplift_interval_matches_newcombe() {
    // Newcombe (1998), "Interval estimation for the difference between independent
    // proportions", example (a): 56/70 vs 48/80 → method 10 gives 0.0524 to 0.3339.
    let u = uplift(56, 70, 48, 80).unwrap();
    assert!((u.difference - (0.8 - 0.6)).abs() < 1e-12);
    assert!((u.low - 0.0524).abs() < 5e-4, "{}", u.low);
    assert!((u.high - 0.3339).abs() < 5e-4, "{}", u.high);
    assert!(u.is_significant());
    assert_eq!(u.method, "newcombe_hybrid_score");
    // Example (h) of the same paper: 10/10 vs 0/20 → 0.6791 to 1.0000.
    let u = uplift(10, 10, 0, 20).unwrap();
    assert!((u.low - 0.6791).abs() < 5e-4, "{}", u.low);
    assert!((u.high - 1.0).abs() < 5e-4, "{}", u.high);
    assert_eq!(u.relative, None, "no relative uplift over a zero baseline");
    assert!(uplift(1, 10, 0, 0).is_none());
    assert!(uplift(11, 10, 0, 5).is_none());
}

#[test]
fn measure_sends_come_from_journal_records_with_scenario_steps() {
    let recipient = |c: &str, n: u64| BatchRecipient {
        customer: customer(c),
        line_user: enishi::testkit::user_id(n).parse().unwrap(),
    };
    let scenario = Batch::new(
        BatchId::new("welcome/day3/c/1/2").unwrap(),
        campaign("scenario.welcome"),
        Transport::Push,
        vec![recipient("c/1", 1)],
        vec![Message::text("hi")],
        t0(),
    );
    let blast = Batch::new(
        BatchId::new("sale#0").unwrap(),
        campaign("sale"),
        Transport::Multicast,
        vec![recipient("a", 2), recipient("b", 3)],
        vec![Message::text("sale")],
        t0(),
    )
    .with_arm("B");
    let pending = Batch::new(
        BatchId::new("sale#1").unwrap(),
        campaign("sale"),
        Transport::Multicast,
        vec![recipient("c", 4)],
        vec![Message::text("sale")],
        t0(),
    );
    let accepted = BatchOutcome::Accepted { request_id: None, already_accepted: false };
    let records = [
        BatchRecord::new(scenario, BatchStatus::Sent, 1, Some(accepted.clone()), at(0, 5)),
        BatchRecord::new(blast, BatchStatus::Failed, 3, None, at(0, 9)),
        BatchRecord::new(pending, BatchStatus::Pending, 0, None, at(0, 9)),
    ];
    let sends = SendFact::from_records(&records);
    assert_eq!(sends.len(), 3);
    assert_eq!(sends[0].step.as_deref(), Some("day3"));
    assert_eq!(sends[0].customer, customer("c/1"));
    assert_eq!((sends[0].at, sends[0].delivered), (at(0, 5), true));
    assert_eq!((sends[1].step.as_deref(), sends[1].delivered, sends[1].at), (None, false, t0()));
    assert_eq!(sends[2].arm.as_deref(), Some("B"));
}

fn sample_report() -> enishi::campaign::ResultsReport {
    let mut input = ReportInput::new();
    for week in 0..4 {
        for i in 0..20 {
            let who = format!("c{week}-{i}");
            let when = at(week * 7, i64::from(i) * 60);
            input.sends.push(send("scenario.welcome", "<script>alert(1)</script>", &who, when));
            input.sends.push(send(
                "scenario.welcome",
                "day3 & more",
                &who,
                when + Duration::days(3),
            ));
            if i % 4 == 0 {
                input.orders.push(PurchaseFact::new(
                    customer(&who),
                    when + Duration::days(1),
                    3_000,
                ));
            }
            if i % 10 == 0 {
                input.blocks.push(BlockFact::new(customer(&who), when + Duration::days(4)));
            }
        }
        for i in 0..10 {
            let who = format!("h{week}-{i}");
            input.sends.push(SendFact::holdout(
                campaign("scenario.welcome"),
                Some("day3 & more".into()),
                customer(&who),
                at(week * 7, 0),
            ));
        }
        let day = (t0() + Duration::days(week * 7)).date_naive();
        for step in ["<script>alert(1)</script>", "day3 & more"] {
            input.line_stats.push(LineStatsFact::new(
                campaign("scenario.welcome"),
                Some(step.into()),
                day,
                day + Duration::days(6),
                Some(10 + week as u64),
                None,
            ));
        }
    }
    input.build(&ReportOptions::default().with_title("Report <b>&</b>").with_bucket(Bucket::Week))
}

#[test]
fn measure_html_report_has_charts_and_escapes_data() {
    let report = sample_report();
    let html = report.to_html();
    assert!(html.starts_with("<!doctype html>"));
    assert_eq!(html.matches("<svg").count(), 4, "uplift + open, block and conversion charts");
    for heading in [
        "Open rate per step",
        "Block rate within 7 days per step",
        "Conversion rate per step",
        "Conversion uplift",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
    assert!(html.contains("class=\"legend\""));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("day3 &amp; more"));
    assert!(html.contains("Report &lt;b&gt;&amp;&lt;/b&gt;"));
    assert!(!html.contains("<script"), "no scripts, and data cannot inject one");
    assert!(!html.contains("<b>"));
    assert!(!html.contains("src="), "self-contained: nothing loaded from elsewhere");
    assert!(!html.contains("NaN") && !html.contains("inf"));
    // Four weekly points per step: each line has 4 vertices.
    assert!(html.matches("<circle").count() >= 3 * 2 * 4);

    let serialized = serde_json::to_value(&report).unwrap();
    let back: enishi::campaign::ResultsReport = serde_json::from_value(serialized).unwrap();
    assert_eq!(back, report);
}

/// The whole page, byte for byte: the inputs and their dates are fixed and the report reads
/// no clock, so any change to the markup or the charts shows up here for review.
#[test]
fn measure_html_report_snapshot() {
    insta::assert_snapshot!("weekly_report_html", one_tag_a_line(&sample_report().to_html()));
}

/// The page with a line break between tags, so a snapshot diff points at the element.
fn one_tag_a_line(html: &str) -> String {
    html.replace("><", ">\n<")
}

/// The edge cases of the charts: a single day (one point, drawn larger, centred), a hidden
/// figure that breaks the line, and a report with no data at all.
#[test]
fn measure_html_report_snapshot_edge_cases() {
    let mut input = ReportInput::new();
    input.sends.push(send("spring", "day0", "c1", at(0, 0)));
    input.sends.push(send("spring", "day0", "c2", at(0, 60)));
    input.orders.push(PurchaseFact::new(customer("c1"), at(0, 3_600), 1_200));
    let day = t0().date_naive();
    input.line_stats.push(LineStatsFact::new(
        campaign("spring"),
        Some("day0".into()),
        day,
        day,
        None,
        None,
    ));
    let one_day = input.build(&ReportOptions::default().with_title("One day"));
    insta::assert_snapshot!("one_day_report_html", one_tag_a_line(&one_day.to_html()));
    let empty = ReportInput::new().build(&ReportOptions::default().with_title("Nothing yet"));
    insta::assert_snapshot!("empty_report_html", one_tag_a_line(&empty.to_html()));
}

#[test]
fn measure_terminal_table_lists_every_step() {
    let report = sample_report();
    let table = report.to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("Report"));
    assert!(lines.iter().any(|l| l.starts_with("scenario.welcome (all)")));
    assert!(lines.iter().any(|l| l.trim_start().starts_with("day3 & more")));
    let day3 = lines.iter().find(|l| l.trim_start().starts_with("day3 & more")).unwrap();
    // Orders come a day after the first step, before day 3: no conversion; 8 of 80 blocked.
    assert!(day3.contains("10.0%"), "{day3}");
    assert!(day3.contains("0.0% (n=40)"), "{day3}");
    let first = lines.iter().find(|l| l.trim_start().starts_with("<script>")).unwrap();
    // 80 sends, 20 converted within the window (25.0%), 60 000 revenue; no holdout.
    assert!(
        first.contains(" 20 ") && first.contains("25.0%") && first.contains("60000"),
        "{first}"
    );
    // All rows have the same width (aligned columns).
    let widths: std::collections::BTreeSet<usize> =
        lines[2..].iter().map(|l| l.chars().count()).collect();
    assert_eq!(widths.len(), 1, "{table}");
}

#[test]
fn measure_replayed_links_do_not_inflate_click_kpis() {
    let c = "spring";
    let mut input = ReportInput::default();
    let send = |who: &str| SendFact::sent(campaign(c), None, customer(who), at(0, 0));
    input.sends.extend([send("a"), send("b")]);
    let click =
        |who: &str, url: &str, secs| Click::new(campaign(c), None, customer(who), url, at(0, secs));
    // "a" replays one link 100 times within a minute, then clicks it a day later.
    input.clicks.extend((0..100).map(|i| click("a", "https://shop.example/x", 60 + i / 2)));
    input.clicks.push(click("a", "https://shop.example/x", 86_400 + 60));
    // "b" clicks two different links: two clicks.
    input.clicks.push(click("b", "https://shop.example/x", 60));
    input.clicks.push(click("b", "https://shop.example/y", 61));
    let k = input.build(&ReportOptions::default()).campaigns[0].totals.clone();
    assert_eq!((k.clickers, k.clicks), (2, 4), "{k:?}");
    let week = input.build(&ReportOptions::default().with_click_window(Duration::days(7)));
    assert_eq!(week.campaigns[0].totals.clicks, 3);
    assert_eq!(unique_clicks(&input.clicks, DEFAULT_CLICK_WINDOW).len(), 4);
}

#[tokio::test]
async fn measure_a_crlf_target_is_refused_before_any_click_is_recorded() {
    let evil = "https://shop.example/a\r\nSet-Cookie: session=attacker";
    assert!(matches!(tracker().token(&context(), evil), Err(TrackError::NotHttp(_))));
    // A token for it signed with the key (an older version, or a leaked key) is refused too.
    let payload = serde_json::to_vec(&json!(["scenario.welcome", "day3", "c-1", evil])).unwrap();
    let token = {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&KEY).unwrap();
        mac.update(b"enishi tracked link v1\0");
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(&tag[..16]))
    };
    let store = MemoryClickStore::new();
    let answer = handle_click(&tracker(), &store, &token, None, false, t0()).await;
    assert_eq!(answer, ClickResponse::Invalid);
    assert!(store.all().is_empty(), "a refused redirect is not a click");
    // The same route with a clean target records exactly one click.
    let good = tracker().token(&context(), "https://shop.example/a").unwrap();
    let answer = handle_click(&tracker(), &store, &good, None, false, t0()).await;
    assert!(matches!(answer, ClickResponse::Redirect { recorded: true, .. }), "{answer:?}");
    assert_eq!(store.all().len(), 1);
}

/// The `ClickStore` conformance suite (`enishi::campaign::conformance::clicks`) against every
/// store: each check is its own test, on a new store with two handles (two connections for
/// SQLite, two pools for PostgreSQL).
#[cfg(feature = "testkit")]
mod click_store_conformance {
    use std::sync::Arc;

    use enishi::campaign::{ClickStore, MemoryClickStore};

    use crate::stores::Cleanup;

    type Stores = Vec<Arc<dyn ClickStore>>;

    async fn memory_stores(n: usize) -> (Stores, Cleanup) {
        let store: Arc<dyn ClickStore> = Arc::new(MemoryClickStore::new());
        ((0..n).map(|_| Arc::clone(&store)).collect(), Cleanup::None)
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite_stores(n: usize) -> (Stores, Cleanup) {
        let path = crate::stores::sqlite_path("clicks");
        let open = |_| {
            Arc::new(enishi::campaign::SqliteClickStore::open(&path).unwrap())
                as Arc<dyn ClickStore>
        };
        ((0..n).map(open).collect(), Cleanup::File(path))
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite_in_memory_stores(_: usize) -> (Stores, Cleanup) {
        let store = enishi::campaign::SqliteClickStore::open_in_memory().unwrap();
        (vec![Arc::new(store)], Cleanup::None)
    }

    #[cfg(feature = "postgres")]
    async fn postgres_stores(n: usize) -> (Stores, Cleanup) {
        use crate::stores::{pg_needed, pg_pool};
        let schema = crate::stores::pg_schema("clicks");
        let mut out: Stores = Vec::new();
        for _ in 0..n {
            let store = enishi::campaign::PostgresClickStore::from_pool(pg_pool(), &schema).await;
            out.push(Arc::new(pg_needed(store)));
        }
        (out, Cleanup::Schema(schema))
    }

    macro_rules! conformance {
        ($store:ident, $factory:path) => {
            mod $store {
                conformance!(@cases $factory;
                    clicks_are_per_campaign_oldest_first,
                    clickers_since,
                    replays_are_kept_raw_and_counted_once,
                    concurrent_clicks_are_all_kept,
                );
            }
        };
        (@cases $factory:path; $($case:ident,)*) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (stores, cleanup) = $factory(2).await;
                    enishi::campaign::conformance::clicks::$case(&stores).await;
                    cleanup.run().await;
                }
            )*
        };
    }

    conformance!(measure_memory, super::memory_stores);
    #[cfg(feature = "sqlite")]
    conformance!(measure_sqlite, super::sqlite_stores);
    #[cfg(feature = "sqlite")]
    conformance!(measure_sqlite_in_memory, super::sqlite_in_memory_stores);
    #[cfg(feature = "postgres")]
    conformance!(measure_postgres, super::postgres_stores);

    /// The whole suite in one call, as a host runs it, on one handle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn measure_click_store_conformance_run_all_on_one_memory_handle() {
        enishi::campaign::conformance::clicks::run_all(|| async {
            vec![Arc::new(MemoryClickStore::new()) as Arc<dyn ClickStore>]
        })
        .await;
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn measure_sqlite_click_store_persists() {
    let dir = std::env::temp_dir().join(format!("enishi-clicks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clicks.db");
    let click = Click::new(campaign("sale"), None, customer("c9"), "https://a.example/", at(0, 0));
    enishi::campaign::SqliteClickStore::open(&path).unwrap().record(&click).await.unwrap();
    let reopened = enishi::campaign::SqliteClickStore::open(&path).unwrap();
    assert_eq!(reopened.clicks(&campaign("sale")).await.unwrap(), vec![click]);
    let _ = std::fs::remove_dir_all(dir);
}

/// A click recorded by one redirect server is read by another, with every field; a schema
/// name that would need quoting is refused.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_postgres_click_store_is_shared_and_checks_its_schema() {
    use enishi::campaign::PostgresClickStore;
    let url = crate::pg::url();
    let schema = crate::stores::pg_schema("clicks");
    let click = Click::new(
        campaign("sale"),
        Some("d1".into()),
        customer("c/9"),
        "https://a.example/ü",
        at(0, 0),
    );
    PostgresClickStore::connect(&url, &schema).await.unwrap().record(&click).await.unwrap();
    let other = PostgresClickStore::connect(&url, &schema).await.unwrap();
    assert_eq!(other.clicks(&campaign("sale")).await.unwrap(), vec![click]);
    for bad in ["", "Clicks", "a;drop table x", "1abc"] {
        let err = PostgresClickStore::connect(&url, bad).await.unwrap_err();
        assert!(err.to_string().contains("invalid schema name"), "{bad}: {err}");
    }
    crate::stores::Cleanup::Schema(schema).run().await;
}

#[tokio::test]
async fn measure_unit_statistics_come_from_the_fake_line_through_the_client() {
    use enishi::testkit::{FakeLine, user_id};
    let users: Vec<String> = (0..100).map(user_id).collect();
    let line = FakeLine::builder().no_rate_limits().friends(users.clone()).start().await.unwrap();
    let limits = enishi::line::RateLimits::unlimited();
    let client = enishi::line::LineClient::builder()
        .rate_limits(limits)
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .build()
        .unwrap();
    let tracked = tracker()
        .rewrite(
            &Message::template(
                "sale",
                ButtonsTemplate::new("sale")
                    .with_action(Action::uri("Go", "https://shop.example/")),
            ),
            &context(),
        )
        .unwrap();
    for (i, user) in users.iter().enumerate() {
        let unit = if i < 80 { "welcome_d0" } else { "welcome_d3" };
        let request = enishi::line::PushRequest::new(
            user.parse::<enishi::LineUserId>().unwrap(),
            vec![tracked.clone()],
        )
        .aggregation_unit(unit.parse().unwrap());
        client.push(request).await.unwrap();
    }
    let today =
        Utc::now().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap()).date_naive();
    let fetch = |unit: &'static str, step: &'static str| {
        let client = client.clone();
        async move {
            enishi::campaign::fetch_unit_stats(
                &client,
                &unit.parse().unwrap(),
                &campaign("scenario.welcome"),
                Some(step),
                today - Duration::days(8),
                today,
                Bucket::Week,
            )
            .await
            .unwrap()
        }
    };
    let d0 = fetch("welcome_d0", "day0").await;
    // 9 days over weekly buckets: two or three calls, the last one ending today.
    assert!((2..=3).contains(&d0.len()), "{d0:?}");
    assert_eq!(d0.last().unwrap().to, today);
    assert_eq!(d0[0].from, today - Duration::days(8));
    let opened = d0.last().unwrap().unique_impression.expect("80 recipients: above LINE's 20");
    assert!((32..=60).contains(&opened), "40–74 % of 80, got {opened}");
    assert!(
        d0[..d0.len() - 1].iter().all(|f| f.unique_impression.is_none()),
        "no sends before today"
    );
    assert_eq!(fetch("welcome_d0", "day0").await, d0, "deterministic");
    // 20 recipients: LINE hides anything below 20.
    let d3 = fetch("welcome_d3", "day3").await;
    assert_eq!(d3.last().unwrap().unique_impression, None);

    let mut input = ReportInput::new();
    input.line_stats = d0;
    for user in 0..80 {
        input.sends.push(send("scenario.welcome", "day0", &format!("c{user}"), Utc::now()));
    }
    let report = input.build(&ReportOptions::default());
    let k = &report.campaigns[0].steps[0].kpis;
    assert_eq!(k.opened, Some(opened));
    assert_eq!(k.open_rate, Some(opened as f64 / 80.0));
    line.shutdown().await;
}
