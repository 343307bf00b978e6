//! The app's routes: webhook (follows into the link store and the scenarios, de-duplicated),
//! the link pages, health.

use chrono::Utc;
use enishi::WebhookEventId;
use enishi::storage::Storage;

use super::harness::{event, post_webhook, serve, shop, user};

#[tokio::test]
async fn app_webhook_records_follows_once_and_refuses_forgeries() {
    let shop = shop(2).await;
    let storage = Storage::in_memory();
    let app = shop.builder(storage.clone()).build().unwrap();
    let base = serve(&app).await;
    let unfollow = event("unfollow", &user(1), "01APPUNFOLLOW1", Utc::now());
    assert_eq!(post_webhook(&base, &unfollow).await, 200);
    let status = storage.links().follow_status(&user(1)).await.unwrap().unwrap();
    assert!(!status.following);
    // The redelivery is claimed already: nothing runs twice.
    assert_eq!(post_webhook(&base, &unfollow).await, 200);
    let id = WebhookEventId::new("01APPUNFOLLOW1").unwrap();
    assert!(!storage.dedup().claim(&id, Utc::now()).await.unwrap());
    let forged = reqwest::Client::new()
        .post(format!("{base}/webhook"))
        .header("x-line-signature", "AAAA")
        .body(unfollow.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400, "a bad signature is refused");
}

#[tokio::test]
async fn app_link_pages_link_a_customer_end_to_end() {
    let shop = shop(4).await;
    let storage = Storage::in_memory();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let app = shop.builder(storage.clone()).public_url(&base).build().unwrap();
    let routes = app.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = tokio::net::TcpListener::bind(base.trim_start_matches("http://")).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, routes).await });

    // Customer 2 (not linked) taps the rich menu.
    let u = user(2);
    let reply_token = shop.line.issue_reply_token(u.as_str()).unwrap();
    let mut tap = event("postback", &u, "01APPTAP2", Utc::now());
    tap["events"][0]["replyToken"] = reply_token.into();
    tap["events"][0]["postback"] = serde_json::json!({"data": enishi::link::DEFAULT_LINK_POSTBACK});
    assert_eq!(post_webhook(&base, &tap).await, 200);
    let reply = shop.line.messages_for(u.as_str());
    let link_url = reply[0]["template"]["actions"][0]["uri"].as_str().unwrap().to_owned();
    assert!(link_url.starts_with(&format!("{base}/link?linkToken=")), "{link_url}");

    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = http.get(&link_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("lang=\"ja\"") && page.contains("共有される情報"), "{page}");
    let token = url::Url::parse(&link_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "linkToken")
        .unwrap()
        .1
        .into_owned();
    let form_page = http.get(format!("{base}/link/login?linkToken={token}")).send().await.unwrap();
    let form_page = form_page.text().await.unwrap();
    assert!(form_page.contains("<label for=\"email\">"), "{form_page}");

    // A wrong password: a Japanese page, nothing linked.
    shop.ecforce
        .add_login("c2@example.jp", enishi::testkit::FakeLogin::new(super::harness::id(2), "pw-2"));
    let form = [("linkToken", token.as_str()), ("email", "c2@example.jp"), ("password", "nope")];
    let wrong = http.post(format!("{base}/link")).form(&form).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    assert!(
        wrong.contains("メールアドレスかパスワードが違います") && wrong.contains("c2@example.jp")
    );

    let form = [("linkToken", token.as_str()), ("email", "c2@example.jp"), ("password", "pw-2")];
    let ok = http.post(format!("{base}/link")).form(&form).send().await.unwrap();
    assert_eq!(ok.status(), 303);
    let dialog = ok.headers()["location"].to_str().unwrap().to_owned();
    let secret = enishi::line::webhook::ChannelSecret::new(super::harness::SECRET);
    shop.line
        .open_account_link_dialog(&dialog, u.as_str(), &format!("{base}/webhook"), &secret)
        .await
        .unwrap();
    let link = storage.links().link_of_user(&u).await.unwrap().expect("linked");
    assert_eq!(link.customer, super::harness::id(2));
    let synced = app.sync().await.unwrap();
    assert_eq!(synced.linked, 3, "1 and 3 from ecforce, 2 through the pages");
}

#[tokio::test]
async fn app_health_and_readiness_answer() {
    let shop = shop(1).await;
    let app = shop.builder(Storage::in_memory()).build().unwrap();
    let base = serve(&app).await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    // Without a public URL there are no link pages.
    assert_eq!(http.get(format!("{base}/link")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn app_line_login_starts_for_the_signed_in_customer_only() {
    let shop = shop(2).await;
    let storage = Storage::in_memory();
    let login = enishi::link::LineLogin::builder(
        "1650000000",
        "login-channel-secret",
        "https://line.example.jp/login/line/callback",
        storage.links(),
    );
    // The shop's proxy says who is signed in.
    let session = |h: &axum::http::HeaderMap| {
        h.get("x-shop-customer")?.to_str().ok()?.parse::<enishi::CustomerId>().ok()
    };
    let app = shop.builder(storage).line_login(login, session).build().unwrap();
    let base = serve(&app).await;
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let anonymous = http.get(format!("{base}/login/line")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.text().await.unwrap().contains("ログインが必要です"));
    let signed_in =
        http.get(format!("{base}/login/line")).header("x-shop-customer", "2").send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    let to = signed_in.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with("https://access.line.me/") && to.contains("client_id=1650000000"),
        "{to}"
    );
    assert!(!to.contains("login-channel-secret"));
    let forged = http
        .get(format!("{base}/login/line/callback?code=c&state=forged"))
        .header("x-shop-customer", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400, "an unknown state links nothing");
}
