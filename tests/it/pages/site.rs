//! A shop's app served on a local port with its customer pages, the fake LINE (with its
//! account-link dialog for browsers) and a fake LINE Login, for the browser tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use chrono::{TimeDelta, Utc};
use enishi::LineUserId;
use enishi::app::{Brand, Enishi, Pages};
use enishi::line::webhook::ChannelSecret;
use enishi::link::{LineLogin, LinkIncentive, sign_id_token_hs256};
use enishi::storage::Storage;
use enishi::testkit::{FakeDialog, FakeLogin};
use serde_json::{Value, json};

use crate::app::harness::{SECRET, Shop, id, shop, user};

pub(crate) const LOGIN_CHANNEL: &str = "1650000077";
const LOGIN_SECRET: &str = "page-test-login-secret";
pub(crate) const POINTS: u32 = 300;

/// The app, its base URL and the fakes behind it.
pub(crate) struct Site {
    pub(crate) shop: Shop,
    pub(crate) app: Enishi,
    pub(crate) base: String,
    pub(crate) dialog: FakeDialog,
}

/// Where screenshots go: docs/images with `ENISHI_UPDATE_SCREENSHOTS=1` (to refresh the
/// docs), else under target/ so a test run leaves the tree clean.
pub(crate) fn screenshots() -> PathBuf {
    if std::env::var_os("ENISHI_UPDATE_SCREENSHOTS").is_some() {
        PathBuf::from("docs/images")
    } else {
        PathBuf::from("target/page-screenshots")
    }
}

