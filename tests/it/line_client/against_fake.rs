//! The real client against the fake LINE server: exactly-once delivery under injected faults,
//! pacing that never provokes a 429, the quota stop, and every endpoint end to end.

use std::time::Duration;

use enishi::line::message::{Action, Message};
use enishi::line::{
    Bounds, BroadcastRequest, EndpointClass, LineClient, MulticastRequest, NarrowcastPhase,
    NarrowcastRecipient, NarrowcastRequest, PushRequest, RateLimit, RateLimits, ReplyRequest,
    RetryPolicy, RichMenu, RichMenuAlias, RichMenuSize, SendKind,
};
use enishi::testkit::{
    self as fake, Endpoint, FakeLine, FakeLineBuilder, FakeQuota, FakeUser, FaultTiming, Faults,
};
use enishi::{AggregationUnit, LineUserId};
use futures_util::StreamExt;

fn users(n: u64) -> Vec<LineUserId> {
    (0..n).map(|i| fake::user_id(i).parse().unwrap()).collect()
}

fn client_for(line: &FakeLine, limits: RateLimits, retry: RetryPolicy) -> LineClient {
    LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .rate_limits(limits)
        .retry_policy(retry)
        // Only a guard against a hang, never reached on a slow machine.
        .request_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn fast_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(20))
}

async fn start(builder: FakeLineBuilder) -> FakeLine {
    builder.start().await.expect("the fake LINE server starts")
}

#[tokio::test]
async fn every_user_gets_each_message_exactly_once_despite_500s_drops_and_429s() {
    let line = start(FakeLine::builder().seed(7).faults(Faults {
        server_error: 0.25,
        dropped: 0.1,
        rate_limited: 0.1,
        timing: FaultTiming::Either,
        endpoints: Some(vec![Endpoint::Push, Endpoint::Multicast]),
        ..Faults::default()
    }))
    .await;
    let client = client_for(&line, RateLimits::unlimited(), fast_retries(30));
    let people = users(1_300);
    for user in &people[..100] {
        let push = PushRequest::new(user.clone(), vec![Message::text("push")]);
        client.push(push).await.expect("retries end in acceptance");
    }
    let report = client
        .multicast_all(MulticastRequest::new(people.clone(), vec![Message::text("multi")]))
        .await
        .unwrap();
    assert!(report.is_complete(), "{:?}", report.failed().map(|c| &c.result).collect::<Vec<_>>());
    assert!(line.duplicate_deliveries().is_empty(), "nobody may get a message twice");
    for (i, user) in people.iter().enumerate() {
        let expected = if i < 100 { 2 } else { 1 };
        assert_eq!(line.messages_for(user.as_str()).len(), expected, "user {i}");
    }
    let c = line.counters();
    assert!(
        c.server_errors > 0 && c.dropped > 0 && c.rate_limited > 0,
        "faults were injected: {c:?}"
    );
    assert!(c.conflicts > 0, "some retries met an already accepted key: {c:?}");
}

#[tokio::test]
async fn client_pacing_keeps_a_burst_under_the_servers_limit() {
    let line = start(
        FakeLine::builder()
            .rate_limit(fake::FakeEndpointClass::Push, fake::FakeRateLimit::per_second(200)),
    )
    .await;
    let limits =
        RateLimits::default().with(EndpointClass::Standard, Some(RateLimit::per_second(200)));
    let client = client_for(&line, limits, RetryPolicy::never());
    let sends = users(500).into_iter().map(|u| {
        let client = client.clone();
        async move { client.push(PushRequest::new(u, vec![Message::text("burst")])).await }
    });
    let results = futures_util::future::join_all(sends).await;
    assert!(results.iter().all(Result::is_ok), "no call may fail");
    assert_eq!(line.counters().rate_limited, 0, "pacing must prevent every 429");
    assert_eq!(line.delivery_count(), 500);
}

