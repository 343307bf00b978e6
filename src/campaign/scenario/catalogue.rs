//! Ready-made scenarios for every use case of the catalogue, configurable through
//! [`CatalogueParams`] and, being plain [`ScenarioDef`]s, editable field by field (or saved as
//! TOML/JSON and edited there).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use super::definition::{ExitDef, Priority, ScenarioDef, ScenarioSet, StepDef};
use super::error::ScenarioError;
use super::state::ProductChange;
use super::step::Delay;
use super::trigger::{Rank, SavedSource, Trigger};
use crate::segment::OrderKind;

/// The shop-specific values the ready-made scenarios need. Start from `Default` and override
/// fields with struct update syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueParams {
    /// Local time of day for day-based steps (`HH:MM`).
    pub send_time: String,
    /// The trial product (UC-08).
    pub trial_product: String,
    /// The main product trial buyers are led to (UC-08).
    pub main_product: String,
    /// Product A, whose buyers are shown product B (UC-14).
    pub product_a: String,
    /// Product B (UC-14).
    pub product_b: String,
    /// Membership ranks (UC-16).
    pub ranks: Vec<Rank>,
    /// "¥XX to the next rank" is sent when the gap is at most this (UC-16).
    pub rank_within: i64,
    /// Subscription milestones in months (UC-25).
    pub milestone_months: Vec<u32>,
    /// One-off orders in 180 days that make a customer a subscription prospect (UC-15).
    pub upsell_min_orders: u32,
    /// The loyal-customer segment (DSL) for early access (UC-19).
    pub loyal_segment: String,
    /// When early access opens (UC-19).
    pub early_access_at: Vec<DateTime<FixedOffset>>,
    /// Win-back after this many days without an order (UC-20).
    pub dormant_days: u32,
}

impl Default for CatalogueParams {
    fn default() -> Self {
        Self {
            send_time: "10:00".to_owned(),
            trial_product: "trial".to_owned(),
            main_product: "main".to_owned(),
            product_a: "A".to_owned(),
            product_b: "B".to_owned(),
            ranks: vec![
                Rank { name: "シルバー".to_owned(), threshold: 30_000 },
                Rank { name: "ゴールド".to_owned(), threshold: 100_000 },
            ],
            rank_within: 5_000,
            milestone_months: vec![3, 6, 12],
            upsell_min_orders: 2,
            loyal_segment: "orders last 365d sum >= 50000 or orders last 365d count >= 4"
                .to_owned(),
            early_access_at: Vec::new(),
            dormant_days: 60,
        }
    }
}

fn days(n: i64) -> Delay {
    Delay::days(n)
}

