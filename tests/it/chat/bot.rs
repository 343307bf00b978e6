//! The chatbot through the app's webhook against the fake LINE and fake ecforce servers:
//! every intent, hand-off across two instances, surveys into segments, forged and replayed
//! postbacks, the push fallback.

use std::net::SocketAddr;

use chrono::Utc;
use enishi::LineUserId;
use enishi::app::Enishi;
use enishi::chat::{Intent, Rule, skin_type_survey};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;
use enishi::testkit::user_id;
use serde_json::{Value, json};

use crate::app::harness::{Shop, id, post_webhook, shop, user};

const KEY: [u8; 32] = *b"chat-tests-postback-key-32-bytes";

fn staff() -> enishi::LineGroupId {
    enishi::LineGroupId::new(format!("C{:032x}", 5)).unwrap()
}

async fn app(shop: &Shop, storage: Storage) -> (Enishi, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = shop
        .builder(storage)
        .public_url(&base)
        .rank_ladder([("シルバー", 1_000), ("ゴールド", 100_000)])
        .chat(KEY, |b| {
            b.survey(skin_type_survey()).staff_group(staff()).rule(
                Rule::regex("^返品", Intent::Reply("返品はマイページから承ります。".into()))
                    .unwrap(),
            )
        })
        .build()
        .unwrap();
    app.sync().await.unwrap();
    let routes = app.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    (app, base)
}

/// Posts one event from `user` (a message, a postback...) to the app; returns the body sent.
async fn send(shop: &Shop, base: &str, user: &LineUserId, fill: impl FnOnce(&mut Value)) -> Value {
    let mut e = json!({
        "type": "message", "mode": "active", "timestamp": Utc::now().timestamp_millis(),
        "webhookEventId": format!("01CHAT{}", uuid::Uuid::new_v4().simple()),
        "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": user.as_str()},
        "replyToken": shop.line.issue_reply_token(user.as_str()).unwrap(),
    });
    fill(&mut e);
    let body = json!({"destination": "Ubot", "events": [e]});
    assert_eq!(post_webhook(base, &body).await, 200);
    body
}

async fn say(shop: &Shop, base: &str, user: &LineUserId, text: &str) -> Vec<Value> {
    let before = shop.line.messages_for(user.as_str()).len();
    send(shop, base, user, |e| {
        e["message"] = json!({"type": "text", "id": "1", "text": text, "quoteToken": "q"})
    })
    .await;
    shop.line.messages_for(user.as_str())[before..].to_vec()
}