#[tokio::test]
async fn without_pacing_the_server_answers_429_and_retries_recover() {
    // 20 tokens that never refill on their own: the 21st push meets the limit however slowly
    // the 60 pushes arrive. Once it has, the channel's limit is lifted and retries recover.
    let line = start(FakeLine::builder().rate_limit(
        fake::FakeEndpointClass::Push,
        fake::FakeRateLimit::per_hour(1).with_capacity(20),
    ))
    .await;
    let retries = fast_retries(u32::MAX).max_elapsed(Duration::from_secs(120));
    let client = client_for(&line, RateLimits::unlimited(), retries);
    let sends = users(60).into_iter().map(|u| {
        let client = client.clone();
        async move { client.push(PushRequest::new(u, vec![Message::text("x")])).await }
    });
    let lift = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while line.counters().rate_limited == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no push ever met the limit");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        line.set_rate_limit(fake::FakeEndpointClass::Push, fake::FakeRateLimit::unlimited());
    };
    let (results, ()) = tokio::join!(futures_util::future::join_all(sends), lift);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(line.counters().rate_limited > 0, "the unpaced burst must have met the limit");
    assert_eq!(line.delivery_count(), 60);
    assert!(line.duplicate_deliveries().is_empty());
}

#[tokio::test]
async fn an_exhausted_quota_stops_sends_without_retrying() {
    let line = start(FakeLine::builder().quota(FakeQuota::Limited(3))).await;
    let client = client_for(&line, RateLimits::default(), fast_retries(5));
    let people = users(4);
    for user in &people[..3] {
        client.push(PushRequest::new(user.clone(), vec![Message::text("ok")])).await.unwrap();
    }
    let err = client
        .push(PushRequest::new(people[3].clone(), vec![Message::text("no")]))
        .await
        .unwrap_err();
    assert!(err.is_quota_exceeded() && !err.is_retryable(), "{err}");
    assert_eq!(line.counters().quota_exceeded, 1, "a quota 429 is not retried");
    let quota = client.quota().await.unwrap();
    assert_eq!(quota.value, Some(3));
    assert_eq!(client.quota_consumption().await.unwrap(), 3);
}

