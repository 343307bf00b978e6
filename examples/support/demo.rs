//! Shared by the `quickstart`, `send_campaign` and `server` examples: a generated shop, the
//! fakes holding it, and customers linking and blocking the way real ones do.

// Each example uses its own subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use enishi::campaign::Plan;
use enishi::commerce::EcforceClient;
use enishi::commerce::{Customer, LineItem, Money, Order, OrderState};
use enishi::line::LineClient;
use enishi::line::webhook::ChannelSecret;
use enishi::testkit::{DEFAULT_ECFORCE_TOKEN, FakeEcforce, FakeLine, FakeLogin, FakeUser, user_id};
use enishi::{CustomerId, LineUserId};
use serde_json::json;

/// The password every demo customer signs in with.
pub(crate) const PASSWORD: &str = "correct horse";

/// The products of the generated shop.
pub(crate) const PRODUCTS: [&str; 4] = ["serum", "cleanser", "trial-kit", "serum-subscription"];

/// splitmix64: a small deterministic generator, so every run tells the same story.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A generated shop.
pub(crate) struct Shop {
    pub(crate) customers: Vec<Customer>,
    pub(crate) orders: Vec<Order>,
}

/// Customers `1..=n` (60 % already linked to LINE in ecforce, 80 % opted in to marketing) with
/// 0–3 orders over the last 90 days. Customer `i`'s LINE user is `testkit::user_id(i)`.
pub(crate) fn generate_shop(n: u64, now: DateTime<Utc>) -> Shop {
    let mut customers = Vec::new();
    let mut orders = Vec::new();
    for i in 1..=n {
        let r = mix(i);
        let id = CustomerId::new(i.to_string()).expect("digits are a valid ID");
        let mut c = Customer::new(id.clone(), now - TimeDelta::days(120));
        c.email = Some(format!("customer{i}@example.jp"));
        c.name = Some(format!("顧客{i}"));
        c.opt_in = Some((r >> 40) % 10 < 8);
        if r % 10 < 6 {
            c.line_user_id = Some(LineUserId::new(user_id(i)).expect("valid user ID"));
        }
        customers.push(c);
        for k in 0..(r >> 8) % 4 {
            let days = i64::try_from((r >> (16 + 4 * k)) % 90).unwrap_or(0);
            let product = PRODUCTS[usize::try_from((r >> (24 + k)) % 4).unwrap_or(0)];
            let mut o = Order::new(
                format!("{i}-{k}"),
                OrderState::Completed,
                now - TimeDelta::days(days) - TimeDelta::hours(2),
            );
            o.customer_id = Some(id.clone());
            o.ordered_at = Some(now - TimeDelta::days(days));
            o.total = Some(Money::jpy(2_980));
            o.items = vec![LineItem::new(Some(product.to_owned()), 1)];
            orders.push(o);
        }
    }
    Shop { customers, orders }
}

/// The offline stand-ins: a fake ecforce shop holding a generated shop, a fake LINE account
/// whose friends are the shop's customers, and clients pointed at both.
pub(crate) struct Fakes {
    pub(crate) line: FakeLine,
    pub(crate) ecforce: FakeEcforce,
    pub(crate) shop: Shop,
    pub(crate) client: LineClient,
    pub(crate) shop_api: Arc<EcforceClient>,
}

/// Starts the fakes with `customers` generated customers (see [`generate_shop`]).
pub(crate) async fn start_fakes(customers: u64) -> Result<Fakes, Box<dyn std::error::Error>> {
    let shop = generate_shop(customers, Utc::now());
    let ecforce = FakeEcforce::builder().start().await?;
    ecforce.insert_customers(shop.customers.clone());
    ecforce.insert_orders(shop.orders.clone());
    let mut line = FakeLine::builder();
    for i in 1..=customers {
        line = line.user(FakeUser::new(user_id(i)).display_name(format!("LINE{i}")));
    }
    let line = line.start().await?;
    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()?;
    let shop_api = Arc::new(
        EcforceClient::builder(ecforce.base_url(), DEFAULT_ECFORCE_TOKEN)
            .min_interval(Duration::ZERO)
            .build()?,
    );
    Ok(Fakes { line, ecforce, shop, client, shop_api })
}