/// Every ready-made scenario, in catalogue order.
///
/// | Scenario | Use cases |
/// |---|---|
/// | `cart_abandon` | UC-06 |
/// | `f2_series` | UC-12, UC-13 |
/// | `subscription_churn_point` | UC-23, UC-24 |
/// | `subscription_restart` | UC-27, UC-28 |
/// | `subscription_thanks` | UC-25, UC-26 |
/// | `birthday_month` | UC-29 |
/// | `next_rank` | UC-16 |
/// | `restock` | UC-10, UC-32 |
/// | `price_drop` | UC-31 |
/// | `last_one` | UC-30 |
/// | `trial_to_main` | UC-08 |
/// | `cross_sell` | UC-14 |
/// | `subscription_upsell` | UC-15 |
/// | `early_access` | UC-19 (only when `early_access_at` is set) |
/// | `link_invitation` | UC-04 |
/// | `link_thanks` | UC-02 |
/// | `welcome` | UC-11 |
/// | `win_back` | UC-20, UC-21 |
#[must_use]
pub fn catalogue(p: &CatalogueParams) -> Vec<ScenarioDef> {
    let t = p.send_time.as_str();
    let mut out = vec![
        ScenarioDef::new("cart_abandon", Trigger::CartAbandoned)
            .describe("カゴ落ち: reminders 3 h and 24 h after the last cart change; an order stops them", &["UC-06"])
            .priority(Priority::High)
            .step(StepDef::new("3h", Delay::hours(3),
                "{{ name }}さん、お買い忘れはありませんか？カートに{{ cart_count }}点（{{ cart_items }}）が残っています。"))
            .step(StepDef::new("24h", Delay::hours(24),
                "{{ name }}さん、カートの商品（{{ cart_items }}）はまだ残っています。今なら小さな割引クーポンをご用意しました。")),
        ScenarioDef::new("f2_series", Trigger::OrderPlaced { products: Vec::new(), kind: None, nth: Some(1), latest_only: false })
            .describe("F2: follow-ups 7, 14 and 30 days after the first order; a second order stops them", &["UC-12", "UC-13"])
            .step(StepDef::new("d7", days(7), "{{ name }}さん、{{ products }}の使い心地はいかがですか？上手な使い方をご紹介します。").at(t))
            .step(StepDef::new("d14", days(14), "{{ name }}さん、{{ products }}と一緒に選ばれている商品をご紹介します。").at(t))
            .step(StepDef::new("d30", days(30), "{{ name }}さん、2回目のご購入に使えるクーポンをお届けします。定期便ならさらにお得です。").at(t))
            .exit(ExitDef::Ordered { products: Vec::new() }),
        ScenarioDef::new("subscription_churn_point", Trigger::SubscriptionDelivery { deliveries: 2 })
            .describe("定期 3rd delivery: notice and tips 5 and 2 days before it", &["UC-23", "UC-24"])
            .priority(Priority::High)
            .step(StepDef::new("before5d", days(-5), "{{ name }}さん、次回（3回目）のお届けは{{ next_delivery_date }}です。{{ product }}の効果を実感しやすい使い方をご紹介します。").at(t))
            .step(StepDef::new("before2d", days(-2), "{{ name }}さん、まもなく3回目のお届けです。続けるほど違いを感じていただけます。").at(t)),
        ScenarioDef::new("subscription_restart", Trigger::SubscriptionCanceled { reasons: Vec::new() })
            .describe("Canceled subscription: a follow-up by cancel reason, then a restart offer; a new subscription stops it", &["UC-27", "UC-28"])
            .step(StepDef::new("reason", days(1), "{{ name }}さん、これまでのご利用ありがとうございました。またいつでも再開いただけます。").at(t)
                .variant("cancel_reason", "price", "{{ name }}さん、ご利用ありがとうございました。再開される方に初回半額クーポンをご用意しました。")
                .variant("cancel_reason", "too_much", "{{ name }}さん、お届け間隔を60日に延ばして再開できます。余ってしまう心配はありません。")
                .variant("cancel_reason", "no_effect", "{{ name }}さん、効果を実感しやすい使い方のコツをまとめました。再開時は専門スタッフがサポートします。"))
            .step(StepDef::new("restart30d", days(30), "{{ name }}さん、定期便再開キャンペーン実施中です。今なら送料無料で再開できます。").at(t))
            .exit(ExitDef::Segment { segment: "subscription {state = active}".to_owned() }),
        ScenarioDef::new("subscription_thanks", Trigger::SubscriptionMilestone { months: p.milestone_months.clone(), products: Vec::new() })
            .describe("Thanks (with a gift) after N months of subscription", &["UC-25", "UC-26"])
            .step(StepDef::new("thanks", days(0), "{{ name }}さん、{{ product }}の定期便を{{ months }}か月続けていただきありがとうございます。感謝のプレゼントをお届けします。").at(t)),
        ScenarioDef::new("birthday_month", Trigger::BirthdayMonth)
            .describe("誕生月: a coupon on the first day of the birthday month, once a year", &["UC-29"])
            .step(StepDef::new("coupon", days(0), "{{ name }}さん、{{ month }}月はお誕生月！誕生月のお客さま限定クーポンをお届けします。").at(t)),
        ScenarioDef::new("next_rank", Trigger::NextRank { ranks: p.ranks.clone(), window: days(365), within: p.rank_within })
            .describe("ランクアップまであとXX円: the day after an order that leaves the customer close to the next rank", &["UC-16"])
            .step(StepDef::new("d1", days(1), "{{ name }}さん、{{ next_rank }}ランクまであと{{ amount_to_next_rank }}円です！").at(t)),
        ScenarioDef::new("restock", Trigger::ProductChange { change: ProductChange::Restocked, source: SavedSource::Saved })
            .describe("再入荷: a cart or favourite item is back in stock", &["UC-10", "UC-32"])
            .priority(Priority::High)
            .step(StepDef::new("now", days(0), "{{ name }}さん、お気に入りの{{ product }}が再入荷しました！")),
        ScenarioDef::new("price_drop", Trigger::ProductChange { change: ProductChange::PriceDropped, source: SavedSource::Saved })
            .describe("値下げ: a cart or favourite item is cheaper than when it was saved", &["UC-31"])
            .step(StepDef::new("now", days(0), "{{ name }}さん、{{ product }}が{{ old_price }}円から{{ price }}円に値下がりしました。")),
        ScenarioDef::new("last_one", Trigger::ProductChange { change: ProductChange::LastOne, source: SavedSource::Cart })
            .describe("残り1点: a cart item is down to its last unit", &["UC-30"])
            .priority(Priority::High)
            .step(StepDef::new("now", days(0), "{{ name }}さん、カートに入れた{{ product }}が、残り1点になりました。")),
        ScenarioDef::new("trial_to_main", Trigger::OrderPlaced { products: vec![p.trial_product.clone()], kind: None, nth: None, latest_only: true })
            .describe("Trial buyers → the main product, until they buy it", &["UC-08"])
            .step(StepDef::new("d5", days(5), "{{ name }}さん、トライアルはいかがでしたか？本商品のご案内です。").at(t))
            .step(StepDef::new("d12", days(12), "{{ name }}さん、本商品を特別価格でお試しいただけます。").at(t))
            .exit(ExitDef::Ordered { products: vec![p.main_product.clone()] }),
        ScenarioDef::new("cross_sell", Trigger::OrderPlaced { products: vec![p.product_a.clone()], kind: None, nth: None, latest_only: true })
            .describe("Product A buyers → how to use A, and product B", &["UC-14"])
            .step(StepDef::new("d3", days(3), "{{ name }}さん、{{ products }}の使い方と、一緒に使うとさらに効果的な商品のご紹介です。").at(t)
                .condition(format!("never bought {{product = {:?}}}", p.product_b)))
            .exit(ExitDef::Ordered { products: vec![p.product_b.clone()] }),
        ScenarioDef::new("subscription_upsell", Trigger::OrderPlaced { products: Vec::new(), kind: Some(OrderKind::OneOff), nth: None, latest_only: true })
            .describe("Repeat one-off buyers → the subscription's benefits", &["UC-15"])
            .priority(Priority::Low)
            .step(StepDef::new("d2", days(2), "{{ name }}さん、いつもありがとうございます。定期便なら毎回10%オフ・送料無料でお届けします。").at(t)
                .condition(format!("orders {{kind = one_off}} last 180d count >= {} and not subscription {{state = active}}", p.upsell_min_orders))),
        ScenarioDef::new("link_invitation", Trigger::FollowedUnlinked)
            .describe("Friends who are not linked: an invitation to link, with the points offer; linking stops it", &["UC-04"])
            .step(StepDef::new("h1", Delay::hours(1), "友だち追加ありがとうございます！会員IDと連携すると300ポイントをプレゼント。"))
            .step(StepDef::new("d3", days(3), "会員ID連携で300ポイント、まだ間に合います。").at(t)),
        ScenarioDef::new("link_thanks", Trigger::Linked { first_only: true })
            .describe("A thank-you with the incentive right after the first link", &["UC-02"])
            .priority(Priority::High)
            .step(StepDef::new("now", days(0), "{{ name }}さん、ID連携ありがとうございます！300ポイントを付与しました。")),
        ScenarioDef::new("welcome", Trigger::Registered)
            .describe("Welcome step after registration", &["UC-11"])
            .step(StepDef::new("d1", days(1), "{{ name }}さん、ご登録ありがとうございます。はじめての方へのおすすめをご紹介します。").at(t)),
        ScenarioDef::new("win_back", Trigger::SegmentEntry { segment: format!("last_order age > {}d", p.dormant_days) })
            .describe("Dormancy: a comeback coupon when the last order gets old, by lifecycle stage", &["UC-20", "UC-21"])
            .priority(Priority::Low)
            .step(StepDef::new("coupon", days(0), "{{ name }}さん、お久しぶりです。おかえりなさいクーポンをお届けします。").at(t))
            .exit(ExitDef::Ordered { products: Vec::new() }),
    ];
    if !p.early_access_at.is_empty() {
        out.push(
            ScenarioDef::new("early_access", Trigger::Date { at: p.early_access_at.clone() })
                .describe("Loyal and repeat customers hear of the sale first", &["UC-19"])
                .audience(r#"segment "loyal""#)
                .step(StepDef::new("now", days(0), "{{ name }}さん、日頃のご愛顧に感謝して、{{ date }}からのセールに先行ご招待します。")),
        );
    }
    out
}

/// [`catalogue`] validated, with the `loyal` segment defined.
///
/// # Errors
/// [`ScenarioError`] when the parameters make a definition invalid (a bad product ID in a
/// condition, a bad `send_time`, ...).
pub fn catalogue_set(p: &CatalogueParams) -> Result<ScenarioSet, ScenarioError> {
    let mut segments = BTreeMap::new();
    segments.insert("loyal".to_owned(), p.loyal_segment.clone());
    ScenarioSet::new(&segments, catalogue(p))
}