fn text(messages: &[Value]) -> String {
    messages
        .iter()
        .filter_map(|m| m["text"].as_str().or(m["altText"].as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn button(shop: &Shop, user: &LineUserId, label: &str) -> String {
    shop.line
        .messages_for(user.as_str())
        .iter()
        .rev()
        .find_map(|m| {
            m["quickReply"]["items"]
                .as_array()?
                .iter()
                .find(|i| i["action"]["label"] == label)
                .map(|i| i["action"]["data"].as_str().unwrap().to_owned())
        })
        .expect("the button")
}

async fn tap(shop: &Shop, base: &str, user: &LineUserId, data: &str) -> Value {
    send(shop, base, user, |e| {
        e["type"] = "postback".into();
        e["postback"] = json!({"data": data});
    })
    .await
}

#[tokio::test]
async fn chat_intents_answer_from_the_linked_customers_data() {
    let shop = shop(4).await;
    let (_app, base) = app(&shop, Storage::in_memory()).await;
    let u = user(1);
    let orders = text(&say(&shop, &base, &u, "注文状況を教えて").await);
    assert!(orders.contains("顧客1さま") && orders.contains("o1"), "{orders}");
    let points = text(&say(&shop, &base, &u, "ﾎﾟｲﾝﾄ").await);
    assert!(points.contains("ポイント"), "{points}");
    let next = text(&say(&shop, &base, &u, "次回のお届けは？").await);
    assert!(next.contains("定期便はありません"), "{next}");
    let rank = text(&say(&shop, &base, &u, "会員ランク").await);
    assert!(rank.contains("会員ランク"), "{rank}");
    let help = say(&shop, &base, &u, "ＨＥＬＰ").await;
    assert!(
        text(&help).contains("お手伝い")
            && help[0]["quickReply"]["items"].as_array().unwrap().len() >= 4
    );
    let custom = text(&say(&shop, &base, &u, "返品したい").await);
    assert_eq!(custom, "返品はマイページから承ります。");
    let fallback = text(&say(&shop, &base, &u, "今日はいい天気").await);
    assert!(fallback.contains("ヘルプ"), "{fallback}");
    // Every turn showed the loading animation and was logged both ways.
    assert!(!shop.line.loading_shown().is_empty());
}

#[tokio::test]
async fn chat_a_quick_reply_runs_its_intent() {
    let shop = shop(2).await;
    let (_app, base) = app(&shop, Storage::in_memory()).await;
    let u = user(1);
    let said = say(&shop, &base, &u, "ヘルプ").await;
    let _ = tracing_subscriber::fmt().with_env_filter("enishi=debug").with_test_writer().try_init();
    let said2 = say(&shop, &base, &u, "ヘルプ").await;
    eprintln!(
        "DEBUG {said:?} {said2:?} log={:?}",
        _app.storage().chat().log_of(&u, 10).await.unwrap()
    );
    let data = button(&shop, &u, "ポイント");
    let before = shop.line.messages_for(u.as_str()).len();
    tap(&shop, &base, &u, &data).await;
    let told = text(&shop.line.messages_for(u.as_str())[before..]);
    assert!(told.contains("ポイント"), "{told}");
}

#[tokio::test]
async fn chat_an_unlinked_user_is_invited_to_link() {
    let shop = shop(4).await;
    let (_app, base) = app(&shop, Storage::in_memory()).await;
    let told = say(&shop, &base, &user(2), "注文状況").await;
    assert!(text(&told).contains("連携すると"), "{told:?}");
    assert_eq!(told.last().unwrap()["type"], "template", "a link button: {told:?}");
    let survey = text(&say(&shop, &base, &user(2), "アンケート").await);
    assert!(survey.contains("連携が必要です"), "{survey}");
}

#[tokio::test]
async fn chat_forged_postbacks_are_ignored_and_replays_answered_once() {
    let shop = shop(2).await;
    let (app, base) = app(&shop, Storage::in_memory()).await;
    let u = user(1);
    let before = shop.line.delivery_count();
    tap(&shop, &base, &u, "enishi:chat:a=intent&i=points:AAAAAAAAAAAAAAAA").await;
    tap(&shop, &base, &u, "shop:unknown-data").await;
    assert_eq!(shop.line.delivery_count(), before, "nothing answered");
    let body = send(&shop, &base, &u, |e| {
        e["message"] = json!({"type": "text", "id": "9", "text": "ポイント", "quoteToken": "q"})
    })
    .await;
    let after = shop.line.delivery_count();
    assert_eq!(post_webhook(&base, &body).await, 200, "a redelivery is acknowledged");
    assert_eq!(shop.line.delivery_count(), after, "and not answered twice");
    assert!(shop.line.duplicate_deliveries().is_empty());
    let log = app.storage().chat().log_of(&u, 50).await.unwrap();
    assert_eq!(
        log.iter().filter(|e| e.kind == "postback").count(),
        2,
        "the ignored postbacks are logged"
    );
}

#[tokio::test]
async fn chat_a_spent_reply_token_falls_back_to_one_push() {
    let shop = shop(2).await;
    let (_app, base) = app(&shop, Storage::in_memory()).await;
    let u = user(1);
    let before = shop.line.messages_for(u.as_str()).len();
    send(&shop, &base, &u, |e| {
        e["replyToken"] = "spent-reply-token-0000000000000000".into();
        e["message"] = json!({"type": "text", "id": "1", "text": "ポイント", "quoteToken": "q"});
    })
    .await;
    let told = &shop.line.messages_for(u.as_str())[before..];
    assert_eq!(told.len(), 1, "pushed once: {told:?}");
    assert!(shop.line.deliveries_to(u.as_str()).last().unwrap().retry_key.is_some());
}

#[tokio::test]
async fn chat_stickers_and_unknown_events_are_handled() {
    let shop = shop(2).await;
    let (_app, base) = app(&shop, Storage::in_memory()).await;
    let u = user(1);
    let before = shop.line.messages_for(u.as_str()).len();
    send(&shop, &base, &u, |e| {
        e["message"] = json!({"type": "sticker", "id": "2", "packageId": "1", "stickerId": "1", "stickerResourceType": "STATIC", "quoteToken": "q"});
    })
    .await;
    assert!(text(&shop.line.messages_for(u.as_str())[before..]).contains("文字でお送りください"));
    send(&shop, &base, &u, |e| e["type"] = "somethingNew2027".into()).await;
}

#[tokio::test]
async fn chat_survey_answer_becomes_a_segment_attribute() {
    let shop = shop(2).await;
    let (app, base) = app(&shop, Storage::in_memory()).await;
    let u = user(1);
    let question = text(&say(&shop, &base, &u, "アンケート").await);
    assert!(question.contains("お肌のタイプ"), "{question}");
    let data = button(&shop, &u, "乾燥肌");
    tap(&shop, &base, &u, &data).await;
    assert!(text(&shop.line.messages_for(u.as_str())).contains("ご回答ありがとうございました"));
    let dry = app
        .audience(&SegmentDefinition::parse(r#"attr skin_type = "dry""#).unwrap())
        .await
        .unwrap();
    assert_eq!(dry.iter().map(|c| c.customer.clone()).collect::<Vec<_>>(), [id(1)]);
    // Tapping the old button again changes nothing.
    let before = shop.line.delivery_count();
    tap(&shop, &base, &u, &data).await;
    assert_eq!(shop.line.delivery_count(), before);
}

#[tokio::test]
async fn chat_opt_out_is_honoured_by_campaigns() {
    let shop = shop(2).await;
    let (app, base) = app(&shop, Storage::in_memory()).await;
    let linked = SegmentDefinition::parse("line linked").unwrap();
    let consent =
        |a: &[enishi::campaign::Contact]| a.iter().find(|c| c.customer == id(1)).map(|c| c.consent);
    assert_eq!(consent(&app.audience(&linked).await.unwrap()), Some(true));
    assert!(text(&say(&shop, &base, &user(1), "配信停止").await).contains("停止しました"));
    assert_eq!(consent(&app.audience(&linked).await.unwrap()), Some(false), "opted out");
    say(&shop, &base, &user(1), "配信再開").await;
    assert_eq!(consent(&app.audience(&linked).await.unwrap()), Some(true));
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn chat_handoff_cycle_across_two_instances_sharing_postgres() {
    let shop = shop(4).await;
    let schema = crate::app::harness::schema();
    let open = || Storage::builder(crate::pg::url()).schema(schema.clone()).open();
    let (_a, base_a) = app(&shop, open().await.unwrap()).await;
    let (_b, base_b) = app(&shop, open().await.unwrap()).await;
    let u = user(3);
    let handed = text(&say(&shop, &base_a, &u, "担当者と話したい").await);
    assert!(handed.contains("担当者におつなぎします"), "{handed}");
    let group = shop.line.messages_for(staff().as_str());
    assert!(text(&group).contains(u.as_str()), "staff are told: {group:?}");
    // The other instance sees the hand-off: silent, the message goes to staff.
    assert!(say(&shop, &base_b, &u, "届いた商品が破損していました").await.is_empty());
    assert!(text(&shop.line.messages_for(staff().as_str())).contains("破損"));
    // Staff give it back from the group, through instance B.
    let staff_event = json!({"destination": "Ubot", "events": [{
        "type": "message", "mode": "active", "timestamp": Utc::now().timestamp_millis(),
        "webhookEventId": "01CHATSTAFF1", "deliveryContext": {"isRedelivery": false},
        "source": {"type": "group", "groupId": staff().as_str(), "userId": user_id(99)},
        "replyToken": shop.line.issue_reply_token(&user_id(99)).unwrap(),
        "message": {"type": "text", "id": "5", "text": format!("#bot {}", u.as_str()), "quoteToken": "q"}}]});
    assert_eq!(post_webhook(&base_b, &staff_event).await, 200);
    assert!(text(&shop.line.messages_for(u.as_str())).contains("担当者との対応が終わりました"));
    // Instance A answers again.
    assert!(text(&say(&shop, &base_a, &u, "ポイント").await).contains("ポイント"));
}

/// A shop intent reached by its own signed postback, with typed parameters.
#[derive(Debug)]
struct Reorder;

#[async_trait::async_trait]
impl enishi::chat::ChatHandler for Reorder {
    fn name(&self) -> &str {
        "reorder"
    }

    async fn handle(
        &self,
        c: &enishi::chat::Conversation,
    ) -> Result<Vec<enishi::line::message::Message>, enishi::commerce::BoxError> {
        let sku = c.params.get("sku").ok_or("no sku")?;
        let qty: u32 = c.params.get("qty").ok_or("no qty")?.parse()?;
        let who = c.customer.as_ref().and_then(|c| c.name.clone()).unwrap_or_default();
        Ok(vec![enishi::line::message::Message::text(format!(
            "{who}さま、{sku}を{qty}点カートに入れました"
        ))])
    }
}

#[tokio::test]
async fn chat_postback_routes_carry_typed_parameters() {
    let shop = shop(2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = shop
        .builder(Storage::in_memory())
        .public_url(&base)
        .chat(KEY, |b| {
            b.rule(Rule::postback("reorder", Intent::Custom(std::sync::Arc::new(Reorder))))
        })
        .build()
        .unwrap();
    app.sync().await.unwrap();
    let routes = app.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    let u = user(1);
    let data = app.chat().unwrap().postback_data("reorder", &[("sku", "serum"), ("qty", "2")]);
    tap(&shop, &base, &u, &data).await;
    assert_eq!(
        text(&shop.line.messages_for(u.as_str())),
        "顧客1さま、serumを2点カートに入れました"
    );
    // The same action with data the bot did not sign does nothing.
    let before = shop.line.delivery_count();
    tap(&shop, &base, &u, &data.replace("qty=2", "qty=9")).await;
    assert_eq!(shop.line.delivery_count(), before);
}

#[tokio::test]
async fn chat_summary_counts_the_logged_conversations() {
    let shop = shop(4).await;
    let (app, base) = app(&shop, Storage::in_memory()).await;
    let since = Utc::now() - chrono::TimeDelta::minutes(1);
    say(&shop, &base, &user(1), "ポイント").await;
    say(&shop, &base, &user(1), "アンケート").await;
    let data = button(&shop, &user(1), "脂性肌");
    tap(&shop, &base, &user(1), &data).await;
    say(&shop, &base, &user(3), "担当者と話したい").await;
    let s = app.chat().unwrap().summary(since).await.unwrap();
    assert_eq!(
        (s.conversations, s.handoffs, s.survey_answers, s.surveys_started),
        (2, 1, 1, 1),
        "{s:?}"
    );
    assert!(s.replies >= 4 && s.inbound >= 4, "{s:?}");
    // The results report shows them.
    let stats: enishi::campaign::ConversationStats = s.into();
    assert_eq!(stats.survey_answer_rate(), Some(1.0));
    let report = enishi::campaign::ReportInput::new()
        .build(&enishi::campaign::ReportOptions::default())
        .with_conversations(stats);
    let html = report.to_html();
    assert!(html.contains("<h2>Conversations</h2>") && html.contains("100.0%"), "{html}");
    // Nothing is older than the retention yet.
    assert_eq!(app.chat().unwrap().purge_log(Utc::now()).await.unwrap(), 0);
    let far = Utc::now() + chrono::TimeDelta::days(365);
    assert!(app.chat().unwrap().purge_log(far).await.unwrap() >= 8, "a year on, the log is gone");
}

#[tokio::test]
async fn chat_survey_answer_starts_a_scenario() {
    let shop = shop(2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let scenarios = enishi::campaign::scenario::ScenarioSet::from_json(
        r#"{"scenario": [{"name": "dry_skin_care", "trigger": {"type": "segment_entry", "segment": "attr skin_type = \"dry\""},
            "steps": [{"name": "tips", "delay": "0s", "message": "{{ name }}さん、乾燥肌におすすめの保湿ケアをご紹介します"}]}]}"#,
    )
    .unwrap();
    let app = shop
        .builder(Storage::in_memory())
        .public_url(&base)
        .scenarios(scenarios)
        .chat(KEY, |b| b.survey(skin_type_survey()))
        .build()
        .unwrap();
    app.sync().await.unwrap();
    let routes = app.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    assert_eq!(app.tick().await.unwrap().planned, 0);
    let u = user(1);
    say(&shop, &base, &u, "アンケート").await;
    let data = button(&shop, &u, "乾燥肌");
    tap(&shop, &base, &u, &data).await;
    let tick = app.tick().await.unwrap();
    assert_eq!(tick.planned, 1, "the answer put the customer in the scenario's segment: {tick:?}");
}

#[tokio::test]
async fn chat_skips_the_next_delivery_after_asking() {
    let shop = shop(2).await;
    let mut sub = enishi::commerce::Subscription::new(
        "S-7",
        enishi::commerce::SubscriptionState::Active,
        shop.now - chrono::TimeDelta::days(3),
    );
    sub.customer = Some("1".into());
    sub.next_delivery_at = Some(shop.now + chrono::TimeDelta::days(6));
    shop.ecforce.insert_subscriptions([sub]);
    let (_app, base) = app(&shop, Storage::in_memory()).await;
    let u = user(1);
    let next = say(&shop, &base, &u, "次回のお届け").await;
    assert!(text(&next).contains("次回お届け"), "{next:?}");
    tap(&shop, &base, &u, &button(&shop, &u, "次回をスキップ")).await;
    assert!(text(&shop.line.messages_for(u.as_str())).contains("スキップしますか"));
    tap(&shop, &base, &u, &button(&shop, &u, "スキップする")).await;
    let told = shop.line.messages_for(u.as_str());
    assert!(text(&told[told.len() - 1..]).contains("スキップしました"), "{told:?}");
    // ecforce holds it.
    assert_eq!(shop.ecforce.subscription("S-7").unwrap().skip_next_delivery, Some(true));
    // Another user cannot use the first user's button.
    let data = shop
        .line
        .messages_for(u.as_str())
        .iter()
        .find_map(|m| {
            m["quickReply"]["items"]
                .as_array()?
                .iter()
                .find(|i| i["action"]["label"] == "スキップする")
                .map(|i| i["action"]["data"].as_str().unwrap().to_owned())
        })
        .unwrap();
    let before = shop.line.delivery_count();
    tap(&shop, &base, &user(3), &data).await;
    assert_eq!(shop.line.delivery_count(), before, "not user 3's subscription");
}

#[tokio::test]
async fn chat_link_unlink_and_welcome() {
    let shop = shop(4).await;
    let (_app, base) = app(&shop, Storage::in_memory()).await;
    // Linked (customer 1 in ecforce): told so; 連携解除 gives the unlink button.
    assert!(text(&say(&shop, &base, &user(1), "連携したい").await).contains("連携済み"));
    let unlink = say(&shop, &base, &user(1), "連携解除").await;
    let uri = unlink[0]["template"]["actions"][0]["uri"].as_str().unwrap_or_default().to_owned();
    assert!(uri.starts_with(&format!("{base}/unlink?ticket=")), "{unlink:?}");
    // Unlinked (customer 2): the link button; 連携解除 says there is nothing to undo.
    let link = say(&shop, &base, &user(2), "連携").await;
    assert_eq!(link.last().unwrap()["type"], "template", "{link:?}");
    assert!(
        text(&say(&shop, &base, &user(2), "連携解除").await).contains("まだ連携されていません")
    );
    // A follow: welcome, with the link button for someone not linked.
    let before = shop.line.messages_for(user(6).as_str()).len();
    send(&shop, &base, &user(6), |e| {
        e["type"] = "follow".into();
        e["follow"] = json!({"isUnblocked": false});
    })
    .await;
    let welcome = &shop.line.messages_for(user(6).as_str())[before..];
    assert!(text(welcome).contains("友だち追加ありがとうございます"), "{welcome:?}");
    assert_eq!(welcome.last().unwrap()["type"], "template");
}

#[tokio::test]
async fn chat_a_failed_push_comes_again_and_goes_out_once() {
    use enishi::testkit::{Endpoint, FaultTiming, Faults};
    let shop = shop(2).await;
    let (_app, base) = app(&shop, Storage::in_memory()).await;
    let u = user(1);
    let before = shop.line.messages_for(u.as_str()).len();
    // LINE takes the push and answers 500: the client's retry with the same key gets 409,
    // which means delivered; one message.
    shop.line
        .set_faults(Faults {
            server_error: 1.0,
            timing: FaultTiming::AfterAcceptance,
            endpoints: Some(vec![Endpoint::Push]),
            ..Faults::default()
        })
        .unwrap();
    say_spent(&base, &u, "01CHATPUSHTAKEN").await;
    assert_eq!(shop.line.messages_for(u.as_str()).len() - before, 1);
    // LINE answers 500 before taking it, every time: the event is answered with an error.
    shop.line
        .set_faults(Faults {
            server_error: 1.0,
            timing: FaultTiming::BeforeAcceptance,
            endpoints: Some(vec![Endpoint::Push]),
            ..Faults::default()
        })
        .unwrap();
    let body = json!({"destination": "Ubot", "events": [{
        "type": "message", "mode": "active", "timestamp": Utc::now().timestamp_millis(),
        "webhookEventId": "01CHATPUSHAGAIN", "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": u.as_str()}, "replyToken": "spent-reply-token-1",
        "message": {"type": "text", "id": "1", "text": "会員ランク", "quoteToken": "q"}}]});
    assert_eq!(post_webhook(&base, &body).await, 500, "LINE should redeliver");
    // LINE redelivers once it is well: the same retry key, one message in all.
    shop.line.set_faults(Faults::none()).unwrap();
    assert_eq!(post_webhook(&base, &body).await, 200);
    assert_eq!(shop.line.messages_for(u.as_str()).len() - before, 2);
    assert!(shop.line.duplicate_deliveries().is_empty());
}

/// A message whose reply token is spent (so the answer is pushed); returns the status.
async fn say_spent(base: &str, u: &LineUserId, event_id: &str) -> u16 {
    let body = json!({"destination": "Ubot", "events": [{
        "type": "message", "mode": "active", "timestamp": Utc::now().timestamp_millis(),
        "webhookEventId": event_id, "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": u.as_str()}, "replyToken": "spent-reply-token-0",
        "message": {"type": "text", "id": "1", "text": "ポイント", "quoteToken": "q"}}]});
    post_webhook(base, &body).await
}
