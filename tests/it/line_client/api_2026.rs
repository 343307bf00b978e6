//! Memberships, audience management, delivery counts and content downloads against the fake
//! LINE server (every request also checked against LINE's OpenAPI specs).

use std::time::Duration;

use enishi::line::message::Message;
use enishi::line::{
    AudienceGroupStatus, AudienceListQuery, BroadcastRequest, LineClient, LineError,
    MembershipCurrency, PushRequest, SentKind, StatisticsStatus, TranscodingStatus,
};
use enishi::testkit::{self as fake, Endpoint, FakeContent, FakeLine};
use enishi::{AudienceGroupId, LineUserId};
use futures_util::StreamExt;

use super::conformance::assert_conforms;

fn users(n: u64) -> Vec<LineUserId> {
    (1..=n).map(|i| fake::user_id(i).parse().unwrap()).collect()
}

fn client_for(line: &FakeLine) -> LineClient {
    LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .request_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn start(friends: u64) -> FakeLine {
    FakeLine::builder()
        .friends(users(friends).iter().map(LineUserId::as_str))
        .audience_ready_after(Duration::ZERO)
        .record_requests(true)
        .start()
        .await
        .expect("the fake LINE server starts")
}

fn plan(id: i64, title: &str) -> serde_json::Value {
    serde_json::json!({
        "membershipId": id, "title": title, "description": "毎月のお届け",
        "benefits": ["送料無料"], "price": 980.0, "currency": "JPY",
    })
}

#[tokio::test]
async fn membership_plans_subscriptions_and_paged_member_ids() {
    let line = start(5).await;
    let client = client_for(&line);
    let people = users(5);
    line.add_membership_plan(plan(11, "定期便")).unwrap();
    line.add_membership_plan(plan(12, "VIP")).unwrap();
    for user in &people {
        line.add_membership_member(11, user.as_str()).unwrap();
    }
    line.add_membership_member(12, people[0].as_str()).unwrap();

    let plans = client.membership_plans().await.unwrap();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0].title, "定期便");
    assert_eq!(plans[0].member_count, Some(5));
    assert_eq!(plans[0].currency, MembershipCurrency::Jpy);

    let subs = client.membership_subscriptions(&people[0]).await.unwrap();
    assert_eq!(subs.iter().map(|s| s.membership.membership_id).collect::<Vec<_>>(), [11, 12]);
    assert_eq!(subs[0].user.membership_no, 1);
    assert!(client.membership_subscriptions(&people[1]).await.unwrap().len() == 1);

    // Pages of 2 over 5 members: 3 requests, every member once, in order.
    let ids: Vec<LineUserId> =
        client.membership_member_ids(11, Some(2)).map(Result::unwrap).collect().await;
    assert_eq!(ids, people);
    assert_eq!(line.request_count(Endpoint::MembershipUserIds), 3);

    // A plan the bot does not own: LINE's 404.
    let missing: Vec<_> = client.membership_member_ids(99, None).collect().await;
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].as_ref().unwrap_err().status().map(|s| s.as_u16()), Some(404));
    assert_conforms(&line);
}

#[tokio::test]
async fn click_and_impression_audiences_come_from_a_sent_broadcast() {
    let line = start(10).await;
    let client = client_for(&line);
    let sent =
        client.broadcast(BroadcastRequest::new(vec![Message::text("セール")])).await.unwrap();
    let request_id = sent.request_id.clone().unwrap();

    let clicks = client
        .create_click_audience("clicked the sale", &request_id, Some("https://shop.example/sale"))
        .await
        .unwrap();
    assert_eq!(clicks.kind.as_deref(), Some("CLICK"));
    let opens = client.create_impression_audience("opened the sale", &request_id).await.unwrap();
    let opened = client.audience_group(opens.audience_group_id).await.unwrap();
    assert_eq!(opened.kind.as_deref(), Some("IMP"));
    // The fake's fixed ratios: 60 % of 10 recipients opened, 20 % clicked.
    assert_eq!(opened.audience_count, Some(6));
    assert_eq!(
        client.audience_group(clicks.audience_group_id).await.unwrap().audience_count,
        Some(2)
    );

    // An unknown request ID is refused by LINE's rule.
    let bogus = "00000000-0000-0000-0000-000000000000".parse().unwrap();
    let err = client.create_impression_audience("nothing", &bogus).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert!(format!("{err:?}").contains("AUDIENCE_GROUP_REQUESTID_INVALID"), "{err:?}");
    // A name over 120 characters never leaves the client.
    let before = line.counters().requests;
    let long = "あ".repeat(121);
    assert!(matches!(
        client.create_impression_audience(&long, &request_id).await,
        Err(LineError::Validation(_))
    ));
    assert_eq!(line.counters().requests, before);
    assert_conforms(&line);
}

