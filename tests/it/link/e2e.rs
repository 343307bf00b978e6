//! The whole account-link flow over HTTP: LINE (fake) → webhook → reply with the link URL →
//! shop login form → redirect to LINE's dialog → LINE (fake) sends the signed accountLink
//! webhook → the link is stored.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use chrono::Utc;
use enishi::commerce::{AuthError, CustomerAuthenticator, Password};
use enishi::line::LinkToken;
use enishi::line::webhook::{ChannelSecret, MemoryDedup, WebhookService};
use enishi::link::{
    AccountLinker, AuditAction, LinkEventHandler, LinkReplyTexts, LinkSource, LinkStore,
    MemoryLinkStore,
};
use enishi::testkit::{DialogOutcome, FakeLine, user_id};
use enishi::{CustomerId, LineUserId};
use serde_json::json;

use super::flow::{CountingHook, client};

#[derive(Debug)]
struct Shop;

#[async_trait::async_trait]
impl CustomerAuthenticator for Shop {
    async fn authenticate(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<CustomerId, AuthError> {
        match (email, password.expose()) {
            ("taro@example.jp", "pw-taro") => Ok(CustomerId::new("C-taro").unwrap()),
            ("jiro@example.jp", "pw-jiro") => Ok(CustomerId::new("C-jiro").unwrap()),
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}

async fn login_submit(State(linker): State<AccountLinker>, body: String) -> Response {
    let form: Vec<(String, String)> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let get =
        |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let token = LinkToken::from_received(get("linkToken"));
    match linker
        .complete_with_password(
            &token,
            &get("email"),
            &Password::new(get("password")),
            std::net::Ipv4Addr::LOCALHOST.into(),
            Utc::now(),
        )
        .await
    {
        Ok(issued) => Redirect::to(issued.redirect.as_str()).into_response(),
        Err(e) => (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
    }
}

struct Shopfront {
    line: FakeLine,
    base: String,
    secret: ChannelSecret,
    store: Arc<MemoryLinkStore>,
    hook: Arc<CountingHook>,
    http: reqwest::Client,
}

impl Shopfront {
    async fn start() -> Self {
        let line = FakeLine::builder().no_rate_limits().start().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let store = Arc::new(MemoryLinkStore::new());
        let hook = Arc::new(CountingHook::default());
        // The default access host: the redirect is exactly LINE's documented dialog URL.
        let linker = AccountLinker::builder(client(&line), store.clone(), format!("{base}/link"))
            .authenticator(Arc::new(Shop))
            .hook(hook.clone())
            .build()
            .unwrap();
        let secret = ChannelSecret::new("e2e-channel-secret");
        let webhook = WebhookService::builder(secret.clone())
            .dedup(MemoryDedup::default())
            .handle_before_responding(true)
            .build(LinkEventHandler::new(linker.clone()));
        let app = Router::new()
            .route("/link", post(login_submit))
            .with_state(linker)
            .merge(webhook.router("/webhook"));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { line, base, secret, store, hook, http }
    }

    fn webhook_url(&self) -> String {
        format!("{}/webhook", self.base)
    }

    /// The user taps the rich menu: LINE posts the link postback; the shop replies with the link.
    async fn tap_link_menu(&self, user: &str) -> url::Url {
        let reply_token = self.line.issue_reply_token(user).unwrap();
        let body = json!({"destination": "Ubot", "events": [{
            "type": "postback", "timestamp": 1, "replyToken": reply_token, "mode": "active",
            "source": {"type": "user", "userId": user}, "webhookEventId": format!("01PB{user}"),
            "deliveryContext": {"isRedelivery": false}, "postback": {"data": "enishi:link"}}]});
        let status = self
            .line
            .post_webhook(&self.webhook_url(), &self.secret, body.to_string().into_bytes())
            .await
            .unwrap();
        assert_eq!(status, 200);
        let sent = self.line.messages_for(user);
        let uri =
            sent.last().unwrap()["template"]["actions"][0]["uri"].as_str().unwrap().to_owned();
        url::Url::parse(&uri).unwrap()
    }

    /// The browser submits the shop's login form; returns the response.
    async fn log_in(&self, link_url: &url::Url, email: &str, password: &str) -> reqwest::Response {
        let token = link_url.query_pairs().find(|(k, _)| k == "linkToken").unwrap().1.into_owned();
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("linkToken", &token)
            .append_pair("email", email)
            .append_pair("password", password)
            .finish();
        self.http.post(format!("{}/link", self.base)).body(form).send().await.unwrap()
    }
}

fn location(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), 303, "expected a redirect");
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn link_e2e_account_link_over_http() {
    let shop = Shopfront::start().await;
    let taro = user_id(1);
    let link_url = shop.tap_link_menu(&taro).await;
    assert!(link_url.as_str().starts_with(&format!("{}/link?linkToken=", shop.base)));

    // A wrong password neither redirects nor spends the link token.
    let denied = shop.log_in(&link_url, "taro@example.jp", "nope").await;
    assert_eq!(denied.status(), 401);

    let dialog = location(&shop.log_in(&link_url, "taro@example.jp", "pw-taro").await);
    assert!(
        dialog.starts_with("https://access.line.me/dialog/bot/accountLink?linkToken="),
        "{dialog}"
    );
    assert!(dialog.contains("&nonce="));

    let outcome = shop
        .line
        .open_account_link_dialog(&dialog, &taro, &shop.webhook_url(), &shop.secret)
        .await
        .unwrap();
    assert_eq!(outcome, DialogOutcome::Linked { status: 200 });
    let link = shop.store.link_of_user(&LineUserId::new(&taro).unwrap()).await.unwrap().unwrap();
    assert_eq!((link.customer.as_str(), link.source), ("C-taro", LinkSource::AccountLink));
    assert_eq!(shop.hook.0.load(Ordering::SeqCst), 1);
    // The user hears in LINE that it worked (the browser's page cannot know).
    let told = shop.line.messages_for(&taro);
    assert_eq!(
        told.last().unwrap()["text"],
        super::outcomes::default_text(LinkReplyTexts::default().linked)
    );

    // The link token is single use at LINE: opening the dialog again sends nothing.
    let again = shop
        .line
        .open_account_link_dialog(&dialog, &taro, &shop.webhook_url(), &shop.secret)
        .await
        .unwrap();
    assert_eq!(again, DialogOutcome::NoEvent);

    // LINE redelivers the accountLink event (new delivery, same nonce): handled, no second hook.
    let nonce = url::Url::parse(&dialog)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "nonce")
        .unwrap()
        .1
        .into_owned();
    let body = json!({"destination": "Ubot", "events": [{
        "type": "accountLink", "timestamp": 2, "replyToken": "r", "mode": "active",
        "source": {"type": "user", "userId": taro}, "webhookEventId": "01REDELIVERED",
        "deliveryContext": {"isRedelivery": true}, "link": {"result": "ok", "nonce": nonce}}]});
    let status = shop
        .line
        .post_webhook(&shop.webhook_url(), &shop.secret, body.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(shop.hook.0.load(Ordering::SeqCst), 1, "fired once per new link");
}

#[tokio::test]
async fn link_e2e_impersonation_fails_and_links_nothing() {
    let shop = Shopfront::start().await;
    let (victim, attacker) = (user_id(2), user_id(3));
    // The attacker starts a link and sends the resulting dialog URL to the victim.
    let link_url = shop.tap_link_menu(&attacker).await;
    let dialog = location(&shop.log_in(&link_url, "jiro@example.jp", "pw-jiro").await);
    let outcome = shop
        .line
        .open_account_link_dialog(&dialog, &victim, &shop.webhook_url(), &shop.secret)
        .await
        .unwrap();
    assert_eq!(outcome, DialogOutcome::Failed { status: 200 });
    assert_eq!(
        shop.store.link_of_customer(&CustomerId::new("C-jiro").unwrap()).await.unwrap(),
        None
    );
    assert_eq!(shop.store.audit_trail(1).await.unwrap()[0].action, AuditAction::LinkFailed);
    assert_eq!(shop.hook.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn link_e2e_conflict_is_answered_and_the_user_told_to_contact_the_shop() {
    let shop = Shopfront::start().await;
    let (taro, other) = (user_id(5), user_id(6));
    // Both sign in as C-taro before either link lands (a race the sign-in check cannot see);
    // the other LINE user's link lands first.
    let first = location(
        &shop.log_in(&shop.tap_link_menu(&other).await, "taro@example.jp", "pw-taro").await,
    );
    let dialog = location(
        &shop.log_in(&shop.tap_link_menu(&taro).await, "taro@example.jp", "pw-taro").await,
    );
    shop.line
        .open_account_link_dialog(&first, &other, &shop.webhook_url(), &shop.secret)
        .await
        .unwrap();
    let outcome = shop
        .line
        .open_account_link_dialog(&dialog, &taro, &shop.webhook_url(), &shop.secret)
        .await
        .unwrap();
    // Final: answered 200 so LINE does not redeliver; the user was told what to do.
    assert_eq!(outcome, DialogOutcome::Linked { status: 200 });
    assert_eq!(shop.store.link_of_user(&LineUserId::new(&taro).unwrap()).await.unwrap(), None);
    let told = shop.line.messages_for(&taro);
    let text = told.last().unwrap()["text"].as_str().unwrap();
    assert_eq!(text, super::outcomes::default_text(LinkReplyTexts::default().conflict));
}

#[tokio::test]
async fn link_e2e_forged_webhook_signature_is_refused() {
    let shop = Shopfront::start().await;
    let body = json!({"destination": "Ubot", "events": [{
        "type": "accountLink", "timestamp": 2, "mode": "active",
        "source": {"type": "user", "userId": user_id(4)}, "webhookEventId": "01FORGED",
        "deliveryContext": {"isRedelivery": false}, "link": {"result": "ok", "nonce": "guess"}}]});
    let status = shop
        .line
        .post_webhook(
            &shop.webhook_url(),
            &ChannelSecret::new("wrong-secret"),
            body.to_string().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(status, 401);
    assert!(shop.store.audit_trail(10).await.unwrap().is_empty());
}

mod line_login {
    use std::sync::Mutex;

    use axum::extract::Query;
    use axum::routing::get;
    use enishi::link::{CallbackParams, LineLogin, sign_id_token_hs256};
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;

    const CHANNEL: &str = "1660000002";
    const SECRET: &str = "e2e-login-secret";

    #[derive(Clone)]
    struct App {
        login: LineLogin,
        linker: AccountLinker,
    }

    /// The shop's session says who is logged in; this demo takes it from a header.
    fn customer(headers: &axum::http::HeaderMap) -> CustomerId {
        CustomerId::new(headers["x-demo-customer"].to_str().unwrap()).unwrap()
    }

    async fn start(State(app): State<App>, headers: axum::http::HeaderMap) -> Response {
        let url = app.login.authorize(&customer(&headers), Utc::now()).await.unwrap();
        Redirect::to(url.as_str()).into_response()
    }

    async fn callback(
        State(app): State<App>,
        headers: axum::http::HeaderMap,
        Query(params): Query<CallbackParams>,
    ) -> Response {
        match app.login.callback(&params, &customer(&headers), Utc::now()).await {
            Ok(_) => {
                let to =
                    app.linker.checked_redirect("https://shop.example/mypage?linked=1").unwrap();
                Redirect::to(to.as_str()).into_response()
            }
            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    }

    #[tokio::test]
    async fn link_e2e_line_login_over_http() {
        let line = FakeLine::builder().no_rate_limits().start().await.unwrap();
        let store = Arc::new(MemoryLinkStore::new());
        let hook = Arc::new(CountingHook::default());
        let linker =
            AccountLinker::builder(client(&line), store.clone(), "https://shop.example/link")
                .allow_redirect("https://shop.example/mypage")
                .hook(hook.clone())
                .build()
                .unwrap();
        // LINE Login's token endpoint: signs an ID token with the nonce LINE got at authorize.
        let nonce = Arc::new(Mutex::new(String::new()));
        let token_server = MockServer::start().await;
        let n = nonce.clone();
        Mock::given(method("POST"))
            .respond_with(move |_: &Request| {
                let claims = json!({"iss": "https://access.line.me", "sub": user_id(5), "aud": CHANNEL,
                    "exp": Utc::now().timestamp() + 600, "iat": Utc::now().timestamp(),
                    "nonce": *n.lock().unwrap()});
                ResponseTemplate::new(200).set_body_json(json!({"access_token": "a", "token_type": "Bearer",
                    "expires_in": 1, "id_token": sign_id_token_hs256(&claims, SECRET)}))
            })
            .mount(&token_server)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let login =
            LineLogin::builder(CHANNEL, SECRET, format!("{base}/line/callback"), store.clone())
                .token_url(format!("{}/oauth2/v2.1/token", token_server.uri()))
                .linker(linker.clone())
                .build()
                .unwrap();
        let app = Router::new()
            .route("/line/login", get(start))
            .route("/line/callback", get(callback))
            .with_state(App { login, linker });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

        let r = http
            .get(format!("{base}/line/login"))
            .header("x-demo-customer", "C-hanako")
            .send()
            .await
            .unwrap();
        let authorize = url::Url::parse(&location(&r)).unwrap();
        let q = |k: &str| authorize.query_pairs().find(|(n, _)| n == k).unwrap().1.into_owned();
        // At LINE: the user consents; LINE remembers the nonce and redirects with a code.
        *nonce.lock().unwrap() = q("nonce");
        let callback = format!(
            "{}?code=c0de&state={}&friendship_status_changed=true",
            q("redirect_uri"),
            q("state")
        );

        // A different shop session presenting the callback (login CSRF) is refused.
        let r = http.get(&callback).header("x-demo-customer", "C-mallory").send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            store.link_of_customer(&CustomerId::new("C-mallory").unwrap()).await.unwrap(),
            None
        );

        // The state was spent by that attempt: start again, as the user would.
        let r = http
            .get(format!("{base}/line/login"))
            .header("x-demo-customer", "C-hanako")
            .send()
            .await
            .unwrap();
        let authorize = url::Url::parse(&location(&r)).unwrap();
        let q = |k: &str| authorize.query_pairs().find(|(n, _)| n == k).unwrap().1.into_owned();
        *nonce.lock().unwrap() = q("nonce");
        let callback = format!("{}?code=c0de&state={}", q("redirect_uri"), q("state"));
        let r = http.get(&callback).header("x-demo-customer", "C-hanako").send().await.unwrap();
        assert_eq!(location(&r), "https://shop.example/mypage?linked=1");
        let link =
            store.link_of_customer(&CustomerId::new("C-hanako").unwrap()).await.unwrap().unwrap();
        assert_eq!(
            (link.line_user.as_str(), link.source),
            (user_id(5).as_str(), LinkSource::LineLogin)
        );
        assert_eq!(hook.0.load(Ordering::SeqCst), 1);

        // Replaying the callback URL is refused.
        let r = http.get(&callback).header("x-demo-customer", "C-hanako").send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("already used"));
    }
}
