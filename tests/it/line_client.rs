//! Tests of `enishi::line::LineClient` against wiremock: request shapes, retries with hit
//! counts, 409-as-success, quota vs rate-limit 429, validation, and secret redaction.

use std::time::Duration;

use enishi::line::message::Message;
use enishi::line::{
    Bounds, BroadcastRequest, LineClient, LineError, MulticastRequest, NarrowcastPhase,
    NarrowcastRecipient, NarrowcastRequest, PushRequest, RateLimits, ReplyRequest, RetryPolicy,
    RichMenu, RichMenuAlias, RichMenuSize, SendKind,
};
use enishi::{AggregationUnit, AudienceGroupId, LineUserId, RequestId, RetryKey, RichMenuId};
use futures_util::StreamExt;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "test-channel-access-token-0123456789";

fn user(n: u32) -> LineUserId {
    LineUserId::new(format!("U{n:032x}")).unwrap()
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).insert_header("x-line-request-id", "req-ok").set_body_json(body)
}

fn line_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-line-request-id", format!("req-{status}"))
        .set_body_json(json!({ "message": message }))
}

/// A client pointed at `server`, with fast retries and no pacing (pacing has its own tests).
fn client(server: &MockServer) -> LineClient {
    LineClient::builder()
        .channel_access_token(TOKEN)
        .base_url(server.uri())
        .data_base_url(server.uri())
        .retry_policy(RetryPolicy::default().initial_backoff(Duration::from_millis(1)))
        .rate_limits(RateLimits::unlimited())
        .build()
        .unwrap()
}

/// Answers any request no other mock matched with a 500 that names it, so a wrong path shows
/// up as a failing test with a readable message. Mounted last (lowest priority).
async fn unexpected(server: &MockServer) {
    Mock::given(wiremock::matchers::any())
        .respond_with(|req: &Request| {
            ResponseTemplate::new(599)
                .set_body_string(format!("unexpected request {} {}", req.method, req.url))
        })
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}

async fn hits(server: &MockServer, p: &str) -> Vec<Request> {
    server.received_requests().await.unwrap().into_iter().filter(|r| r.url.path() == p).collect()
}

fn json_of(req: &Request) -> Value {
    serde_json::from_slice(&req.body).unwrap()
}