#[tokio::test]
async fn audiences_are_listed_by_page_renamed_and_deleted() {
    let line = start(3).await;
    let client = client_for(&line);
    let people = users(3);
    let mut ids: Vec<AudienceGroupId> = Vec::new();
    for name in ["spring", "summer", "autumn"] {
        ids.push(client.create_audience(name, &people).await.unwrap().audience_group_id);
    }
    let first = client.audience_groups(&AudienceListQuery::page(1).size(2)).await.unwrap();
    assert_eq!((first.total_count, first.audience_groups.len(), first.has_next_page), (3, 2, true));
    let second =
        client.audience_groups(&AudienceListQuery::page(1).size(2).next_page()).await.unwrap();
    assert_eq!((second.audience_groups.len(), second.has_next_page), (1, false));
    let mut seen: Vec<_> = first
        .audience_groups
        .iter()
        .chain(&second.audience_groups)
        .map(|g| g.audience_group_id)
        .collect();
    seen.sort();
    assert_eq!(seen, ids);

    client.rename_audience(ids[0], "spring (2026)").await.unwrap();
    let found = client
        .audience_groups(
            &AudienceListQuery::page(1).description("SPRING").status(AudienceGroupStatus::Ready),
        )
        .await
        .unwrap();
    assert_eq!(found.audience_groups.len(), 1);
    assert_eq!(found.audience_groups[0].description.as_deref(), Some("spring (2026)"));

    client.delete_audience(ids[1]).await.unwrap();
    let err = client.audience_group(ids[1]).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    // LINE's limits, checked before sending.
    assert!(matches!(
        client.audience_groups(&AudienceListQuery::page(0)).await,
        Err(LineError::Validation(_))
    ));
    assert!(matches!(
        client.audience_groups(&AudienceListQuery::page(1).size(41)).await,
        Err(LineError::Validation(_))
    ));
    assert_conforms(&line);
}

#[tokio::test]
async fn shared_audiences_are_listed_and_read_with_their_owner() {
    let line = start(1).await;
    let client = client_for(&line);
    line.add_shared_audience(4_000_000_000_001, "本部の共有", "enishi HQ");
    line.add_shared_audience(4_000_000_000_002, "other", "enishi HQ");
    let page = client
        .shared_audience_groups(&AudienceListQuery::page(1).description("本部"))
        .await
        .unwrap();
    assert_eq!(page.audience_groups.len(), 1);
    let id = page.audience_groups[0].audience_group_id;
    let shared = client.shared_audience_group(id).await.unwrap();
    assert_eq!(shared.owner.and_then(|o| o.name).as_deref(), Some("enishi HQ"));
    let err = client.shared_audience_group(AudienceGroupId(1)).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert_conforms(&line);
}

#[tokio::test]
async fn delivery_counts_follow_what_was_sent() {
    let line = start(4).await;
    let client = client_for(&line);
    let people = users(4);
    client
        .push(PushRequest::new(people[0].clone(), vec![Message::text("a"), Message::text("b")]))
        .await
        .unwrap();
    client.broadcast(BroadcastRequest::new(vec![Message::text("all")])).await.unwrap();
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap())
        .date_naive();

    let stats = client.delivery_statistics(today).await.unwrap();
    assert_eq!(stats.status, StatisticsStatus::Ready);
    assert_eq!((stats.api_push, stats.api_broadcast, stats.api_reply), (Some(2), Some(4), Some(0)));
    assert_eq!(client.sent_count(SentKind::Push, today).await.unwrap().success, Some(2));
    assert_eq!(client.sent_count(SentKind::Broadcast, today).await.unwrap().success, Some(4));
    assert_eq!(client.sent_count(SentKind::Multicast, today).await.unwrap().success, Some(0));
    let followers = client.follower_statistics(today).await.unwrap();
    assert_eq!((followers.followers, followers.blocks), (Some(4), Some(0)));

    let tomorrow = today.succ_opt().unwrap();
    let later = client.delivery_statistics(tomorrow).await.unwrap();
    assert_eq!((later.status, later.api_push), (StatisticsStatus::Unready, None));
    assert_conforms(&line);
}

#[tokio::test]
async fn content_is_streamed_in_chunks_with_its_type() {
    let line = start(1).await;
    let client = client_for(&line);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    line.add_content("5001", FakeContent::new("video/mp4", data.clone()).preview(vec![9u8; 2048]));
    line.add_content(
        "5002",
        FakeContent::new("audio/m4a", vec![1u8; 10]).transcoding("processing"),
    );

    assert_eq!(client.content_transcoding("5001").await.unwrap(), TranscodingStatus::Succeeded);
    assert_eq!(client.content_transcoding("5002").await.unwrap(), TranscodingStatus::Processing);

    let mut stream = client.message_content("5001").await.unwrap();
    assert_eq!(stream.content_type(), Some("video/mp4"));
    assert_eq!(stream.content_length(), Some(300_000));
    let (mut received, mut chunks) = (Vec::new(), 0);
    while let Some(chunk) = stream.next().await {
        received.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    assert_eq!(received, data);
    assert!(chunks > 1, "the body arrived in one piece: not streamed");

    let mut preview = client.message_content_preview("5001").await.unwrap();
    let mut bytes = 0;
    while let Some(chunk) = preview.next().await {
        bytes += chunk.unwrap().len();
    }
    assert_eq!(bytes, 2048);

    // Not ready yet, unknown, and malformed IDs.
    assert_eq!(
        client.message_content("5002").await.unwrap_err().status().map(|s| s.as_u16()),
        Some(404)
    );
    assert_eq!(
        client.message_content("404").await.unwrap_err().status().map(|s| s.as_u16()),
        Some(404)
    );
    let before = line.counters().requests;
    assert!(matches!(client.message_content("../etc").await, Err(LineError::Validation(_))));
    assert_eq!(line.counters().requests, before);
    // Downloads go to the data host only, as on LINE.
    assert_eq!(line.path_count("/v2/bot/message/5001/content"), 1);
    assert_conforms(&line);
}
