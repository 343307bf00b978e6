//! Several official accounts in one process: one app per account (`EnishiBuilder::channel`),
//! one webhook route routed by `destination` (`Enishi::channels_router`); each app replies and
//! sends through its own account's client.

use std::net::SocketAddr;

use chrono::Utc;
use enishi::app::Enishi;
use enishi::campaign::{Campaign, DeliveryPolicy, MessageTemplate};
use enishi::line::webhook::{ChannelSecret, sign};
use enishi::line::{LineChannel, LineClient};
use enishi::segment::SegmentDefinition;
use enishi::storage::Storage;
use enishi::testkit::{FakeLine, FakeUser, user_id};
use serde_json::Value;

use super::harness::{Shop, event, shop, user};

const BOT_A: &str = "Uaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BOT_B: &str = "Ubbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn app(shop: &Shop, bot: &str, secret: &str, client: LineClient, url: &str) -> Enishi {
    Enishi::builder()
        .channel(LineChannel::new(bot, ChannelSecret::new(secret), client))
        .storage(Storage::in_memory())
        .commerce(shop.api.clone())
        .policy(DeliveryPolicy::new())
        .public_url(url)
        .build()
        .unwrap()
}

async fn post(base: &str, secret: &str, body: &Value) -> u16 {
    let bytes = body.to_string().into_bytes();
    let signature = sign(&ChannelSecret::new(secret), &bytes);
    let response = reqwest::Client::new()
        .post(format!("{base}/webhook"))
        .header("x-line-signature", signature)
        .body(bytes)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

fn to(destination: &str, mut body: Value) -> Value {
    body["destination"] = destination.into();
    body
}

#[tokio::test]
async fn app_channels_route_webhooks_by_destination_and_use_each_accounts_client() {
    let shop = shop(3).await;
    let mut line_b = FakeLine::builder();
    for i in 1..=3 {
        line_b = line_b.user(FakeUser::new(user_id(i)));
    }
    let line_b = line_b.start().await.unwrap();
    let client_b = LineClient::builder()
        .channel_access_token(line_b.channel_access_token())
        .base_url(line_b.api_base_url())
        .data_base_url(line_b.data_base_url())
        .build()
        .unwrap();
    let a = app(&shop, BOT_A, "secret-of-account-a", shop.client.clone(), "https://a.example");
    let b = app(&shop, BOT_B, "secret-of-account-b", client_b, "https://b.example");
    assert_eq!(b.line_channel().unwrap().bot_user_id(), BOT_B);
    let router = Enishi::channels_router(&[a.clone(), b.clone()]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });

    // A block on account B is B's alone.
    let unfollow = to(BOT_B, event("unfollow", &user(1), "01CHUNFOLLOWB", Utc::now()));
    assert_eq!(post(&base, "secret-of-account-b", &unfollow).await, 200);
    let status = b.storage().links().follow_status(&user(1)).await.unwrap().unwrap();
    assert!(!status.following);
    assert!(a.storage().links().follow_status(&user(1)).await.unwrap().is_none());

    // The link postback on account A is answered through A's client, with A's link page.
    let token = shop.line.issue_reply_token(user(2).as_str()).unwrap();
    let mut tap = to(BOT_A, event("postback", &user(2), "01CHTAPA", Utc::now()));
    tap["events"][0]["replyToken"] = token.into();
    tap["events"][0]["postback"] = serde_json::json!({"data": enishi::link::DEFAULT_LINK_POSTBACK});
    assert_eq!(post(&base, "secret-of-account-a", &tap).await, 200);
    let reply = shop.line.messages_for(user(2).as_str());
    let uri = reply[0]["template"]["actions"][0]["uri"].as_str().unwrap();
    assert!(uri.starts_with("https://a.example/link?linkToken="), "{uri}");
    assert!(line_b.messages_for(user(2).as_str()).is_empty());

    // A's secret does not pass for B's destination; an unknown destination is refused.
    let forged = to(BOT_B, event("follow", &user(2), "01CHFORGED", Utc::now()));
    assert_eq!(post(&base, "secret-of-account-a", &forged).await, 401);
    let unknown =
        to("Ucccccccccccccccccccccccccccccccc", event("follow", &user(2), "01CHX", Utc::now()));
    assert_eq!(post(&base, "secret-of-account-a", &unknown).await, 401);
    assert!(b.storage().links().follow_status(&user(2)).await.unwrap().is_none());

    // A campaign of account B goes out through B's client only, to B's followers.
    b.sync().await.unwrap();
    a.sync().await.unwrap();
    let campaign =
        Campaign::new("b-news".parse().unwrap(), [MessageTemplate::text("Bのお知らせ").unwrap()]);
    let linked = SegmentDefinition::parse("line linked").unwrap();
    assert_eq!(a.plan(&campaign, &linked).await.unwrap().dry_run().recipients, 2);
    let plan = b.plan(&campaign, &linked).await.unwrap();
    assert_eq!(plan.dry_run().recipients, 1, "customer 1 blocked account B");
    b.send(plan).await.unwrap();
    assert_eq!(line_b.messages_for(user(3).as_str())[0]["text"], "Bのお知らせ");
    assert!(shop.line.messages_for(user(3).as_str()).is_empty());
    assert!(line_b.messages_for(user(1).as_str()).is_empty());
}

#[tokio::test]
async fn app_channels_router_needs_a_channel_on_every_app() {
    let shop = shop(1).await;
    let plain = shop.builder(Storage::in_memory()).build().unwrap();
    assert!(Enishi::channels_router(&[plain]).is_err());
    assert!(Enishi::channels_router(&[]).is_err());
    let a = app(&shop, BOT_A, "secret-of-account-a", shop.client.clone(), "https://a.example");
    let again = app(&shop, BOT_A, "secret-of-account-a", shop.client.clone(), "https://a.example");
    assert!(Enishi::channels_router(&[a, again]).is_err(), "one account, two apps");
}
