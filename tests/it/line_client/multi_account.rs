//! Several official accounts in one process: webhooks routed by `destination` to the right
//! channel's secret and client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use enishi::line::message::Message;
use enishi::line::webhook::{ChannelSecret, Delivery, HandlerError, WebhookService, sign};
use enishi::line::{ChannelRouteError, LineChannel, LineChannels, LineClient, PushRequest};
use enishi::testkit::{self as fake, FakeLine};
use http::{HeaderMap, HeaderValue, StatusCode};

const BOT_A: &str = "U0000000000000000000000000000000a";
const BOT_B: &str = "U0000000000000000000000000000000b";

async fn shop(bot: &str, token: &str) -> FakeLine {
    FakeLine::builder()
        .bot_user_id(bot)
        .channel_access_token(token)
        .friends([fake::user_id(1)])
        .start()
        .await
        .expect("the fake LINE server starts")
}

fn client(line: &FakeLine) -> LineClient {
    LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .request_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn payload(destination: &str) -> Vec<u8> {
    format!(
        r#"{{"destination":"{destination}","events":[{{"type":"follow","timestamp":1,"mode":"active",
        "source":{{"type":"user","userId":"{}"}},"webhookEventId":"01HEVENT{destination}",
        "deliveryContext":{{"isRedelivery":false}},"replyToken":"r","follow":{{"isUnblocked":false}}}}]}}"#,
        fake::user_id(1)
    )
    .into_bytes()
}

fn signed(secret: &str, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let signature = sign(&ChannelSecret::new(secret), body);
    headers.insert("x-line-signature", HeaderValue::from_str(&signature).unwrap());
    headers
}

#[tokio::test]
async fn webhooks_are_verified_and_answered_per_destination() {
    let (a, b) = (shop(BOT_A, "token-a").await, shop(BOT_B, "token-b").await);
    // One channel found through bot/info, the other declared.
    let channel_a =
        LineChannel::discover(ChannelSecret::new("secret-a"), client(&a)).await.unwrap();
    assert_eq!(channel_a.bot_user_id(), BOT_A);
    let channel_b =
        LineChannel::new(BOT_B, ChannelSecret::new("secret-b"), client(&b)).named("shop b");
    let channels = LineChannels::new([channel_a, channel_b]).unwrap();
    assert_eq!(channels.len(), 2);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let service = WebhookService::for_channels(channels.clone())
        .handle_before_responding(true)
        .build(move |d: Delivery| {
            let sink = sink.clone();
            async move {
                let channel = d.channel.clone().ok_or("no channel")?;
                let user: enishi::LineUserId = d.event.user_id().ok_or("no user")?.parse()?;
                channel
                    .client()
                    .push(PushRequest::new(user, vec![Message::text("ようこそ")]))
                    .await?;
                sink.lock().unwrap().push(channel.bot_user_id().to_owned());
                Ok::<(), HandlerError>(())
            }
        });

    let body_b = payload(BOT_B);
    assert_eq!(service.handle_request(&signed("secret-b", &body_b), &body_b).await, StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), [BOT_B]);
    // The welcome went out as shop B, not A.
    assert_eq!(b.delivery_count(), 1);
    assert_eq!(a.delivery_count(), 0);

    // Signed with A's secret but addressed to B: refused; unknown destinations too.
    assert_eq!(
        service.handle_request(&signed("secret-a", &body_b), &body_b).await,
        StatusCode::UNAUTHORIZED
    );
    let stranger = payload("U0000000000000000000000000000000c");
    assert_eq!(
        service.handle_request(&signed("secret-a", &stranger), &stranger).await,
        StatusCode::UNAUTHORIZED
    );
    let body_a = payload(BOT_A);
    assert_eq!(service.handle_request(&signed("secret-a", &body_a), &body_a).await, StatusCode::OK);
    assert_eq!(a.delivery_count(), 1);
    assert_eq!(*seen.lock().unwrap(), [BOT_B, BOT_A]);
}

#[test]
fn routing_errors_say_what_was_wrong() {
    let c =
        |bot: &str| LineChannel::new(bot, ChannelSecret::new("s"), LineClient::new("t").unwrap());
    assert!(LineChannels::new([c(BOT_A), c(BOT_A)]).is_err(), "duplicate bot IDs");
    let channels = LineChannels::new([c(BOT_A)]).unwrap();
    let no_destination = br#"{"events":[]}"#;
    assert!(matches!(
        channels.verify(Some("x"), no_destination),
        Err(ChannelRouteError::MissingDestination)
    ));
    let body = payload(BOT_A);
    let wrong = sign(&ChannelSecret::new("other"), &body);
    let err = channels.verify_and_parse(Some(&wrong), &body).unwrap_err();
    assert_eq!(err.http_status(), StatusCode::UNAUTHORIZED);
    let right = sign(&ChannelSecret::new("s"), &body);
    let (channel, parsed) = channels.verify_and_parse(Some(&right), &body).unwrap();
    assert_eq!((channel.bot_user_id(), parsed.events.len()), (BOT_A, 1));
    assert!(channels.client(BOT_A).is_some() && channels.client(BOT_B).is_none());
}