/// Where a demo customer acts: the service at `base`, through the fakes.
#[derive(Clone, Copy)]
pub(crate) struct Site<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) line: &'a FakeLine,
    pub(crate) ecforce: &'a FakeEcforce,
    pub(crate) base: &'a str,
    pub(crate) secret: &'a ChannelSecret,
}

/// A customer links the way a real one does: taps the rich menu (a postback webhook), opens
/// the link URL enishi replied with, signs in on the link page at `base`, and LINE's dialog
/// confirms with a signed `accountLink` webhook. `phone` is the client address the service
/// sees through its proxy (`X-Forwarded-For`), when it trusts one. Returns the LINE user.
pub(crate) async fn link_via_pages(
    site: &Site<'_>,
    customer: &Customer,
    at: DateTime<Utc>,
    phone: Option<String>,
) -> Result<LineUserId, Box<dyn std::error::Error>> {
    let Site { http, line, ecforce, base, secret } = *site;
    let user = user_id(customer.id.as_str().parse()?);
    let webhook = format!("{base}/webhook");
    let reply_token = line.issue_reply_token(&user)?;
    let tap = json!({"destination": "Ubot", "events": [{
        "type": "postback", "timestamp": at.timestamp_millis(), "replyToken": reply_token,
        "mode": "active", "source": {"type": "user", "userId": user},
        "webhookEventId": format!("01TAP{}{}", customer.id, at.timestamp()),
        "deliveryContext": {"isRedelivery": false},
        "postback": {"data": enishi::link::DEFAULT_LINK_POSTBACK}}]});
    line.post_webhook(&webhook, secret, tap.to_string().into_bytes()).await?;
    let link_url = line
        .messages_for(&user)
        .last()
        .and_then(|m| m["template"]["actions"][0]["uri"].as_str().map(str::to_owned))
        .ok_or("no link message was replied")?;
    let token = url::Url::parse(&link_url)?
        .query_pairs()
        .find(|(k, _)| k == "linkToken")
        .map(|(_, v)| v.into_owned())
        .ok_or("the link URL has no linkToken")?;
    let email = customer.email.clone().unwrap_or_default();
    ecforce.add_login(email.clone(), FakeLogin::new(customer.id.clone(), PASSWORD));
    let page = http.get(&link_url).send().await?;
    if !page.status().is_success() {
        return Err(format!("the link page answered {}", page.status()).into());
    }
    let form = [("linkToken", token.as_str()), ("email", email.as_str()), ("password", PASSWORD)];
    let mut request = http.post(format!("{base}/link")).form(&form);
    if let Some(phone) = phone {
        request = request.header("x-forwarded-for", phone);
    }
    let signed_in = request.send().await?;
    let status = signed_in.status();
    let dialog = signed_in
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("the sign-in answered {status} without a redirect"))?;
    line.open_account_link_dialog(&dialog, &user, &webhook, secret).await?;
    Ok(LineUserId::new(&user)?)
}

/// A LINE user blocks the account: LINE sends `unfollow` to `base`'s webhook.
pub(crate) async fn block(
    line: &FakeLine,
    base: &str,
    secret: &ChannelSecret,
    user: &str,
    at: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let body = json!({"destination": "Ubot", "events": [{
        "type": "unfollow", "timestamp": at.timestamp_millis(), "mode": "active",
        "source": {"type": "user", "userId": user},
        "webhookEventId": format!("01UNF{user}{}", at.timestamp()),
        "deliveryContext": {"isRedelivery": false}}]});
    line.post_webhook(&format!("{base}/webhook"), secret, body.to_string().into_bytes()).await?;
    line.set_blocked(user, true)?;
    Ok(())
}

/// Prints the plan's dry run, indented.
pub(crate) fn print_dry_run(plan: &Plan) {
    for line in plan.dry_run().to_string().lines() {
        println!("   {line}");
    }
}
