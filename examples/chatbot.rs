//! The chatbot: customers write to the shop's LINE account and get answers from their own
//! orders, 定期, points and rank; a customer asks for a person and staff take over; a survey
//! answer becomes a segment attribute; a forged postback is ignored; a replayed webhook is
//! answered once.
//!
//! ```sh
//! cargo run --all-features --example chatbot -- --demo
//! ```
//!
//! `--demo` plays a scripted set of conversations through the app's webhook against the fake
//! LINE and fake ecforce servers, prints the transcript, and ends with
//! `chat: conversations=… replies=… handoffs=… survey_answers=… forged_ignored=… duplicates=…`.

#[path = "support/report.rs"]
mod report;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use enishi::app::{Brand, Enishi, Pages};
use enishi::chat::{Direction, skin_type_survey};
use enishi::commerce::{
    Coded, Customer, EcforceClient, LineItem, Money, Order, OrderState, Subscription,
    SubscriptionState,
};
use enishi::line::LineClient;
use enishi::line::webhook::{ChannelSecret, sign};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;
use enishi::testkit::{DEFAULT_ECFORCE_TOKEN, FakeEcforce, FakeLine, FakeUser, user_id};
use enishi::{CustomerId, LineGroupId, LineUserId};
use serde_json::{Value, json};

const SECRET: &str = "chatbot-demo-channel-secret";

/// The chatbot demo (`--demo`).
#[derive(clap::Parser)]
#[command(name = "chatbot", version)]
struct Args {
    /// Play the scripted conversations against the fake servers.
    #[arg(long)]
    demo: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = clap::Parser::parse();
    if !args.demo {
        eprintln!(
            "chatbot: nothing to do without --demo (the chatbot runs inside the `server` example)"
        );
        return ExitCode::from(2);
    }
    report::exit(demo().await)
}

fn cid(i: u64) -> CustomerId {
    CustomerId::new(i.to_string()).expect("digits")
}

fn uid(i: u64) -> LineUserId {
    LineUserId::new(user_id(i)).expect("valid")
}

/// Three customers: 1 and 3 linked to LINE users 1 and 3 (in ecforce), 2 not; LINE user 8
/// follows the account without being a customer.
async fn shop(now: DateTime<Utc>) -> Result<FakeEcforce, Box<dyn std::error::Error>> {
    let ecforce = FakeEcforce::builder().start().await?;
    let mut customers = Vec::new();
    for (i, name) in [(1, "山田花子"), (2, "佐藤次郎"), (3, "鈴木一郎")] {
        let mut c = Customer::new(cid(i), now - TimeDelta::days(200));
        c.name = Some(name.into());
        c.email = Some(format!("c{i}@example.jp"));
        c.points = Some(1_200 * i as i64);
        c.points_expire_at = Some(now + TimeDelta::days(45));
        c.total_spent = Some(Money::jpy(38_000));
        c.rank = Some(Coded { code: Some("2".into()), label: Some("シルバー".into()) });
        if i != 2 {
            c.line_user_id = Some(uid(i));
        }
        customers.push(c);
    }
    ecforce.insert_customers(customers);
    let mut orders = Vec::new();
    for (n, days, shipped) in [("1001", 20, true), ("1002", 2, false)] {
        let mut o = Order::new(n, OrderState::Completed, now - TimeDelta::days(days));
        o.customer_id = Some(cid(1));
        o.ordered_at = Some(now - TimeDelta::days(days));
        o.total = Some(Money::jpy(4_980));
        o.items = vec![LineItem::new(Some("serum".into()), 1)];
        if shipped {
            o.shipped_at = Some(now - TimeDelta::days(days - 1));
        }
        orders.push(o);
    }
    ecforce.insert_orders(orders);
    let mut sub = Subscription::new("S-1", SubscriptionState::Active, now - TimeDelta::days(30));
    sub.customer = Some("1".into());
    sub.next_delivery_at = Some(now + TimeDelta::days(9));
    let mut item = LineItem::new(Some("serum".into()), 1);
    item.name = Some("美容液 定期便".into());
    sub.items = vec![item];
    ecforce.insert_subscriptions([sub]);
    Ok(ecforce)
}