/// A shop with 6 customers (`c{i}@example.jp` / `pw-{i}`), a 300-point link incentive open
/// for 30 days, LINE Login for the customer the `x-shop-customer` header names, and tracked
/// links.
pub(crate) async fn site(storage: Storage) -> Site {
    let shop = shop(6).await;
    for i in 1..=6 {
        shop.ecforce
            .add_login(format!("c{i}@example.jp"), FakeLogin::new(id(i), format!("pw-{i}")));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dialog = shop
        .line
        .serve_account_link_dialog(format!("{base}/webhook"), ChannelSecret::new(SECRET))
        .await
        .unwrap();
    let login_fake = fake_line_login(i_user_of_customer).await;
    let login = LineLogin::builder(
        LOGIN_CHANNEL,
        LOGIN_SECRET,
        format!("{base}/login/line/callback"),
        storage.links(),
    )
    .authorize_url(format!("{login_fake}/oauth2/v2.1/authorize"))
    .token_url(format!("{login_fake}/oauth2/v2.1/token"));
    let session = |h: &axum::http::HeaderMap| {
        h.get("x-shop-customer")?.to_str().ok()?.parse::<enishi::CustomerId>().ok()
    };
    let pages = Pages::builder()
        .brand(
            Brand::new("縁ショップ")
                .url("https://shop.example.jp/")
                .login_url("https://shop.example.jp/login")
                .password_reset_url("https://shop.example.jp/password/new")
                .contact("縁ショップ カスタマーサポート（0120-000-000）")
                .contact_url("https://shop.example.jp/contact")
                .line_url("https://line.me/R/ti/p/@enishi-shop")
                .primary_color("#8a3b12"),
        )
        .build()
        .unwrap();
    let incentive =
        LinkIncentive::points("link-2026", POINTS).until(Utc::now() + TimeDelta::days(30));
    let app = shop
        .builder(storage)
        .public_url(&base)
        .tracking_key(*b"page-tests-tracking-key-32-bytes")
        .pages(pages)
        .link_incentive(incentive)
        .line_access_base_url(dialog.base_url())
        .line_login(login, session)
        .build()
        .unwrap();
    let routes = app.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    Site { shop, app, base, dialog }
}

/// LINE Login's user for customer `i` is LINE user `i` (the fake signs an ID token for it).
fn i_user_of_customer(customer: &str) -> LineUserId {
    user(customer.parse().unwrap_or(1))
}

#[derive(Clone)]
struct LoginFake {
    /// The nonce and customer of each authorize request, by code.
    pending: Arc<Mutex<Vec<(String, String, String)>>>,
    user_of: fn(&str) -> LineUserId,
}

/// A LINE Login stand-in: authorize answers at once (the user agrees) with a code; the token
/// endpoint signs an ID token with that request's nonce. The customer rides in the state's
/// request header, so the signed-in customer's LINE user is `user(customer)`.
async fn fake_line_login(user_of: fn(&str) -> LineUserId) -> String {
    async fn authorize(
        State(fake): State<LoginFake>,
        headers: axum::http::HeaderMap,
        Query(q): Query<Vec<(String, String)>>,
    ) -> impl IntoResponse {
        let get =
            |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let customer =
            headers.get("x-shop-customer").and_then(|v| v.to_str().ok()).unwrap_or("1").to_owned();
        let code = format!("code-{}", uuid::Uuid::new_v4().simple());
        fake.pending.lock().unwrap().push((code.clone(), get("nonce"), customer));
        let mut to = url::Url::parse(&get("redirect_uri")).unwrap();
        to.query_pairs_mut().append_pair("code", &code).append_pair("state", &get("state"));
        Redirect::to(to.as_str())
    }
    async fn token(State(fake): State<LoginFake>, body: String) -> axum::Json<Value> {
        let code = url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let (nonce, customer) = fake
            .pending
            .lock()
            .unwrap()
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|(_, n, c)| (n.clone(), c.clone()))
            .unwrap_or_default();
        let now = Utc::now().timestamp();
        let claims = json!({
            "iss": "https://access.line.me", "sub": (fake.user_of)(&customer).as_str(),
            "aud": LOGIN_CHANNEL, "exp": now + 3600, "iat": now, "nonce": nonce,
        });
        axum::Json(json!({
            "access_token": "at", "expires_in": 2_592_000, "token_type": "Bearer",
            "scope": "profile openid", "id_token": sign_id_token_hs256(&claims, LOGIN_SECRET),
        }))
    }
    let state = LoginFake { pending: Arc::default(), user_of };
    let router = axum::Router::new()
        .route("/oauth2/v2.1/authorize", axum::routing::get(authorize))
        .route("/oauth2/v2.1/token", axum::routing::post(token))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

impl Site {
    /// `user` taps the rich menu's postback `data`; returns the status the webhook answered.
    pub(crate) async fn postback(&self, user: &LineUserId, data: &str) -> u16 {
        let token = self.shop.line.issue_reply_token(user.as_str()).unwrap();
        let body = json!({"destination": "Ubot", "events": [{
            "type": "postback", "timestamp": Utc::now().timestamp_millis(), "mode": "active",
            "replyToken": token, "source": {"type": "user", "userId": user.as_str()},
            "webhookEventId": format!("01PAGES{}", uuid::Uuid::new_v4().simple()),
            "deliveryContext": {"isRedelivery": false}, "postback": {"data": data}}]});
        self.post_webhook(&body).await
    }

    /// Posts a signed webhook body; returns the status.
    pub(crate) async fn post_webhook(&self, body: &Value) -> u16 {
        crate::app::harness::post_webhook(&self.base, body).await
    }

    /// The URL of the last button enishi sent `user` (the link or unlink page).
    pub(crate) fn last_button_url(&self, user: &LineUserId) -> String {
        let messages = self.shop.line.messages_for(user.as_str());
        let last =
            messages.iter().rev().find(|m| m["type"] == "template").expect("a button message");
        last["template"]["actions"][0]["uri"].as_str().unwrap().to_owned()
    }

    /// A fresh rich-menu link URL for `user` (the link postback's reply).
    pub(crate) async fn link_url(&self, user: &LineUserId) -> String {
        assert_eq!(self.postback(user, "enishi:link").await, 200);
        self.last_button_url(user)
    }

    /// The texts enishi sent `user`, in order.
    pub(crate) fn texts_to(&self, user: &LineUserId) -> Vec<String> {
        self.shop
            .line
            .messages_for(user.as_str())
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect()
    }
}
