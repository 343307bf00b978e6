//! Tests of `enishi::testkit::FakeLine`, driven with reqwest directly (not through enishi's
//! client) so the fake's own behaviour is what is under test.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use enishi::testkit::{
    Endpoint, FakeEndpointClass, FakeLine, FakeQuota, FakeRateLimit, FakeUser, FaultTiming, Faults,
    user_id,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "testkit-token";
const KEY: &str = "123e4567-e89b-12d3-a456-426614174000";

/// A fake and a plain HTTP client aimed at it.
struct Harness {
    line: FakeLine,
    http: reqwest::Client,
}

/// What came back: status, `x-line-request-id`, `x-line-accepted-request-id` and the JSON body.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    request_id: Option<String>,
    accepted_request_id: Option<String>,
    body: Value,
}

impl Harness {
    async fn new() -> Self {
        Self::with(FakeLine::builder()).await
    }

    async fn with(builder: enishi::testkit::FakeLineBuilder) -> Self {
        let line = builder.channel_access_token(TOKEN).start().await.expect("fake LINE starts");
        Self { line, http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.line.api_base_url())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
        let response = request.send().await?;
        let header =
            |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (status, request_id, accepted_request_id) =
            (response.status(), header("x-line-request-id"), header("x-line-accepted-request-id"));
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Reply { status, request_id, accepted_request_id, body })
    }

    /// An authenticated request with an optional JSON body and retry key.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        retry_key: Option<&str>,
    ) -> Reply {
        self.try_call(method, path, body, retry_key).await.expect("request completes")
    }

    async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        retry_key: Option<&str>,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = retry_key {
            request = request.header("X-Line-Retry-Key", key);
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body), None).await
    }

    async fn push(&self, to: &str, text: &str, retry_key: Option<&str>) -> Reply {
        self.call(Method::POST, "/v2/bot/message/push", Some(push_body(to, text)), retry_key).await
    }
}

fn push_body(to: &str, text: &str) -> Value {
    json!({ "to": to, "messages": [{ "type": "text", "text": text }] })
}

fn detail_properties(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .map(|details| {
            details.iter().map(|d| d["property"].as_str().unwrap_or("").to_owned()).collect()
        })
        .unwrap_or_default()
}

/// A PNG header (all the fake reads) for an image of `width` × `height`.
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend(width.to_be_bytes());
    bytes.extend(height.to_be_bytes());
    bytes.extend([8, 6, 0, 0, 0]);
    bytes
}

#[tokio::test]
async fn testkit_auth_requires_the_configured_bearer_token() {
    let h = Harness::new().await;
    let missing = h.send(h.http.get(h.url("/v2/bot/message/quota"))).await.unwrap();
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.body["message"].as_str().unwrap().contains("Authorization header required"));
    let wrong =
        h.send(h.http.get(h.url("/v2/bot/message/quota")).bearer_auth("nope")).await.unwrap();
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body["message"].as_str().unwrap().starts_with("Authentication failed"));
    let unauthorised_push = h
        .send(
            h.http
                .post(h.url("/v2/bot/message/push"))
                .bearer_auth("nope")
                .json(&push_body(&user_id(1), "x")),
        )
        .await
        .unwrap();
    assert_eq!(unauthorised_push.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.line.delivery_count(), 0);
    let right = h.get("/v2/bot/message/quota").await;
    assert_eq!(right.status, StatusCode::OK);
    assert_eq!(right.body, json!({ "type": "none" }));
    assert_eq!(h.line.counters().unauthorized, 3);
}

#[tokio::test]
async fn testkit_every_response_has_a_unique_request_id() {
    let h = Harness::new().await;
    let mut seen = HashSet::new();
    for path in ["/v2/bot/message/quota", "/v2/bot/no/such/path", "/v2/bot/profile/nope"] {
        for _ in 0..3 {
            let reply = h.get(path).await;
            let id = reply.request_id.expect("x-line-request-id on every response");
            assert!(seen.insert(id), "request IDs must be unique");
        }
    }
    let unauthenticated = h.send(h.http.get(h.url("/v2/bot/message/quota"))).await.unwrap();
    assert!(unauthenticated.request_id.is_some());
    let not_found = h.get("/v2/bot/no/such/path").await;
    assert_eq!(
        (not_found.status, not_found.body),
        (StatusCode::NOT_FOUND, json!({ "message": "Not found" }))
    );
}