#[tokio::test]
async fn every_endpoint_works_against_the_fake() {
    let people = users(60);
    // A manual clock: the audience and the narrowcast finish when the test moves it.
    let mut builder = FakeLine::builder()
        .manual_clock()
        .narrowcast_duration(Duration::from_secs(30))
        .audience_ready_after(Duration::from_secs(20));
    for (i, u) in people.iter().enumerate() {
        builder = builder.user(FakeUser::new(u.as_str()).display_name(format!("customer {i}")));
    }
    let line = start(builder).await;
    let c = client_for(&line, RateLimits::default(), fast_retries(3));

    // Users, link tokens, followers.
    assert_eq!(c.profile(&people[1]).await.unwrap().display_name, "customer 1");
    let token = c.issue_link_token(&people[2]).await.unwrap();
    assert_eq!(line.issued_link_tokens()[0].user_id, people[2].as_str());
    assert_eq!(line.issued_link_tokens()[0].link_token, token.expose());
    let followers: Vec<LineUserId> = c.follower_ids(Some(25)).map(Result::unwrap).collect().await;
    assert_eq!(followers.len(), 60);

    // Sending.
    let reply_token = line.issue_reply_token(people[0].as_str()).unwrap();
    c.reply(ReplyRequest::new(reply_token, vec![Message::text("reply")])).await.unwrap();
    let unit = AggregationUnit::new("quickstart_unit").unwrap();
    c.push(
        PushRequest::new(people[0].clone(), vec![Message::text("push")])
            .aggregation_unit(unit.clone()),
    )
    .await
    .unwrap();
    let broadcast = c.broadcast(BroadcastRequest::new(vec![Message::text("all")])).await.unwrap();
    for kind in [
        SendKind::Reply,
        SendKind::Push,
        SendKind::Multicast,
        SendKind::Narrowcast,
        SendKind::Broadcast,
    ] {
        c.validate_messages(kind, &[Message::text("ok")]).await.unwrap();
    }

    // Audience → narrowcast → progress → statistics.
    let audience = c.create_audience("june-birthdays", &people[..50]).await.unwrap();
    c.add_to_audience(audience.audience_group_id, &people[50..]).await.unwrap();
    assert!(!c.audience_group(audience.audience_group_id).await.unwrap().is_ready());
    line.advance(Duration::from_secs(20));
    assert!(c.audience_group(audience.audience_group_id).await.unwrap().is_ready());
    let nc = c
        .narrowcast(
            NarrowcastRequest::new(vec![Message::text("for you")])
                .recipient(NarrowcastRecipient::audience(audience.audience_group_id)),
        )
        .await
        .unwrap();
    let id = nc.request_id.clone().unwrap();
    assert!(!c.narrowcast_progress(&id).await.unwrap().is_finished());
    line.advance(Duration::from_secs(30));
    // The overall deadline only guards against a hang.
    let progress = c
        .wait_for_narrowcast(&id, Duration::from_millis(10), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(progress.phase, NarrowcastPhase::Succeeded);
    assert_eq!(progress.target_count, Some(60));
    c.message_statistics(broadcast.request_id.as_ref().unwrap()).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    c.aggregation_unit_statistics(
        &unit,
        today - chrono::Days::new(1),
        today + chrono::Days::new(1),
    )
    .await
    .unwrap();
    assert!(c.aggregation_unit_usage().await.unwrap() >= 1);
    assert!(c.aggregation_units().await.unwrap().contains(&unit.to_string()));

    // Rich menus.
    let menu = RichMenu::new("link", "連携する", RichMenuSize::HALF)
        .area(Bounds::new(0, 0, 2500, 843), Action::uri("連携", "https://shop.example/link"));
    c.validate_rich_menu(&menu).await.unwrap();
    let menu_id = c.create_rich_menu(&menu).await.unwrap();
    let png = super::png_header(2500, 843);
    c.upload_rich_menu_image(&menu_id, png).await.unwrap();
    c.set_default_rich_menu(&menu_id).await.unwrap();
    assert_eq!(c.default_rich_menu().await.unwrap(), Some(menu_id.clone()));
    c.link_rich_menu(&people[0], &menu_id).await.unwrap();
    assert_eq!(c.user_rich_menu(&people[0]).await.unwrap(), Some(menu_id.clone()));
    c.unlink_rich_menu(&people[0]).await.unwrap();
    assert_eq!(c.user_rich_menu(&people[0]).await.unwrap(), None);
    c.bulk_link_rich_menu(&people, &menu_id).await.unwrap();
    c.bulk_unlink_rich_menu(&people[..10]).await.unwrap();
    let alias = RichMenuAlias::new("link-menu".parse().unwrap(), menu_id.clone());
    c.create_rich_menu_alias(&alias).await.unwrap();
    c.update_rich_menu_alias(&alias.rich_menu_alias_id, &menu_id).await.unwrap();
    assert_eq!(c.rich_menu_alias(&alias.rich_menu_alias_id).await.unwrap(), alias);
    assert_eq!(c.rich_menu_aliases().await.unwrap().len(), 1);
    c.delete_rich_menu_alias(&alias.rich_menu_alias_id).await.unwrap();
    assert_eq!(c.rich_menu(&menu_id).await.unwrap().name, "link");
    assert_eq!(c.rich_menus().await.unwrap().len(), 1);
    c.cancel_default_rich_menu().await.unwrap();
    c.delete_rich_menu(&menu_id).await.unwrap();
    assert_eq!(line.counters().bad_requests, 0, "the fake found every request well-formed");
    assert_eq!(line.counters().unmatched, 0, "every path the client used exists");
}
