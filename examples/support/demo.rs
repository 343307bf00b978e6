//! Shared by the `quickstart` and `send_campaign` examples: a generated shop, who is reachable
//! on LINE, and sending a planned campaign with a progress bar.

// Each example uses its own subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use enishi::campaign::{Contact, DeliveryJournal, DeliveryReport, Dispatcher, Plan, Vars};
use enishi::commerce::EcforceClient;
use enishi::commerce::{Customer, LineItem, Money, Order, OrderState};
use enishi::line::LineClient;
use enishi::link::LinkStore;
use enishi::segment::{AttrValue, CustomerFacts, Friendship};
use enishi::testkit::{DEFAULT_ECFORCE_TOKEN, FakeEcforce, FakeLine, FakeUser, user_id};
use enishi::{CampaignId, CustomerId, LineUserId};
use indicatif::{ProgressBar, ProgressStyle};

/// The SQLite file `DATABASE_URL` names (a path, optionally prefixed `sqlite:`). These examples
/// keep their data in SQLite only: a PostgreSQL URL is refused rather than taken for a file name.
pub(crate) fn sqlite_path(database_url: &str) -> Result<std::path::PathBuf, String> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Err(
            "DATABASE_URL names PostgreSQL, but this example keeps its data in SQLite only: \
                    set it to an SQLite file path (the PostgreSQL stores are for your own \
                    application, see docs/operations.md)"
                .into(),
        );
    }
    Ok(database_url.trim_start_matches("sqlite:").into())
}

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

/// Overwrites the facts' LINE status with the link store's: who is linked, and who follows
/// (webhooks keep it current; a block is an `unfollow`).
pub(crate) async fn apply_link_status(
    store: &dyn LinkStore,
    facts: &mut [CustomerFacts],
) -> Result<(), Box<dyn std::error::Error>> {
    for f in facts {
        let link = store.link_of_customer(&f.id).await?;
        f.line.linked = link.is_some();
        f.line.linked_at = link.as_ref().map(|l| l.linked_at);
        f.line.friendship = match &link {
            Some(l) => match store.follow_status(&l.line_user).await? {
                Some(s) if !s.following => Friendship::Blocked,
                _ => Friendship::Following,
            },
            None => Friendship::Unknown,
        };
    }
    Ok(())
}

/// The planner's view of `members`: LINE link and follow status from the store, consent from
/// the `opt_in` attribute, and the template variables `name` and `orders`.
pub(crate) async fn contacts(
    store: &dyn LinkStore,
    members: &[CustomerId],
    facts: &[CustomerFacts],
    names: &HashMap<CustomerId, String>,
) -> Result<Vec<Contact>, Box<dyn std::error::Error>> {
    let by_id: HashMap<&CustomerId, &CustomerFacts> = facts.iter().map(|f| (&f.id, f)).collect();
    let mut out = Vec::with_capacity(members.len());
    for id in members {
        let mut contact = Contact::new(id.clone());
        if let Some(link) = store.link_of_customer(id).await? {
            let following = store.follow_status(&link.line_user).await?.is_none_or(|s| s.following);
            contact = contact.linked_to(link.line_user).with_following(following);
        }
        let f = by_id.get(id);
        let consent =
            f.and_then(|f| f.attributes.get("opt_in")).is_some_and(|v| *v == AttrValue::Bool(true));
        let mut vars = Vars::new();
        if let Some(name) = names.get(id) {
            vars.insert("name", name.clone());
        }
        vars.insert("orders", f.map_or(0, |f| f.orders.len()).to_string());
        out.push(contact.with_consent(consent).with_vars(vars));
    }
    Ok(out)
}

/// Prints the plan's dry run, indented.
pub(crate) fn print_dry_run(plan: &Plan) {
    for line in plan.dry_run().to_string().lines() {
        println!("   {line}");
    }
}

/// Writes the plan to the journal (before anything is sent), then sends it with a progress bar
/// showing rate and ETA; returns the delivery report.
pub(crate) async fn send(
    client: &LineClient,
    journal: Arc<dyn DeliveryJournal>,
    campaign: &CampaignId,
    plan: Plan,
) -> Result<DeliveryReport, Box<dyn std::error::Error>> {
    let batches = plan.into_batches();
    journal.enqueue(&batches).await?;
    let dispatcher = Dispatcher::builder(client.clone(), journal).worker("example").build()?;
    let mut progress = dispatcher.progress();
    let recipients: usize = batches.iter().map(|b| b.recipients.len()).sum();
    let bar = ProgressBar::new(recipients as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "   {bar:30.green/white} {pos:>7}/{len:7} sent  {msg}  eta {eta}",
        )
        .expect("a valid template"),
    );
    let watcher = {
        let bar = bar.clone();
        tokio::spawn(async move {
            while progress.changed().await.is_ok() {
                let p = progress.borrow().clone();
                bar.set_position(p.sent);
                bar.set_message(format!("{:>8.0} msg/s", p.rate));
            }
        })
    };
    let report = dispatcher.run(campaign).await;
    watcher.abort();
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(report?)
}