fn retry_key_of(req: &Request) -> Option<String> {
    req.headers.get("x-line-retry-key").map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn push_sends_lines_json_with_bearer_token_and_a_retry_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/bot/message/push"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .and(header_exists("x-line-retry-key"))
        .and(body_json(json!({
            "to": user(1).as_str(),
            "messages": [{"type": "text", "text": "hello"}],
            "notificationDisabled": true,
            "customAggregationUnits": ["spring_sale"],
        })))
        .respond_with(ok(
            json!({"sentMessages": [{"id": "461230966842064897", "quoteToken": "q"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    unexpected(&server).await;
    let sent = client(&server)
        .push(
            PushRequest::new(user(1), vec![Message::text("hello")])
                .notification_disabled(true)
                .aggregation_unit(AggregationUnit::new("spring_sale").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(sent.accepted.request_id, Some(RequestId::new("req-ok").unwrap()));
    assert!(!sent.accepted.already_accepted);
    assert_eq!(sent.sent_messages[0].id.as_str(), "461230966842064897");
    let key = retry_key_of(&hits(&server, "/v2/bot/message/push").await[0]).unwrap();
    assert_eq!(key, sent.accepted.retry_key.as_str());
}

#[tokio::test]
async fn push_retries_500s_with_the_same_retry_key() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(line_error(500, "Internal server error"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(ok(json!({"sentMessages": [{"id": "1"}]})))
        .mount(&server)
        .await;
    let key = RetryKey::generate();
    let sent = client(&server)
        .push(PushRequest::new(user(2), vec![Message::text("hi")]).retry_key(key.clone()))
        .await
        .unwrap();
    let requests = hits(&server, "/v2/bot/message/push").await;
    assert_eq!(requests.len(), 3, "two 500s then a success");
    for r in &requests {
        assert_eq!(retry_key_of(r).as_deref(), Some(key.as_str()), "every attempt reuses the key");
        assert_eq!(r.body, requests[0].body, "every attempt sends the same body");
    }
    assert_eq!(sent.accepted.retry_key, key);
}

#[tokio::test]
async fn a_409_on_a_retried_push_is_success_with_the_accepted_request_id() {
    let server = MockServer::start().await;
    // The first attempt is accepted by LINE but the answer is lost (500 here); the retry
    // then meets "already accepted".
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(line_error(500, "Internal server error"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(
            ResponseTemplate::new(409)
                .insert_header("x-line-request-id", "req-retry")
                .insert_header("x-line-accepted-request-id", "req-original")
                .set_body_json(json!({
                    "message": "The retry key is already accepted",
                    "sentMessages": [{"id": "999", "quoteToken": "qt"}],
                })),
        )
        .mount(&server)
        .await;
    let sent =
        client(&server).push(PushRequest::new(user(3), vec![Message::text("once")])).await.unwrap();
    assert!(sent.accepted.already_accepted);
    assert_eq!(sent.accepted.accepted_request_id.as_ref().unwrap().as_str(), "req-original");
    assert_eq!(sent.accepted.effective_request_id().unwrap().as_str(), "req-original");
    assert_eq!(sent.sent_messages[0].id.as_str(), "999");
    assert_eq!(hits(&server, "/v2/bot/message/push").await.len(), 2, "no third attempt");
}

#[tokio::test]
async fn reply_is_never_retried_and_carries_no_retry_key() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/reply"))
        .respond_with(line_error(500, "Internal server error"))
        .mount(&server)
        .await;
    let err = client(&server)
        .reply(ReplyRequest::new("reply-token", vec![Message::text("hi")]))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));
    let requests = hits(&server, "/v2/bot/message/reply").await;
    assert_eq!(requests.len(), 1, "a reply token is single use: never retried");
    assert_eq!(retry_key_of(&requests[0]), None);
    assert_eq!(json_of(&requests[0])["replyToken"], "reply-token");
}

#[tokio::test]
async fn reply_returns_sent_messages() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/reply"))
        .respond_with(ok(json!({"sentMessages": [{"id": "7", "quoteToken": "q7"}]})))
        .mount(&server)
        .await;
    let r = client(&server).reply(ReplyRequest::new("t", vec![Message::text("hi")])).await.unwrap();
    assert_eq!(r.sent_messages[0].quote_token.as_deref(), Some("q7"));
    assert_eq!(r.request_id.unwrap().as_str(), "req-ok");
}

#[tokio::test]
async fn quota_429_is_not_retried_and_is_reported_as_quota() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(line_error(429, "You have reached your monthly limit."))
        .mount(&server)
        .await;
    let err = client(&server)
        .push(PushRequest::new(user(4), vec![Message::text("x")]))
        .await
        .unwrap_err();
    assert!(err.is_quota_exceeded());
    assert!(!err.is_rate_limited());
    assert!(!err.is_retryable());
    assert_eq!(err.request_id().unwrap().as_str(), "req-429");
    assert_eq!(hits(&server, "/v2/bot/message/push").await.len(), 1);
}

#[tokio::test]
async fn rate_limit_429_is_retried_until_attempts_run_out() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(line_error(429, "The API rate limit has been exceeded. Try again later."))
        .mount(&server)
        .await;
    let client = LineClient::builder()
        .channel_access_token(TOKEN)
        .base_url(server.uri())
        .rate_limits(RateLimits::unlimited())
        .retry_policy(
            RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    let err = client.push(PushRequest::new(user(5), vec![Message::text("x")])).await.unwrap_err();
    assert!(err.is_rate_limited() && !err.is_quota_exceeded());
    assert_eq!(err.api().unwrap().attempts, 3);
    assert_eq!(hits(&server, "/v2/bot/message/push").await.len(), 3);
}

#[tokio::test]
async fn a_400_is_not_retried_and_keeps_lines_details() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-line-request-id", "req-bad")
                .set_body_json(json!({"message": "The request body has 1 error(s)",
                   "details": [{"message": "May not be empty", "property": "messages[0].text"}]})),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .push(PushRequest::new(user(6), vec![Message::text("x")]))
        .await
        .unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.status.as_u16(), 400);
    assert_eq!(api.details[0].property.as_deref(), Some("messages[0].text"));
    assert!(err.to_string().contains("May not be empty"), "{err}");
    assert_eq!(hits(&server, "/v2/bot/message/push").await.len(), 1);
}

#[tokio::test]
async fn gets_are_retried_but_plain_posts_are_not() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/bot/profile/{}", user(7))))
        .respond_with(line_error(500, "oops"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/bot/profile/{}", user(7))))
        .respond_with(ok(
            json!({"displayName": "Hanako", "userId": user(7).as_str(), "language": "ja"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/bot/user/{}/linkToken", user(7))))
        .respond_with(line_error(500, "oops"))
        .mount(&server)
        .await;
    let c = client(&server);
    let profile = c.profile(&user(7)).await.unwrap();
    assert_eq!(profile.display_name, "Hanako");
    assert_eq!(profile.language.as_deref(), Some("ja"));
    assert_eq!(hits(&server, &format!("/v2/bot/profile/{}", user(7))).await.len(), 2);
    assert!(c.issue_link_token(&user(7)).await.is_err());
    let link = hits(&server, &format!("/v2/bot/user/{}/linkToken", user(7))).await;
    assert_eq!(link.len(), 1, "issuing a link token is not idempotent: no retry");
    assert_eq!(retry_key_of(&link[0]), None);
}

#[tokio::test]
async fn link_token_is_returned_and_redacted_in_debug() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/bot/user/{}/linkToken", user(8))))
        .respond_with(ok(json!({"linkToken": "NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY"})))
        .mount(&server)
        .await;
    let token = client(&server).issue_link_token(&user(8)).await.unwrap();
    assert_eq!(token.expose(), "NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY");
    assert!(!format!("{token:?}").contains("NMZT"));
}

#[tokio::test]
async fn a_link_token_in_an_undecodable_answer_is_hidden_in_debug() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/bot/user/{}/linkToken", user(9))))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"linkToken":"NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY","#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = client(&server).issue_link_token(&user(9)).await.unwrap_err();
    assert!(matches!(err, LineError::Decode { .. }), "{err:?}");
    let shown = format!("{err:?} {err}");
    assert!(!shown.contains("NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY"), "{shown}");
}

#[test]
fn credentials_in_base_urls_are_hidden_in_debug() {
    let builder = LineClient::builder()
        .channel_access_token(TOKEN)
        .base_url("https://proxy-user:s3cret@proxy.example/line")
        .data_base_url("https://proxy-user:s3cret@proxy.example/data");
    assert!(!format!("{builder:?}").contains("s3cret"), "{builder:?}");
    let c = builder.build().unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cret") && shown.contains("proxy.example"), "{shown}");
    let err = LineClient::builder()
        .channel_access_token(TOKEN)
        .base_url("ftp://u:s3cret@proxy.example")
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[tokio::test]
async fn multicast_all_splits_into_chunks_of_500_with_one_key_each_and_reports_per_chunk() {
    let server = MockServer::start().await;
    // The second chunk is refused; the others are accepted.
    Mock::given(path("/v2/bot/message/multicast"))
        .and(|req: &Request| json_of(req)["to"][0] == user(500).as_str())
        .respond_with(line_error(400, "The request body has 1 error(s)"))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/multicast")).respond_with(ok(json!({}))).mount(&server).await;
    let to: Vec<LineUserId> = (0..1201).map(user).collect();
    let request = MulticastRequest::new(to, vec![Message::text("sale")]);
    assert_eq!(request.chunk_count(), 3);
    let report = client(&server).multicast_all(request).await.unwrap();
    assert_eq!(report.chunks.len(), 3);
    assert_eq!(report.chunks[0].recipients, 0..500);
    assert_eq!(report.chunks[2].recipients, 1000..1201);
    assert!(report.chunks[0].result.is_ok() && report.chunks[2].result.is_ok());
    assert_eq!(report.chunks[1].result.as_ref().unwrap_err().status().unwrap().as_u16(), 400);
    assert!(!report.is_complete());
    assert_eq!(report.accepted_recipients(), 701);
    let requests = hits(&server, "/v2/bot/message/multicast").await;
    assert_eq!(requests.len(), 3, "a 400 is not retried");
    let mut sizes: Vec<usize> =
        requests.iter().map(|r| json_of(r)["to"].as_array().unwrap().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![201, 500, 500]);
    let mut keys: Vec<String> = requests.iter().map(|r| retry_key_of(r).unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3, "one distinct key per chunk");
}

#[tokio::test]
async fn multicast_all_reuses_caller_keys_and_rejects_a_wrong_key_count() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/multicast")).respond_with(ok(json!({}))).mount(&server).await;
    let to: Vec<LineUserId> = (0..600).map(user).collect();
    let keys = vec![RetryKey::generate(), RetryKey::generate()];
    let report = client(&server)
        .multicast_all(
            MulticastRequest::new(to.clone(), vec![Message::text("a")]).retry_keys(keys.clone()),
        )
        .await
        .unwrap();
    assert!(report.is_complete());
    assert_eq!(report.chunks[0].retry_key, keys[0]);
    assert_eq!(report.chunks[1].retry_key, keys[1]);
    let err = client(&server)
        .multicast_all(
            MulticastRequest::new(to, vec![Message::text("a")])
                .retry_keys(vec![RetryKey::generate()]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LineError::Validation(_)), "{err}");
    assert_eq!(hits(&server, "/v2/bot/message/multicast").await.len(), 2);
}

#[tokio::test]
async fn multicast_sends_one_request_with_its_key_and_refuses_more_than_500() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/multicast")).respond_with(ok(json!({}))).mount(&server).await;
    let key = RetryKey::generate();
    let to: Vec<LineUserId> = (0..500).map(user).collect();
    let accepted = client(&server)
        .multicast(
            MulticastRequest::new(to.clone(), vec![Message::text("a")]).retry_key(key.clone()),
        )
        .await
        .unwrap();
    assert_eq!(accepted.retry_key, key);
    let requests = hits(&server, "/v2/bot/message/multicast").await;
    assert_eq!(requests.len(), 1, "one call");
    assert_eq!(json_of(&requests[0])["to"].as_array().unwrap().len(), 500);
    assert_eq!(retry_key_of(&requests[0]).unwrap(), key.as_str());

    let mut to = to;
    to.push(user(500));
    let err = client(&server)
        .multicast(MulticastRequest::new(to.clone(), vec![Message::text("a")]))
        .await
        .unwrap_err();
    let LineError::Validation(v) = &err else { panic!("{err}") };
    assert_eq!(v.violations[0].path, "to");
    assert!(err.to_string().contains("at most 500") && err.to_string().contains("501"), "{err}");
    let two_keys = MulticastRequest::new(to[..2].to_vec(), vec![Message::text("a")])
        .retry_keys(vec![RetryKey::generate(), RetryKey::generate()]);
    let err = client(&server).multicast(two_keys).await.unwrap_err();
    assert!(matches!(err, LineError::Validation(_)), "{err}");
    assert_eq!(hits(&server, "/v2/bot/message/multicast").await.len(), 1, "nothing more sent");
}

#[tokio::test]
async fn invalid_messages_are_rejected_locally_and_nothing_is_sent() {
    let server = MockServer::start().await;
    unexpected(&server).await;
    let c = client(&server);
    let six = vec![Message::text("a"); 6];
    let err = c.push(PushRequest::new(user(9), six)).await.unwrap_err();
    let LineError::Validation(v) = &err else { panic!("{err}") };
    assert_eq!(v.violations[0].path, "messages");
    let long = "あ".repeat(5001);
    let err = c
        .push(PushRequest::new(user(9), vec![Message::text("ok"), Message::text(long)]))
        .await
        .unwrap_err();
    let LineError::Validation(v) = &err else { panic!("{err}") };
    assert_eq!(v.violations[0].path, "messages[1].text");
    assert!(err.to_string().contains("5000"), "{err}");
    assert!(c.multicast(MulticastRequest::new(vec![], vec![Message::text("a")])).await.is_err());
    assert!(c.broadcast(BroadcastRequest::new(vec![])).await.is_err());
    assert!(c.reply(ReplyRequest::new("", vec![Message::text("a")])).await.is_err());
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing may be sent");
}

#[tokio::test]
async fn broadcast_and_narrowcast_carry_retry_keys_and_narrowcast_progress_is_polled() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/broadcast")).respond_with(ok(json!({}))).mount(&server).await;
    Mock::given(path("/v2/bot/message/narrowcast"))
        .and(body_json(json!({
            "messages": [{"type": "text", "text": "for you"}],
            "recipient": {"type": "audience", "audienceGroupId": 4389303728991_i64},
            "limit": {"max": 100},
        })))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("x-line-request-id", "nc-1")
                .set_body_json(json!({})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/progress/narrowcast"))
        .and(query_param("requestId", "nc-1"))
        .respond_with(ok(json!({"phase": "sending", "acceptedTime": "2026-11-24T10:00:00.000Z"})))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/progress/narrowcast"))
        .respond_with(ok(json!({"phase": "succeeded", "successCount": 120, "failureCount": 0,
                                "targetCount": 120, "acceptedTime": "2026-11-24T10:00:00.000Z",
                                "completedTime": "2026-11-24T10:00:05.000Z", "newField": 1})))
        .mount(&server)
        .await;
    let c = client(&server);
    let b = c.broadcast(BroadcastRequest::new(vec![Message::text("all")])).await.unwrap();
    assert_eq!(
        retry_key_of(&hits(&server, "/v2/bot/message/broadcast").await[0]).unwrap(),
        b.retry_key.as_str()
    );
    let limit = enishi::line::NarrowcastLimit::max(100);
    let n = c
        .narrowcast(
            NarrowcastRequest::new(vec![Message::text("for you")])
                .recipient(NarrowcastRecipient::audience(AudienceGroupId(4389303728991)))
                .limit(limit),
        )
        .await
        .unwrap();
    assert!(retry_key_of(&hits(&server, "/v2/bot/message/narrowcast").await[0]).is_some());
    let id = n.request_id.unwrap();
    let progress = c
        .wait_for_narrowcast(&id, Duration::from_millis(1), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(progress.phase, NarrowcastPhase::Succeeded);
    assert_eq!(progress.success_count, Some(120));
    assert_eq!(hits(&server, "/v2/bot/message/progress/narrowcast").await.len(), 3);
}

#[tokio::test]
async fn unknown_narrowcast_phase_is_kept_not_an_error() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/progress/narrowcast"))
        .respond_with(ok(json!({"phase": "paused_for_review"})))
        .mount(&server)
        .await;
    let p = client(&server).narrowcast_progress(&RequestId::new("x").unwrap()).await.unwrap();
    assert_eq!(p.phase, NarrowcastPhase::Unknown("paused_for_review".into()));
    assert!(!p.is_finished());
}

#[tokio::test]
async fn message_validation_endpoints_are_called_per_send_kind() {
    let server = MockServer::start().await;
    for kind in ["reply", "push", "multicast", "narrowcast", "broadcast"] {
        Mock::given(path(format!("/v2/bot/message/validate/{kind}")))
            .and(body_json(json!({"messages": [{"type": "text", "text": "check"}]})))
            .respond_with(ok(json!({})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let messages = vec![Message::text("check")];
    for kind in [
        SendKind::Reply,
        SendKind::Push,
        SendKind::Multicast,
        SendKind::Narrowcast,
        SendKind::Broadcast,
    ] {
        c.validate_messages(kind, &messages).await.unwrap();
    }
}

#[tokio::test]
async fn follower_ids_stream_follows_next_tokens() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/followers/ids"))
        .and(query_param("start", "page2"))
        .respond_with(ok(json!({"userIds": [user(3).as_str()]})))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/followers/ids"))
        .and(query_param("limit", "2"))
        .respond_with(ok(json!({"userIds": [user(1).as_str(), user(2).as_str()], "next": "page2"})))
        .mount(&server)
        .await;
    let c = client(&server);
    let ids: Vec<LineUserId> =
        c.follower_ids(Some(2)).map(|r| r.unwrap()).collect::<Vec<_>>().await;
    assert_eq!(ids, vec![user(1), user(2), user(3)]);
    assert_eq!(hits(&server, "/v2/bot/followers/ids").await.len(), 2);
}

#[tokio::test]
async fn rich_menu_lifecycle_uses_the_data_host_for_images() {
    let api = MockServer::start().await;
    let data = MockServer::start().await;
    let menu_id = "richmenu-88c05ef6921ae53f8b58a25f3a65faf7";
    Mock::given(method("POST"))
        .and(path("/v2/bot/richmenu"))
        .respond_with(ok(json!({"richMenuId": menu_id})))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/bot/richmenu/{menu_id}/content")))
        .and(header("content-type", "image/png"))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&data)
        .await;
    for (m, p) in [
        ("POST", format!("/v2/bot/user/all/richmenu/{menu_id}")),
        ("POST", format!("/v2/bot/user/{}/richmenu/{menu_id}", user(1))),
        ("DELETE", format!("/v2/bot/user/{}/richmenu", user(1))),
        ("POST", "/v2/bot/richmenu/bulk/link".to_owned()),
        ("POST", "/v2/bot/richmenu/bulk/unlink".to_owned()),
        ("POST", "/v2/bot/richmenu/alias".to_owned()),
        ("POST", "/v2/bot/richmenu/alias/link-menu".to_owned()),
        ("DELETE", "/v2/bot/richmenu/alias/link-menu".to_owned()),
        ("DELETE", format!("/v2/bot/richmenu/{menu_id}")),
        ("DELETE", "/v2/bot/user/all/richmenu".to_owned()),
    ] {
        Mock::given(method(m)).and(path(p)).respond_with(ok(json!({}))).mount(&api).await;
    }
    Mock::given(method("GET"))
        .and(path("/v2/bot/richmenu/alias/link-menu"))
        .respond_with(ok(json!({"richMenuAliasId": "link-menu", "richMenuId": menu_id})))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/bot/richmenu/alias/list"))
        .respond_with(ok(
            json!({"aliases": [{"richMenuAliasId": "link-menu", "richMenuId": menu_id}]}),
        ))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/bot/user/{}/richmenu", user(2))))
        .respond_with(line_error(404, "the user has no richmenu"))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/bot/richmenu/list"))
        .respond_with(ok(
            json!({"richmenus": [{"richMenuId": menu_id, "size": {"width": 2500, "height": 843},
            "selected": false, "name": "link", "chatBarText": "連携する",
            "areas": [{"bounds": {"x": 0, "y": 0, "width": 2500, "height": 843},
                       "action": {"type": "someFutureAction"}}]}]}),
        ))
        .mount(&api)
        .await;
    unexpected(&api).await;
    let c = LineClient::builder()
        .channel_access_token(TOKEN)
        .base_url(api.uri())
        .data_base_url(data.uri())
        .rate_limits(RateLimits::unlimited())
        .build()
        .unwrap();
    let menu = RichMenu::new("link", "連携する", RichMenuSize::HALF).area(
        Bounds::new(0, 0, 2500, 843),
        enishi::line::message::Action::uri("連携する", "https://shop.example/link"),
    );
    let id = c.create_rich_menu(&menu).await.unwrap();
    assert_eq!(id.as_str(), menu_id);
    let created = json_of(&hits(&api, "/v2/bot/richmenu").await[0]);
    assert_eq!(created["chatBarText"], "連携する");
    assert_eq!(created["areas"][0]["action"]["uri"], "https://shop.example/link");
    let png = png_header(2500, 843);
    c.upload_rich_menu_image(&id, png).await.unwrap();
    c.set_default_rich_menu(&id).await.unwrap();
    c.link_rich_menu(&user(1), &id).await.unwrap();
    c.unlink_rich_menu(&user(1)).await.unwrap();
    assert_eq!(c.user_rich_menu(&user(2)).await.unwrap(), None);
    let many: Vec<LineUserId> = (0..1001).map(user).collect();
    c.bulk_link_rich_menu(&many, &id).await.unwrap();
    assert_eq!(hits(&api, "/v2/bot/richmenu/bulk/link").await.len(), 3, "≤ 500 users per call");
    c.bulk_unlink_rich_menu(&many[..10]).await.unwrap();
    let alias = RichMenuAlias::new("link-menu".parse().unwrap(), id.clone());
    c.create_rich_menu_alias(&alias).await.unwrap();
    c.update_rich_menu_alias(&alias.rich_menu_alias_id, &id).await.unwrap();
    assert_eq!(c.rich_menu_alias(&alias.rich_menu_alias_id).await.unwrap(), alias);
    assert_eq!(c.rich_menu_aliases().await.unwrap(), vec![alias.clone()]);
    c.delete_rich_menu_alias(&alias.rich_menu_alias_id).await.unwrap();
    let menus = c.rich_menus().await.unwrap();
    assert_eq!(menus[0].rich_menu_id, RichMenuId::new(menu_id).unwrap());
    c.delete_rich_menu(&id).await.unwrap();
    c.cancel_default_rich_menu().await.unwrap();
}

#[tokio::test]
async fn rich_menu_limits_are_checked_locally() {
    let server = MockServer::start().await;
    unexpected(&server).await;
    let c = client(&server);
    let too_tall = RichMenu::new("x", "menu", RichMenuSize::new(1000, 800));
    let err = c.create_rich_menu(&too_tall).await.unwrap_err();
    assert!(err.to_string().contains("1.45"), "{err}");
    let long_bar = RichMenu::new("x", "メニューを開いてください!!!", RichMenuSize::FULL);
    assert!(c.create_rich_menu(&long_bar).await.is_err());
    let id = RichMenuId::new("richmenu-1").unwrap();
    let err = c.upload_rich_menu_image(&id, b"GIF89a....".to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("JPEG or PNG"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn audiences_upload_in_chunks_of_10000_and_report_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/bot/audienceGroup/upload"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "audienceGroupId": 4389303728991_i64, "createRoute": "MESSAGING_API", "type": "UPLOAD",
            "description": "june-birthdays", "created": 1613698278, "permission": "READ_WRITE",
            "expireTimestamp": 1629250278, "isIfaAudience": false})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/bot/audienceGroup/upload"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/bot/audienceGroup/4389303728991"))
        .respond_with(ok(json!({"audienceGroup": {"audienceGroupId": 4389303728991_i64, "status": "READY",
            "type": "UPLOAD", "audienceCount": 25000, "description": "june-birthdays"}, "jobs": []})))
        .mount(&server)
        .await;
    let c = client(&server);
    let ids: Vec<LineUserId> = (0..25_000).map(user).collect();
    let group = c.create_audience("june-birthdays", &ids).await.unwrap();
    assert_eq!(group.audience_group_id, AudienceGroupId(4389303728991));
    let created = json_of(&hits(&server, "/v2/bot/audienceGroup/upload").await[0]);
    assert_eq!(created["audiences"].as_array().unwrap().len(), 10_000);
    assert_eq!(created["audiences"][0]["id"], user(0).as_str());
    let requests = hits(&server, "/v2/bot/audienceGroup/upload").await;
    let puts: Vec<&Request> = requests.iter().filter(|r| r.method.as_str() == "PUT").collect();
    assert_eq!(puts.len(), 2);
    assert_eq!(json_of(puts[1])["audiences"].as_array().unwrap().len(), 5_000);
    assert_eq!(json_of(puts[0])["audienceGroupId"], 4389303728991_i64);
    let status = c.audience_group(group.audience_group_id).await.unwrap();
    assert!(status.is_ready());
    assert_eq!(status.audience_count, Some(25_000));
    assert!(c.create_audience(&"x".repeat(121), &ids[..1]).await.is_err());
}

#[tokio::test]
async fn quota_consumption_and_statistics_are_decoded() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/quota"))
        .respond_with(ok(json!({"type": "limited", "value": 15000})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/quota/consumption"))
        .respond_with(ok(json!({"totalUsage": 500})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/insight/message/event"))
        .and(query_param("requestId", "req-7"))
        .respond_with(ok(json!({"overview": {"requestId": "req-7", "timestamp": 1568214000, "delivered": 32,
            "uniqueImpression": 4, "uniqueClick": null, "uniqueMediaPlayed": null, "uniqueMediaPlayed100Percent": null},
            "messages": [{"seq": 1, "impression": 18, "uniqueImpression": null}],
            "clicks": [{"seq": 1, "url": "https://shop.example/", "click": 25, "uniqueClick": null, "uniqueClickOfRequest": null}]})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/insight/message/event/aggregation"))
        .and(query_param("customAggregationUnit", "f2_day7"))
        .and(query_param("from", "20261101"))
        .and(query_param("to", "20261124"))
        .respond_with(ok(json!({"overview": {"uniqueImpression": 40, "uniqueClick": 30}, "messages": [], "clicks": []})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/aggregation/info"))
        .respond_with(ok(json!({"numOfCustomAggregationUnits": 22})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/aggregation/list"))
        .and(query_param("start", "n1"))
        .respond_with(ok(json!({"customAggregationUnits": ["b"]})))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/bot/message/aggregation/list"))
        .respond_with(ok(json!({"customAggregationUnits": ["a"], "next": "n1"})))
        .mount(&server)
        .await;
    let c = client(&server);
    let q = c.quota().await.unwrap();
    assert_eq!((q.kind.as_str(), q.value), ("limited", Some(15000)));
    assert_eq!(c.quota_consumption().await.unwrap(), 500);
    let s = c.message_statistics(&RequestId::new("req-7").unwrap()).await.unwrap();
    assert_eq!(s.overview.delivered, Some(32));
    assert_eq!(s.overview.unique_click, None, "LINE hides values below 20 as null");
    assert_eq!(s.clicks[0].click, Some(25));
    let unit = AggregationUnit::new("f2_day7").unwrap();
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let a = c.aggregation_unit_statistics(&unit, day(1), day(24)).await.unwrap();
    assert_eq!(a.overview.unique_click, Some(30));
    let err = c
        .aggregation_unit_statistics(
            &unit,
            day(1),
            chrono::NaiveDate::from_ymd_opt(2026, 12, 15).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LineError::Validation(_)));
    assert_eq!(c.aggregation_unit_usage().await.unwrap(), 22);
    assert_eq!(c.aggregation_units().await.unwrap(), vec!["a", "b"]);
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_a_decode_error_that_keeps_the_body() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/quota/consumption"))
        .respond_with(ok(json!({"totalUsage": "many"})))
        .mount(&server)
        .await;
    let err = client(&server).quota_consumption().await.unwrap_err();
    let LineError::Decode { body, request_id, .. } = &err else { panic!("{err}") };
    assert!(body.contains("many"));
    assert_eq!(request_id.as_ref().unwrap().as_str(), "req-ok");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_timeout_is_retried_for_a_push_and_reported_as_transport() {
    let server = MockServer::start().await;
    // An answer that never comes in time, however slowly the client's timer fires.
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(ok(json!({"sentMessages": []})).set_delay(Duration::from_secs(3600)))
        .mount(&server)
        .await;
    let c = LineClient::builder()
        .channel_access_token(TOKEN)
        .base_url(server.uri())
        .rate_limits(RateLimits::unlimited())
        .request_timeout(Duration::from_secs(1))
        .retry_policy(
            RetryPolicy::default().max_attempts(2).initial_backoff(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    let err = c.push(PushRequest::new(user(1), vec![Message::text("slow")])).await.unwrap_err();
    assert!(err.is_timeout() && err.is_retryable(), "{err:?}");
    assert!(matches!(err, LineError::Transport { attempts: 2, .. }), "{err:?}");
    // The timeout covers connecting too, so on a loaded machine an attempt may time out before
    // the server sees it: count at most, and check that whatever arrived carried one key.
    let pushes = hits(&server, "/v2/bot/message/push").await;
    assert!(pushes.len() <= 2, "{} requests for 2 attempts", pushes.len());
    let keys: std::collections::HashSet<_> = pushes.iter().map(retry_key_of).collect();
    assert!(keys.len() <= 1 && !keys.contains(&None), "{keys:?}");
}

#[tokio::test]
async fn the_channel_access_token_never_appears_in_debug_output() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/push"))
        .respond_with(line_error(401, "Authentication failed"))
        .mount(&server)
        .await;
    let builder = LineClient::builder().channel_access_token(TOKEN).base_url(server.uri());
    assert!(!format!("{builder:?}").contains(TOKEN));
    let c = builder.build().unwrap();
    assert!(!format!("{c:?}").contains(TOKEN));
    let err = c.push(PushRequest::new(user(1), vec![Message::text("x")])).await.unwrap_err();
    assert!(!format!("{err:?}").contains(TOKEN) && !err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn builder_reports_bad_configuration() {
    assert!(matches!(LineClient::builder().build(), Err(LineError::Config(_))));
    assert!(matches!(LineClient::new(""), Err(LineError::Config(_))));
    assert!(matches!(LineClient::new("bad\ntoken"), Err(LineError::Config(_))));
    let err =
        LineClient::builder().channel_access_token("t").base_url("not a url").build().unwrap_err();
    assert!(err.to_string().contains("base_url"), "{err}");
    assert!(LineClient::builder().channel_access_token("t").base_url("ftp://x").build().is_err());
}

#[tokio::test]
async fn clones_share_the_rate_limit_buckets() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/bot/message/quota"))
        .respond_with(ok(json!({"type": "none"})))
        .mount(&server)
        .await;
    let limits = RateLimits::unlimited().with(
        enishi::line::EndpointClass::Standard,
        Some(enishi::line::RateLimit::per_second(20).burst(1)),
    );
    let a = LineClient::builder()
        .channel_access_token(TOKEN)
        .base_url(server.uri())
        .rate_limits(limits)
        .build()
        .unwrap();
    let b = a.clone();
    let started = std::time::Instant::now();
    let calls = (0..6).map(|i| {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { c.quota().await.unwrap() }
    });
    futures_util::future::join_all(calls).await;
    // 1 immediately, then 5 more at 20/s: at least 250 ms when the bucket is shared.
    assert!(started.elapsed() >= Duration::from_millis(240), "{:?}", started.elapsed());
}

mod against_fake;
mod api_2026;
pub(crate) mod conformance;
mod multi_account;
#[cfg(feature = "redis")]
pub(crate) mod redis_limit;
mod spec_conformance;
mod tokens;

/// The first bytes of a PNG of the given size: enough for LINE's (and our) header checks.
pub(crate) fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png
}

#[tokio::test]
async fn rich_menu_images_of_the_wrong_size_are_rejected_locally() {
    let server = MockServer::start().await;
    unexpected(&server).await;
    let id = RichMenuId::new("richmenu-1").unwrap();
    let err =
        client(&server).upload_rich_menu_image(&id, png_header(1000, 1000)).await.unwrap_err();
    assert!(err.to_string().contains("1.45"), "{err}");
    let err =
        client(&server).upload_rich_menu_image(&id, png_header(3000, 1000)).await.unwrap_err();
    assert!(err.to_string().contains("2500"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}