#[tokio::test]
async fn testkit_validation_errors_are_400_with_details() {
    let h = Harness::new().await;
    let user = user_id(1);

    let unparsable = h
        .send(
            h.http
                .post(h.url("/v2/bot/message/push"))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await
        .unwrap();
    assert_eq!(unparsable.status, StatusCode::BAD_REQUEST);
    assert_eq!(unparsable.body["message"], "The request body could not be parsed as JSON");
    assert!(unparsable.body["details"][0]["message"].is_string());

    let none = h.post("/v2/bot/message/push", json!({ "to": user, "messages": [] })).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert_eq!(none.body["message"], "The request body has 1 error(s)");
    assert_eq!(
        none.body["details"],
        json!([{ "message": "Size must be between 1 and 5", "property": "messages" }])
    );

    let six: Vec<Value> =
        (0..6).map(|i| json!({ "type": "text", "text": format!("m{i}") })).collect();
    let too_many = h.post("/v2/bot/message/push", json!({ "to": user, "messages": six })).await;
    assert_eq!(detail_properties(&too_many.body), ["messages"]);

    // 5,000 UTF-16 units pass; one more fails, with emoji counted as two units.
    let max_text = "😀".repeat(2500);
    assert_eq!(h.push(&user, &max_text, None).await.status, StatusCode::OK);
    let long = h.push(&user, &format!("{max_text}a"), None).await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert_eq!(detail_properties(&long.body), ["messages[0].text"]);

    let bad_user = h.push("U123", "hi", None).await;
    assert_eq!(bad_user.status, StatusCode::BAD_REQUEST);
    assert_eq!(detail_properties(&bad_user.body), ["to"]);
    let upper = h.push(&format!("U{}", &user[1..].to_uppercase()), "hi", None).await;
    assert_eq!(upper.status, StatusCode::BAD_REQUEST);

    let recipients: Vec<String> = (0..501).map(user_id).collect();
    let multicast = h
        .post(
            "/v2/bot/message/multicast",
            json!({ "to": recipients, "messages": [{ "type": "text", "text": "x" }] }),
        )
        .await;
    assert_eq!(detail_properties(&multicast.body), ["to"]);
    let bad_member = h
        .post(
            "/v2/bot/message/multicast",
            json!({ "to": [user_id(1), "Ubad"], "messages": [{ "type": "text", "text": "x" }] }),
        )
        .await;
    assert_eq!(detail_properties(&bad_member.body), ["to[1]"]);

    let several = h
        .post(
            "/v2/bot/message/validate/push",
            json!({ "messages": [
                { "type": "text" },
                { "type": "image", "originalContentUrl": "http://insecure.example/a.jpg", "previewImageUrl": "https://ok.example/a.jpg" },
                { "type": "hologram" },
            ]}),
        )
        .await;
    assert_eq!(several.status, StatusCode::BAD_REQUEST);
    assert_eq!(several.body["message"], "The request body has 3 error(s)");
    assert_eq!(
        detail_properties(&several.body),
        ["messages[0].text", "messages[1].originalContentUrl", "messages[2].type"]
    );
    let valid = h
        .post(
            "/v2/bot/message/validate/reply",
            json!({ "messages": [{ "type": "text", "text": "ok" }] }),
        )
        .await;
    assert_eq!((valid.status, valid.body), (StatusCode::OK, json!({})));

    let not_json = h
        .send(
            h.http
                .post(h.url("/v2/bot/message/push"))
                .bearer_auth(TOKEN)
                .body(push_body(&user, "x").to_string()),
        )
        .await
        .unwrap();
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Only the one valid push was delivered.
    assert_eq!(h.line.delivery_count(), 1);
}

#[tokio::test]
async fn testkit_retry_key_is_rejected_where_line_rejects_it() {
    let h = Harness::new().await;
    let token = h.line.issue_reply_token(&user_id(1)).unwrap();
    let reply_body = json!({ "replyToken": token, "messages": [{ "type": "text", "text": "x" }] });
    let on_reply =
        h.call(Method::POST, "/v2/bot/message/reply", Some(reply_body.clone()), Some(KEY)).await;
    assert_eq!(on_reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(detail_properties(&on_reply.body), ["X-Line-Retry-Key"]);
    let on_profile =
        h.call(Method::GET, &format!("/v2/bot/profile/{}", user_id(1)), None, Some(KEY)).await;
    assert_eq!(on_profile.status, StatusCode::BAD_REQUEST);
    let malformed = h.push(&user_id(1), "x", Some("not-a-uuid")).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(detail_properties(&malformed.body), ["X-Line-Retry-Key"]);
    assert_eq!(h.line.delivery_count(), 0);
    // The reply token was not used up by the rejected request.
    assert_eq!(h.post("/v2/bot/message/reply", reply_body.clone()).await.status, StatusCode::OK);
    let reused = h.post("/v2/bot/message/reply", reply_body).await;
    assert_eq!(
        (reused.status, reused.body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid reply token"))
    );
    assert_eq!(h.line.messages_for(&user_id(1)).len(), 1);
}

#[tokio::test]
async fn testkit_repeated_retry_key_gets_409_with_the_accepted_request_id() {
    let h = Harness::new().await;
    let user = user_id(1);
    let first = h.push(&user, "once", Some(KEY)).await;
    assert_eq!(first.status, StatusCode::OK);
    let sent = first.body["sentMessages"].clone();
    assert!(sent[0]["id"].is_string() && sent[0]["quoteToken"].is_string());

    let again = h.push(&user, "once", Some(KEY)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["message"], "The retry key is already accepted");
    assert_eq!(again.body["sentMessages"], sent, "push repeats the original sentMessages");
    assert_eq!(again.accepted_request_id, first.request_id);
    assert_ne!(again.request_id, first.request_id, "each attempt gets its own request ID");

    let multicast_key = "223e4567-e89b-12d3-a456-426614174000";
    let body = json!({ "to": [user_id(2), user_id(3)], "messages": [{ "type": "text", "text": "hello" }] });
    let m1 = h
        .call(Method::POST, "/v2/bot/message/multicast", Some(body.clone()), Some(multicast_key))
        .await;
    let m2 =
        h.call(Method::POST, "/v2/bot/message/multicast", Some(body), Some(multicast_key)).await;
    assert_eq!((m1.status, m2.status), (StatusCode::OK, StatusCode::CONFLICT));
    assert_eq!(m2.accepted_request_id, m1.request_id);
    assert!(m2.body.get("sentMessages").is_none());

    assert_eq!(h.line.delivery_count(), 3);
    assert!(h.line.duplicate_deliveries().is_empty());
    let delivery = &h.line.deliveries_to(&user)[0];
    assert_eq!(delivery.retry_key.as_deref(), Some(KEY));
    assert_eq!(Some(delivery.request_id.clone()), first.request_id);
    assert_eq!(h.line.counters().conflicts, 2);
}

#[tokio::test]
async fn testkit_500_after_acceptance_delivers_and_the_retry_gets_409() {
    let faults = Faults {
        server_error: 1.0,
        timing: FaultTiming::AfterAcceptance,
        endpoints: Some(vec![Endpoint::Push]),
        ..Faults::default()
    };
    let h = Harness::with(FakeLine::builder().faults(faults)).await;
    let user = user_id(9);
    let failed = h.push(&user, "important", Some(KEY)).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.line.messages_for(&user).len(), 1, "delivered before the 500");
    h.line.set_faults(Faults::none()).unwrap();
    let retry = h.push(&user, "important", Some(KEY)).await;
    assert_eq!(retry.status, StatusCode::CONFLICT);
    assert_eq!(retry.accepted_request_id, failed.request_id);
    assert_eq!(h.line.messages_for(&user).len(), 1, "never delivered twice");

    // Before acceptance: nothing is delivered and the key stays free.
    let before = Faults { server_error: 1.0, ..Faults::default() };
    h.line.set_faults(before).unwrap();
    let other = "323e4567-e89b-12d3-a456-426614174000";
    assert_eq!(
        h.push(&user, "second", Some(other)).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(h.line.messages_for(&user).len(), 1);
    h.line.set_faults(Faults::none()).unwrap();
    assert_eq!(h.push(&user, "second", Some(other)).await.status, StatusCode::OK);
    assert_eq!(h.line.messages_for(&user).len(), 2);
    assert_eq!(h.line.counters().server_errors, 2);
}

#[tokio::test]
async fn testkit_dropped_connection_after_acceptance_is_a_transport_error() {
    let faults = Faults { dropped: 1.0, timing: FaultTiming::AfterAcceptance, ..Faults::default() };
    let h = Harness::with(FakeLine::builder().faults(faults)).await;
    let user = user_id(4);
    let error = h
        .try_call(Method::POST, "/v2/bot/message/push", Some(push_body(&user, "x")), Some(KEY))
        .await
        .expect_err("the connection closes without a response");
    assert!(!error.is_status());
    assert_eq!(h.line.messages_for(&user).len(), 1);
    assert_eq!(h.line.counters().dropped, 1);
    h.line.set_faults(Faults::none()).unwrap();
    assert_eq!(h.push(&user, "x", Some(KEY)).await.status, StatusCode::CONFLICT);
    assert_eq!(h.line.messages_for(&user).len(), 1);
}

#[tokio::test]
async fn testkit_rate_limit_429_records_nothing() {
    let h = Harness::with(
        FakeLine::builder()
            .rate_limit(FakeEndpointClass::Push, FakeRateLimit::per_hour(60).with_capacity(2)),
    )
    .await;
    let user = user_id(1);
    assert_eq!(h.push(&user, "1", None).await.status, StatusCode::OK);
    assert_eq!(h.push(&user, "2", None).await.status, StatusCode::OK);
    let limited = h.push(&user, "3", Some(KEY)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.body,
        json!({ "message": "The API rate limit has been exceeded. Try again later." })
    );
    assert_eq!(h.line.messages_for(&user).len(), 2);
    // Other endpoints have their own buckets.
    assert_eq!(h.get("/v2/bot/message/quota").await.status, StatusCode::OK);
    // The key of the rate-limited request was not accepted.
    h.line.set_rate_limit(FakeEndpointClass::Push, FakeRateLimit::unlimited());
    assert_eq!(h.push(&user, "3", Some(KEY)).await.status, StatusCode::OK);
    let counters = h.line.counters();
    assert_eq!((counters.rate_limited, counters.quota_exceeded), (1, 0));
    assert_eq!(h.line.status_count(429), 1);
}

#[tokio::test]
async fn testkit_default_limits_are_lines() {
    assert_eq!(FakeEndpointClass::Push.line_default(), FakeRateLimit::per_second(2000));
    assert_eq!(FakeEndpointClass::Multicast.line_default(), FakeRateLimit::per_second(200));
    assert_eq!(FakeEndpointClass::Broadcast.line_default(), FakeRateLimit::per_hour(60));
    assert_eq!(FakeEndpointClass::Audience.line_default(), FakeRateLimit::per_minute(60));
    assert_eq!(FakeEndpointClass::RichMenuCreate.line_default(), FakeRateLimit::per_hour(100));
    assert_eq!(Endpoint::RichMenuAliasDelete.class(), FakeEndpointClass::RichMenuDelete);
    assert_eq!(FakeRateLimit::per_second(2000).capacity(), 2000);
    // Broadcast's default bucket holds 60: the 61st broadcast in a burst is refused.
    let h = Harness::new().await;
    let body = json!({ "messages": [{ "type": "text", "text": "b" }] });
    for _ in 0..60 {
        assert_eq!(h.post("/v2/bot/message/broadcast", body.clone()).await.status, StatusCode::OK);
    }
    assert_eq!(
        h.post("/v2/bot/message/broadcast", body).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn testkit_audience_endpoints_share_one_bucket() {
    let h = Harness::with(
        FakeLine::builder().rate_limit(FakeEndpointClass::Audience, FakeRateLimit::per_minute(2)),
    )
    .await;
    let created = h
        .post("/v2/bot/audienceGroup/upload", json!({ "description": "a", "audiences": [] }))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    let id = created.body["audienceGroupId"].as_i64().unwrap();
    assert_eq!(h.get(&format!("/v2/bot/audienceGroup/{id}")).await.status, StatusCode::OK);
    assert_eq!(
        h.get(&format!("/v2/bot/audienceGroup/{id}")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn testkit_monthly_quota_429_differs_from_the_rate_limit() {
    let h = Harness::with(FakeLine::builder().quota(FakeQuota::Limited(3))).await;
    let multicast = json!({ "to": [user_id(1), user_id(2)], "messages": [
        { "type": "text", "text": "a" }, { "type": "text", "text": "b" }
    ]});
    // Two recipients cost two messages, however many message objects the request holds.
    assert_eq!(h.post("/v2/bot/message/multicast", multicast).await.status, StatusCode::OK);
    assert_eq!(h.push(&user_id(3), "c", None).await.status, StatusCode::OK);
    let over = h.push(&user_id(4), "d", None).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.body, json!({ "message": "You have reached your monthly limit." }));
    assert!(h.line.messages_for(&user_id(4)).is_empty());
    assert_eq!(h.get("/v2/bot/message/quota").await.body, json!({ "type": "limited", "value": 3 }));
    assert_eq!(h.get("/v2/bot/message/quota/consumption").await.body, json!({ "totalUsage": 3 }));
    // Replies are free; blocked users are not charged.
    let token = h.line.issue_reply_token(&user_id(5)).unwrap();
    let reply = json!({ "replyToken": token, "messages": [{ "type": "text", "text": "r" }] });
    assert_eq!(h.post("/v2/bot/message/reply", reply).await.status, StatusCode::OK);
    h.line.set_blocked(&user_id(6), true).unwrap();
    assert_eq!(h.push(&user_id(6), "e", None).await.status, StatusCode::OK);
    assert!(h.line.messages_for(&user_id(6)).is_empty());
    let counters = h.line.counters();
    assert_eq!((counters.quota_exceeded, counters.rate_limited), (1, 0));
    assert_eq!(h.line.quota_used(), 3);
}

/// Sends `n` pushes one after another and names what happened to each.
async fn outcomes(seed: u64, n: u64) -> (Vec<String>, usize) {
    let faults = Faults { server_error: 0.2, rate_limited: 0.2, dropped: 0.1, ..Faults::default() };
    let h = Harness::with(FakeLine::builder().seed(seed).faults(faults)).await;
    let mut seen = Vec::new();
    for i in 0..n {
        let outcome = match h
            .try_call(Method::POST, "/v2/bot/message/push", Some(push_body(&user_id(i), "x")), None)
            .await
        {
            Ok(reply) => reply.status.as_u16().to_string(),
            Err(_) => "dropped".to_owned(),
        };
        seen.push(outcome);
    }
    (seen, h.line.delivery_count())
}

#[tokio::test]
async fn testkit_faults_are_deterministic_per_seed() {
    let (a, delivered_a) = outcomes(11, 80).await;
    let (b, delivered_b) = outcomes(11, 80).await;
    let (c, _) = outcomes(12, 80).await;
    assert_eq!(a, b);
    assert_eq!(delivered_a, delivered_b);
    assert_ne!(a, c);
    for kind in ["200", "500", "429", "dropped"] {
        assert!(a.iter().any(|o| o == kind), "{kind} never happened in {a:?}");
    }
    assert_eq!(delivered_a, a.iter().filter(|o| *o == "200").count());
}

#[tokio::test]
async fn testkit_faults_can_be_limited_to_endpoints_and_slow_responses_wait() {
    let faults = Faults {
        slow: 1.0,
        slow_delay: Duration::from_millis(150),
        endpoints: Some(vec![Endpoint::Multicast]),
        ..Faults::default()
    };
    let h = Harness::with(FakeLine::builder().faults(faults)).await;
    // Whether a response was slowed is read from the fake's counter, not from how long it
    // took: a loaded machine can make any request slow.
    assert_eq!(h.push(&user_id(1), "fast", None).await.status, StatusCode::OK);
    assert_eq!(h.line.counters().slowed, 0, "the push is not a multicast");
    let started = Instant::now();
    let body = json!({ "to": [user_id(1)], "messages": [{ "type": "text", "text": "slow" }] });
    assert_eq!(h.post("/v2/bot/message/multicast", body).await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(h.line.counters().slowed, 1);
    assert!(
        h.line.set_faults(Faults { server_error: 0.7, dropped: 0.7, ..Faults::default() }).is_err()
    );
}

#[tokio::test]
async fn testkit_records_each_delivery_per_user() {
    let h = Harness::new().await;
    let (a, b, c) = (user_id(1), user_id(2), user_id(3));
    h.line.add_friends([&a, &b, &c]).unwrap();
    h.line.set_blocked(&c, true).unwrap();
    let message = json!({ "type": "text", "text": "sale" });
    let body = json!({ "to": [a, b, c, a], "messages": [message], "customAggregationUnits": ["spring_sale"] });
    let sent = h.post("/v2/bot/message/multicast", body).await;
    assert_eq!((sent.status, sent.body), (StatusCode::OK, json!({})));
    assert_eq!(h.line.messages_for(&a), std::slice::from_ref(&message));
    assert_eq!(h.line.messages_for(&b), std::slice::from_ref(&message));
    assert!(h.line.messages_for(&c).is_empty(), "blocked users receive nothing");
    let delivery = &h.line.deliveries_to(&a)[0];
    assert_eq!(delivery.endpoint, Endpoint::Multicast);
    assert_eq!(delivery.aggregation_unit.as_deref(), Some("spring_sale"));
    assert_eq!(Some(delivery.request_id.clone()), sent.request_id);
    assert!(h.line.duplicate_deliveries().is_empty());

    // The same message again without a retry key is a second delivery, and shows up as one.
    h.push(&a, "sale", None).await;
    let duplicates = h.line.duplicate_deliveries();
    assert_eq!(duplicates, [(a.clone(), message.clone(), 2)]);

    let broadcast = h
        .post(
            "/v2/bot/message/broadcast",
            json!({ "messages": [{ "type": "text", "text": "all" }] }),
        )
        .await;
    assert_eq!(broadcast.status, StatusCode::OK);
    assert_eq!(h.line.deliveries().iter().filter(|d| d.endpoint == Endpoint::Broadcast).count(), 2);

    assert_eq!(h.line.request_count(Endpoint::Multicast), 1);
    assert_eq!(h.line.path_count("/v2/bot/message/push"), 1);
    h.line.reset();
    assert_eq!((h.line.delivery_count(), h.line.request_count(Endpoint::Push)), (0, 0));
    assert_eq!(
        h.get(&format!("/v2/bot/profile/{b}")).await.status,
        StatusCode::OK,
        "users survive reset"
    );
}

#[tokio::test]
async fn testkit_profiles_and_paged_followers() {
    let h = Harness::with(
        FakeLine::builder()
            .user(FakeUser::new(user_id(0)).display_name("Hanako").status_message("hi")),
    )
    .await;
    let friends: Vec<String> = (1..650).map(user_id).collect();
    h.line.add_friends(&friends).unwrap();

    let profile = h.get(&format!("/v2/bot/profile/{}", user_id(0))).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.body["displayName"], "Hanako");
    assert_eq!(profile.body["userId"], user_id(0));
    assert_eq!(profile.body["statusMessage"], "hi");
    assert_eq!(
        h.get(&format!("/v2/bot/profile/{}", user_id(999))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get("/v2/bot/profile/Uxyz").await.status, StatusCode::BAD_REQUEST);
    h.line.set_blocked(&user_id(0), true).unwrap();
    assert_eq!(
        h.get(&format!("/v2/bot/profile/{}", user_id(0))).await.status,
        StatusCode::NOT_FOUND
    );

    let mut all = Vec::new();
    let mut sizes = Vec::new();
    let mut path = "/v2/bot/followers/ids".to_owned();
    loop {
        let page = h.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        let ids = page.body["userIds"].as_array().unwrap().clone();
        sizes.push(ids.len());
        all.extend(ids.into_iter().map(|v| v.as_str().unwrap().to_owned()));
        match page.body["next"].as_str() {
            Some(next) => path = format!("/v2/bot/followers/ids?start={next}"),
            None => break,
        }
    }
    assert_eq!(sizes, [300, 300, 49]);
    assert_eq!(all, friends, "every follower once, blocked ones left out");
    let small = h.get("/v2/bot/followers/ids?limit=1000").await;
    assert_eq!(small.body["userIds"].as_array().unwrap().len(), 649);
    assert!(small.body.get("next").is_none());
    assert_eq!(h.get("/v2/bot/followers/ids?limit=1001").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.get("/v2/bot/followers/ids?start=garbage").await.status, StatusCode::BAD_REQUEST);

    let unverified = Harness::with(FakeLine::builder().verified_account(false)).await;
    assert_eq!(unverified.get("/v2/bot/followers/ids").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn testkit_link_tokens_are_issued_and_recorded() {
    let h = Harness::new().await;
    let user = user_id(5);
    let issued = h.call(Method::POST, &format!("/v2/bot/user/{user}/linkToken"), None, None).await;
    assert_eq!(issued.status, StatusCode::OK);
    let token = issued.body["linkToken"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 32);
    let recorded = h.line.issued_link_tokens();
    assert_eq!(
        (recorded[0].user_id.as_str(), recorded[0].link_token.as_str()),
        (user.as_str(), token.as_str())
    );
    assert_eq!(
        h.call(Method::POST, "/v2/bot/user/U1/linkToken", None, None).await.status,
        StatusCode::BAD_REQUEST
    );
}

/// The narrowcast's progress now, which must be in `phase`.
async fn progress_in_phase(h: &Harness, request_id: &str, phase: &str) -> Value {
    let progress =
        h.get(&format!("/v2/bot/message/progress/narrowcast?requestId={request_id}")).await;
    assert_eq!(progress.status, StatusCode::OK);
    assert_eq!(progress.body["phase"], phase, "{}", progress.body);
    progress.body
}

#[tokio::test]
async fn testkit_narrowcast_progress_moves_from_waiting_to_succeeded() {
    // A manual clock: each phase lasts until the test moves the fake's clock on.
    let duration = Duration::from_secs(600);
    let h = Harness::with(FakeLine::builder().manual_clock().narrowcast_duration(duration)).await;
    let friends: Vec<String> = (0..5).map(user_id).collect();
    h.line.add_friends(&friends).unwrap();
    let sent = h
        .call(
            Method::POST,
            "/v2/bot/message/narrowcast",
            Some(json!({ "messages": [{ "type": "text", "text": "n" }], "limit": { "max": 4 } })),
            Some(KEY),
        )
        .await;
    assert_eq!((sent.status, &sent.body), (StatusCode::ACCEPTED, &json!({})));
    let request_id = sent.request_id.unwrap();
    let waiting = progress_in_phase(&h, &request_id, "waiting").await;
    assert!(waiting["acceptedTime"].as_str().unwrap().ends_with('Z'));
    assert!(waiting.get("successCount").is_none());
    h.line.advance(duration / 3 - Duration::from_secs(1));
    progress_in_phase(&h, &request_id, "waiting").await;
    h.line.advance(Duration::from_secs(1));
    let sending = progress_in_phase(&h, &request_id, "sending").await;
    assert_eq!(sending["targetCount"], 4);
    h.line.advance(duration - duration / 3 - Duration::from_secs(1));
    progress_in_phase(&h, &request_id, "sending").await;
    h.line.advance(Duration::from_secs(1));
    let done = progress_in_phase(&h, &request_id, "succeeded").await;
    assert_eq!((done["successCount"].as_u64(), done["failureCount"].as_u64()), (Some(4), Some(0)));
    assert!(done["completedTime"].is_string());
    assert_eq!(h.line.delivery_count(), 4);
    let again = h
        .call(
            Method::POST,
            "/v2/bot/message/narrowcast",
            Some(json!({ "messages": [{ "type": "text", "text": "n" }] })),
            Some(KEY),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.accepted_request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(
        h.get("/v2/bot/message/progress/narrowcast?requestId=unknown").await.status,
        StatusCode::NOT_FOUND
    );

    let strict = Harness::with(
        FakeLine::builder()
            .manual_clock()
            .narrowcast_duration(duration)
            .narrowcast_min_recipients(50),
    )
    .await;
    strict.line.add_friends(&friends).unwrap();
    let small = strict
        .post(
            "/v2/bot/message/narrowcast",
            json!({ "messages": [{ "type": "text", "text": "n" }] }),
        )
        .await;
    assert_eq!(small.status, StatusCode::ACCEPTED, "LINE accepts, then fails asynchronously");
    let small_id = small.request_id.unwrap();
    progress_in_phase(&strict, &small_id, "waiting").await;
    strict.line.advance(duration);
    let failed = progress_in_phase(&strict, &small_id, "failed").await;
    assert_eq!(failed["errorCode"], 2);
    assert_eq!(strict.line.delivery_count(), 0);
}

#[tokio::test]
async fn testkit_audience_goes_from_in_progress_to_ready_and_feeds_narrowcast() {
    // A manual clock: the audience's jobs finish when the test says, not when the machine
    // gets round to it.
    let ready_after = Duration::from_secs(300);
    let h = Harness::with(
        FakeLine::builder()
            .manual_clock()
            .audience_ready_after(ready_after)
            .narrowcast_duration(Duration::ZERO),
    )
    .await;
    let members: Vec<Value> = (0..3).map(|i| json!({ "id": user_id(i) })).collect();
    let created = h
        .post(
            "/v2/bot/audienceGroup/upload",
            json!({ "description": "VIP", "uploadDescription": "first", "audiences": members }),
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    assert_eq!(created.body["createRoute"], "MESSAGING_API");
    assert_eq!(created.body["type"], "UPLOAD");
    assert_eq!(created.body["permission"], "READ_WRITE");
    assert_eq!(created.body["isIfaAudience"], false);
    let id = created.body["audienceGroupId"].as_i64().unwrap();
    let path = format!("/v2/bot/audienceGroup/{id}");

    let early = h.get(&path).await.body;
    assert_eq!(early["audienceGroup"]["status"], "IN_PROGRESS");
    assert_eq!(early["jobs"][0]["jobStatus"], "QUEUED");
    let recipient = json!({ "type": "audience", "audienceGroupId": id });
    let too_soon = h
        .post(
            "/v2/bot/message/narrowcast",
            json!({ "messages": [{ "type": "text", "text": "x" }], "recipient": recipient }),
        )
        .await;
    assert_eq!(too_soon.status, StatusCode::BAD_REQUEST);

    h.line.advance(ready_after / 2);
    let working = h.get(&path).await.body;
    assert_eq!(working["audienceGroup"]["status"], "IN_PROGRESS");
    assert_eq!(working["jobs"][0]["jobStatus"], "WORKING");
    h.line.advance(ready_after / 2);
    let ready = h.get(&path).await.body;
    assert_eq!(ready["audienceGroup"]["status"], "READY");
    assert_eq!(ready["audienceGroup"]["audienceCount"], 3);
    assert_eq!(ready["jobs"][0]["jobStatus"], "FINISHED");
    assert_eq!(ready["jobs"][0]["description"], "first");

    let added = h
        .call(
            Method::PUT,
            "/v2/bot/audienceGroup/upload",
            Some(json!({ "audienceGroupId": id, "audiences": [{ "id": user_id(7) }] })),
            None,
        )
        .await;
    assert_eq!((added.status, added.body), (StatusCode::ACCEPTED, json!({})));

    let invalid = h
        .post(
            "/v2/bot/audienceGroup/upload",
            json!({ "description": "bad", "audiences": [{ "id": user_id(1) }, { "id": "not-a-user" }] }),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        invalid.body["details"][0]["message"],
        "UPLOAD_AUDIENCE_GROUP_INVALID_AUDIENCE_ID_FORMAT"
    );
    assert_eq!(detail_properties(&invalid.body), ["audiences[1].id"]);
    let too_many: Vec<Value> = (0..10_001).map(|i| json!({ "id": user_id(i) })).collect();
    let oversized = h
        .post(
            "/v2/bot/audienceGroup/upload",
            json!({ "description": "big", "audiences": too_many }),
        )
        .await;
    assert_eq!(oversized.status, StatusCode::BAD_REQUEST);
    let unknown = h.get("/v2/bot/audienceGroup/42").await;
    assert_eq!(
        (unknown.status, unknown.body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("audience group not found"))
    );

    let sent = h
        .post(
            "/v2/bot/message/narrowcast",
            json!({ "messages": [{ "type": "text", "text": "vip" }], "recipient": recipient }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    let mut recipients: Vec<String> = h.line.deliveries().into_iter().map(|d| d.to).collect();
    recipients.sort();
    let mut expected: Vec<String> = (0..3).map(user_id).collect();
    expected.sort();
    assert_eq!(recipients, expected, "the added user's job is still running");

    // Once its job has had its time, the added user is a member too.
    h.line.advance(ready_after);
    let again = h
        .post(
            "/v2/bot/message/narrowcast",
            json!({ "messages": [{ "type": "text", "text": "vip" }], "recipient": recipient }),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(h.line.deliveries_to(&user_id(7)).len(), 1);
    assert_eq!(h.line.delivery_count(), 3 + 4);
}

#[tokio::test]
async fn testkit_rich_menus_images_links_and_aliases() {
    let h = Harness::new().await;
    let menu = json!({
        "size": { "width": 2500, "height": 843 },
        "selected": false,
        "name": "linked",
        "chatBarText": "Menu",
        "areas": [{ "bounds": { "x": 0, "y": 0, "width": 2500, "height": 843 },
                    "action": { "type": "uri", "uri": "https://shop.example/mypage" } }],
    });
    assert_eq!(h.post("/v2/bot/richmenu/validate", menu.clone()).await.status, StatusCode::OK);
    let mut bad = menu.clone();
    bad["chatBarText"] = json!("fifteen chars!!");
    bad["size"]["height"] = json!(100);
    assert_eq!(
        detail_properties(&h.post("/v2/bot/richmenu/validate", bad).await.body),
        ["size.height", "chatBarText"]
    );

    let created = h.post("/v2/bot/richmenu", menu.clone()).await;
    assert_eq!(created.status, StatusCode::OK);
    let id = created.body["richMenuId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("richmenu-"));
    let user = user_id(1);

    // Linking needs an image first.
    let no_image =
        h.call(Method::POST, &format!("/v2/bot/user/{user}/richmenu/{id}"), None, None).await;
    assert_eq!(no_image.status, StatusCode::BAD_REQUEST);

    let upload = |base: String, content_type: &'static str, bytes: Vec<u8>| {
        let request = h
            .http
            .post(format!("{base}/v2/bot/richmenu/{id}/content"))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(bytes);
        h.send(request)
    };
    let wrong_host = upload(h.line.api_base_url(), "image/png", png(2500, 843)).await.unwrap();
    assert_eq!(wrong_host.status, StatusCode::NOT_FOUND, "images go to the data host");
    let wrong_type = upload(h.line.data_base_url(), "image/gif", png(2500, 843)).await.unwrap();
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let too_narrow = upload(h.line.data_base_url(), "image/png", png(1000, 843)).await.unwrap();
    assert_eq!(too_narrow.status, StatusCode::BAD_REQUEST);
    let mut huge = png(2500, 843);
    huge.resize(1024 * 1024 + 1, 0);
    assert_eq!(
        upload(h.line.data_base_url(), "image/png", huge).await.unwrap().status,
        StatusCode::BAD_REQUEST
    );
    let uploaded = upload(h.line.data_base_url(), "image/png", png(2500, 843)).await.unwrap();
    assert_eq!(uploaded.status, StatusCode::OK);
    let replaced = upload(h.line.data_base_url(), "image/png", png(2500, 843)).await.unwrap();
    assert_eq!(replaced.status, StatusCode::BAD_REQUEST, "an image cannot be replaced");

    let fetched = h.get(&format!("/v2/bot/richmenu/{id}")).await.body;
    assert_eq!(fetched["richMenuId"], id);
    assert_eq!(fetched["name"], "linked");
    assert_eq!(h.get("/v2/bot/richmenu/list").await.body["richmenus"].as_array().unwrap().len(), 1);

    let linked =
        h.call(Method::POST, &format!("/v2/bot/user/{user}/richmenu/{id}"), None, None).await;
    assert_eq!((linked.status, linked.body), (StatusCode::OK, json!({})));
    assert_eq!(
        h.get(&format!("/v2/bot/user/{user}/richmenu")).await.body,
        json!({ "richMenuId": id })
    );
    h.call(Method::DELETE, &format!("/v2/bot/user/{user}/richmenu"), None, None).await;
    assert_eq!(h.get(&format!("/v2/bot/user/{user}/richmenu")).await.status, StatusCode::NOT_FOUND);

    let users: Vec<String> = (0..500).map(user_id).collect();
    let bulk =
        h.post("/v2/bot/richmenu/bulk/link", json!({ "richMenuId": id, "userIds": users })).await;
    assert_eq!((bulk.status, bulk.body), (StatusCode::ACCEPTED, json!({})));
    assert_eq!(h.line.rich_menu_of(&user_id(499)).as_deref(), Some(id.as_str()));
    let too_many: Vec<String> = (0..501).map(user_id).collect();
    let over = h
        .post("/v2/bot/richmenu/bulk/link", json!({ "richMenuId": id, "userIds": too_many }))
        .await;
    assert_eq!(detail_properties(&over.body), ["userIds"]);
    let unlinked =
        h.post("/v2/bot/richmenu/bulk/unlink", json!({ "userIds": [user_id(499)] })).await;
    assert_eq!(unlinked.status, StatusCode::ACCEPTED);
    assert_eq!(h.line.rich_menu_of(&user_id(499)), None);

    assert_eq!(h.get("/v2/bot/user/all/richmenu").await.status, StatusCode::NOT_FOUND);
    h.call(Method::POST, &format!("/v2/bot/user/all/richmenu/{id}"), None, None).await;
    assert_eq!(h.get("/v2/bot/user/all/richmenu").await.body, json!({ "richMenuId": id }));
    h.call(Method::DELETE, "/v2/bot/user/all/richmenu", None, None).await;
    assert_eq!(h.line.default_rich_menu(), None);

    let alias = h
        .post(
            "/v2/bot/richmenu/alias",
            json!({ "richMenuAliasId": "linked-menu", "richMenuId": id }),
        )
        .await;
    assert_eq!(alias.status, StatusCode::OK);
    let duplicate = h
        .post(
            "/v2/bot/richmenu/alias",
            json!({ "richMenuAliasId": "linked-menu", "richMenuId": id }),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    let upper = h
        .post("/v2/bot/richmenu/alias", json!({ "richMenuAliasId": "Linked", "richMenuId": id }))
        .await;
    assert_eq!(detail_properties(&upper.body), ["richMenuAliasId"]);
    let second =
        h.post("/v2/bot/richmenu", menu).await.body["richMenuId"].as_str().unwrap().to_owned();
    assert_eq!(
        h.post("/v2/bot/richmenu/alias/linked-menu", json!({ "richMenuId": second })).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.get("/v2/bot/richmenu/alias/linked-menu").await.body,
        json!({ "richMenuAliasId": "linked-menu", "richMenuId": second })
    );
    assert_eq!(
        h.get("/v2/bot/richmenu/alias/list").await.body["aliases"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        h.call(Method::DELETE, "/v2/bot/richmenu/alias/linked-menu", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(h.get("/v2/bot/richmenu/alias/linked-menu").await.status, StatusCode::NOT_FOUND);

    assert_eq!(
        h.call(Method::DELETE, &format!("/v2/bot/richmenu/{id}"), None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(h.get(&format!("/v2/bot/richmenu/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.line.rich_menu_of(&user_id(0)), None, "deleting a menu unlinks it");
}

#[tokio::test]
async fn testkit_statistics_have_line_shapes() {
    let h = Harness::new().await;
    let friends: Vec<String> = (0..40).map(user_id).collect();
    h.line.add_friends(&friends).unwrap();
    let message = json!({ "type": "template", "altText": "sale", "template": {
        "type": "buttons", "text": "Spring sale",
        "actions": [{ "type": "uri", "label": "Shop", "uri": "https://shop.example/sale" }] } });
    let broadcast = h.post("/v2/bot/message/broadcast", json!({ "messages": [message] })).await;
    let request_id = broadcast.request_id.unwrap();
    let event = h.get(&format!("/v2/bot/insight/message/event?requestId={request_id}")).await;
    assert_eq!(event.status, StatusCode::OK);
    assert_eq!(event.body["overview"]["requestId"], request_id.as_str());
    assert_eq!(event.body["overview"]["delivered"], 40);
    assert_eq!(event.body["overview"]["uniqueImpression"], 24);
    assert_eq!(event.body["overview"]["uniqueMediaPlayed"], Value::Null);
    assert_eq!(event.body["messages"][0]["seq"], 1);
    assert_eq!(event.body["clicks"][0]["url"], "https://shop.example/sale");
    assert_eq!(event.body["clicks"][0]["uniqueClick"], Value::Null, "figures below 20 are hidden");

    for (i, user) in friends.iter().enumerate().take(30) {
        let unit = if i % 2 == 0 { "unit_a" } else { "unit_b" };
        let body = json!({ "to": user, "messages": [{ "type": "text", "text": "x" }], "customAggregationUnits": [unit] });
        assert_eq!(h.post("/v2/bot/message/push", body).await.status, StatusCode::OK);
    }
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
    let date = today.format("%Y%m%d").to_string();
    let stats = h.get(&format!("/v2/bot/insight/message/event/aggregation?customAggregationUnit=unit_a&from={date}&to={date}")).await;
    assert_eq!(stats.status, StatusCode::OK);
    assert!(stats.body["overview"].get("uniqueImpression").is_some());
    assert_eq!(stats.body["messages"].as_array().unwrap().len(), 1);
    let bad = h.get("/v2/bot/insight/message/event/aggregation?customAggregationUnit=unit-a&from=20260101&to=20260301").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.get("/v2/bot/message/aggregation/info").await.body,
        json!({ "numOfCustomAggregationUnits": 2 })
    );
    let first = h.get("/v2/bot/message/aggregation/list?limit=1").await.body;
    assert_eq!(first["customAggregationUnits"], json!(["unit_a"]));
    let next = first["next"].as_str().unwrap();
    let second =
        h.get(&format!("/v2/bot/message/aggregation/list?limit=1&start={next}")).await.body;
    assert_eq!(second, json!({ "customAggregationUnits": ["unit_b"] }));
    let push_id = h.push(&user_id(1), "x", None).await.request_id.unwrap();
    let not_broadcast = h.get(&format!("/v2/bot/insight/message/event?requestId={push_id}")).await;
    assert_eq!(not_broadcast.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn testkit_server_stops_when_dropped() {
    let h = Harness::new().await;
    let url = h.url("/v2/bot/message/quota");
    assert_eq!(h.get("/v2/bot/message/quota").await.status, StatusCode::OK);
    drop(h.line);
    let mut refused = false;
    for _ in 0..50 {
        // A fresh client, so no pooled connection hides the closed listener.
        if reqwest::Client::new().get(&url).bearer_auth(TOKEN).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener closes after drop");
    assert!(FakeLine::builder().channel_access_token("").start().await.is_err());
    assert!(FakeLine::builder().user(FakeUser::new("bad")).start().await.is_err());
}