/// One scripted turn.
enum Say {
    Text(&'static str),
    Sticker,
    /// The postback of the last quick-reply button enishi sent this user, by label.
    Tap(&'static str),
    Forged,
    Follow,
    /// The staff group writes.
    Staff(String),
}

struct Demo {
    base: String,
    line: FakeLine,
    http: reqwest::Client,
    seq: u64,
    group: LineGroupId,
}

impl Demo {
    async fn post(&mut self, event: Value) -> Result<Value, Box<dyn std::error::Error>> {
        self.seq += 1;
        let body = json!({ "destination": "Ubot", "events": [event] });
        let bytes = body.to_string().into_bytes();
        let status = self
            .http
            .post(format!("{}/webhook", self.base))
            .header("x-line-signature", sign(&ChannelSecret::new(SECRET), &bytes))
            .body(bytes)
            .send()
            .await?
            .status();
        if !status.is_success() {
            return Err(format!("the webhook answered {status}").into());
        }
        Ok(body)
    }

    fn event(
        &mut self,
        user: &LineUserId,
        kind: &str,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        Ok(json!({
            "type": kind, "mode": "active", "timestamp": Utc::now().timestamp_millis(),
            "webhookEventId": format!("01CHATDEMO{:08}", self.seq),
            "deliveryContext": { "isRedelivery": false },
            "source": { "type": "user", "userId": user.as_str() },
            "replyToken": self.line.issue_reply_token(user.as_str())?,
        }))
    }

    async fn say(
        &mut self,
        user: &LineUserId,
        what: &Say,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let mut e = self.event(user, "message")?;
        match what {
            Say::Text(t) => {
                e["message"] = json!({ "type": "text", "id": "1", "text": t, "quoteToken": "q" })
            }
            Say::Sticker => {
                e["message"] = json!({ "type": "sticker", "id": "2", "packageId": "1", "stickerId": "1", "stickerResourceType": "STATIC", "quoteToken": "q" })
            }
            Say::Tap(label) => {
                e["type"] = "postback".into();
                e["postback"] = json!({ "data": self.button(user, label).ok_or(format!("no button {label}"))? });
            }
            Say::Forged => {
                e["type"] = "postback".into();
                e["postback"] = json!({ "data": "enishi:chat:a=intent&i=points:forgedsignature0" });
            }
            Say::Follow => e["type"] = "follow".into(),
            Say::Staff(text) => {
                e["source"] = json!({ "type": "group", "groupId": self.group.as_str(), "userId": user_id(99) });
                e["replyToken"] = self.line.issue_reply_token(&user_id(99))?.into();
                e["message"] =
                    json!({ "type": "text", "id": "3", "text": text, "quoteToken": "q" });
            }
        }
        self.post(e).await
    }

    fn button(&self, user: &LineUserId, label: &str) -> Option<String> {
        self.line.messages_for(user.as_str()).iter().rev().find_map(|m| {
            m["quickReply"]["items"].as_array()?.iter().find_map(|i| {
                (i["action"]["label"] == label)
                    .then(|| i["action"]["data"].as_str().map(str::to_owned))?
            })
        })
    }
}

fn show(m: &Value) -> String {
    let text = m["text"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| m["altText"].as_str().map(|a| format!("[{a}]")))
        .unwrap_or_default();
    let buttons: Vec<&str> = m["quickReply"]["items"].as_array().map_or(Vec::new(), |items| {
        items.iter().filter_map(|i| i["action"]["label"].as_str()).collect()
    });
    let text = text.replace('\n', "\n      ");
    if buttons.is_empty() { text } else { format!("{text}\n      [{}]", buttons.join("] [")) }
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    let ecforce = shop(now).await?;
    let mut line = FakeLine::builder();
    for i in 1..=9 {
        line = line.user(FakeUser::new(user_id(i)));
    }
    let line = line.start().await?;
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()?;
    let api = Arc::new(
        EcforceClient::builder(ecforce.base_url(), DEFAULT_ECFORCE_TOKEN)
            .min_interval(Duration::ZERO)
            .build()?,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let group = LineGroupId::new(format!("C{:032x}", 7))?;
    let staff = group.clone();
    let app = Enishi::builder()
        .line(client)
        .storage(Storage::in_memory())
        .commerce(api.clone())
        .authenticator(api)
        .channel_secret(ChannelSecret::new(SECRET))
        .public_url(&base)
        .pages(Pages::builder().brand(Brand::new("縁ショップ")).build()?)
        .rank_ladder([("シルバー", 10_000), ("ゴールド", 50_000), ("プラチナ", 100_000)])
        .chat(*b"chatbot-demo-postback-key-32byte", move |bot| {
            bot.survey(skin_type_survey()).staff_group(staff)
        })
        .build()?;
    app.sync().await?;
    let routes = app.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });

    let (hanako, unlinked, ichiro) = (uid(1), uid(8), uid(3));
    let script: Vec<(&LineUserId, &str, Say)> = vec![
        (&hanako, "山田花子", Say::Text("注文状況を教えて")),
        (&hanako, "山田花子", Say::Text("ﾎﾟｲﾝﾄは？")),
        (&hanako, "山田花子", Say::Text("次回のお届けはいつ？")),
        (&hanako, "山田花子", Say::Text("会員ランク")),
        (&hanako, "山田花子", Say::Text("アンケート")),
        (&hanako, "山田花子", Say::Tap("乾燥肌")),
        (&hanako, "山田花子", Say::Forged),
        (&hanako, "山田花子", Say::Text("配信停止")),
        (&unlinked, "未連携の友だち", Say::Follow),
        (&unlinked, "未連携の友だち", Say::Text("注文状況")),
        (&unlinked, "未連携の友だち", Say::Sticker),
        (&unlinked, "未連携の友だち", Say::Text("こんにちは")),
        (&ichiro, "鈴木一郎", Say::Text("担当者と話したい")),
        (&ichiro, "鈴木一郎", Say::Text("届いた商品が破損していました")),
        (&ichiro, "スタッフ", Say::Staff(format!("#bot {}", uid(3).as_str()))),
        (&ichiro, "鈴木一郎", Say::Text("ヘルプ")),
    ];
    let mut d = Demo { base, line, http: reqwest::Client::new(), seq: 0, group: group.clone() };
    let mut forged_ignored = 0;
    let mut last_body = Value::Null;
    for (user, who, what) in &script {
        let before = d.line.messages_for(user.as_str()).len();
        let shown = match what {
            Say::Text(t) | Say::Tap(t) => (*t).to_owned(),
            Say::Sticker => "(スタンプ)".into(),
            Say::Forged => "(偽の postback)".into(),
            Say::Follow => "(友だち追加)".into(),
            Say::Staff(t) => t.clone(),
        };
        println!("> {who}: {shown}");
        last_body = d.say(user, what).await?;
        let told = d.line.messages_for(user.as_str());
        for m in &told[before..] {
            println!("  < {}", show(m));
        }
        if matches!(what, Say::Forged) && told.len() == before {
            forged_ignored += 1;
            println!("  (ignored: not signed by enishi)");
        }
        if matches!(what, Say::Text("届いた商品が破損していました")) {
            println!(
                "  (staff group) < {}",
                d.line.messages_for(group.as_str()).last().map(show).unwrap_or_default()
            );
        }
    }
    // LINE redelivers the last webhook: de-duplicated, answered once.
    let before = d.line.delivery_count();
    let replay = d
        .http
        .post(format!("{}/webhook", d.base))
        .header(
            "x-line-signature",
            sign(&ChannelSecret::new(SECRET), last_body.to_string().as_bytes()),
        )
        .body(last_body.to_string())
        .send()
        .await?
        .status();
    println!(
        "> (LINE redelivers the last event) -> {replay}, {} new deliveries",
        d.line.delivery_count() - before
    );

    let log = app.storage().chat().log_since(now - TimeDelta::minutes(1)).await?;
    let conversations = {
        let mut u: Vec<_> = log.iter().map(|e| e.line_user.clone()).collect();
        u.sort();
        u.dedup();
        u.len()
    };
    let replies = log.iter().filter(|e| e.direction == Direction::Outbound).count();
    let handoffs = log
        .iter()
        .filter(|e| e.direction == Direction::Outbound && e.intent.as_deref() == Some("handoff"))
        .count();
    let survey_answers = log.iter().filter(|e| e.kind == "survey").count();
    let duplicates = d.line.duplicate_deliveries().len();
    let dry = app.audience(&SegmentDefinition::parse(r#"attr skin_type = "dry""#)?).await?;
    println!("segment `attr skin_type = \"dry\"`: {} customer(s)", dry.len());
    println!(
        "chat: conversations={conversations} replies={replies} handoffs={handoffs} survey_answers={survey_answers} forged_ignored={forged_ignored} duplicates={duplicates}"
    );
    Ok(())
}
