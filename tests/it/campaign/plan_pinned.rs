//! Pins the planner's output byte for byte: the batches (IDs, retry keys, recipients, rendered
//! messages, arms, schedule) and the dry run, serialised, for a small mixed campaign in full and
//! for 20,000 bench-like contacts as a SHA-256 digest. The snapshots were taken from the planner
//! before its speed work; a change to any batch shows here.

use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use enishi::campaign::{
    Arm, Campaign, Contact, DeliveryPolicy, Holdout, MessageTemplate, OnRenderError, Plan, Planner,
    SendHistory, SendRecord,
};
use enishi::line::message::{Emoji, FlexContainer, Message, TextMessage};
use enishi::{AggregationUnit, CampaignId, CustomerId, LineUserId};
use sha2::Digest as _;

fn now() -> DateTime<Utc> {
    // 22:00 JST: inside the recommended quiet hours, so every batch is deferred.
    Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap()
}

fn user(n: usize) -> LineUserId {
    LineUserId::new(format!("U{n:032x}")).unwrap()
}

fn customer(n: usize) -> CustomerId {
    CustomerId::new(format!("c-{n:08}")).unwrap()
}

fn id(s: &str) -> CampaignId {
    CampaignId::new(s).unwrap()
}

fn text(s: &str) -> MessageTemplate {
    MessageTemplate::text(s).unwrap()
}

/// The bench's audience: 5 % not linked, 2 % blocked, 3 % without consent, 10 % capped; every
/// 97th contact shares the LINE user of the one before; some lack `name`.
fn audience(n: usize) -> (Vec<Contact>, SendHistory) {
    let mut contacts = Vec::with_capacity(n);
    let mut records = Vec::new();
    for i in 0..n {
        let line_user = if i % 97 == 1 { user(i - 1) } else { user(i) };
        let mut contact = Contact::reachable(customer(i), line_user.clone())
            .with_var("rank_gap_yen", (i % 50) * 100);
        if i % 13 != 0 {
            contact = contact.with_var("name", format!("顧客{i}"));
        }
        match i % 100 {
            0..=4 => contact.line_user = None,
            5..=6 => contact.following = false,
            7..=9 => contact.consent = false,
            _ => {}
        }
        if i % 10 == 0 {
            for days in [1, 2] {
                let at = now() - TimeDelta::days(days);
                records.push(SendRecord {
                    line_user: line_user.clone(),
                    campaign: id("earlier"),
                    at,
                });
            }
        }
        contacts.push(contact);
    }
    (contacts, SendHistory::from_records(&records))
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy::recommended().with_holdout(Holdout::percent("global-2026", 5))
}

fn planned(campaign: &Campaign, contacts: &[Contact], history: &SendHistory) -> Plan {
    Planner::new(&policy()).with_history(history).plan(campaign, contacts, now()).unwrap()
}

/// The plan as JSON lines: one per batch, then the dry run.
fn serialise(plan: &Plan) -> String {
    let mut out = String::new();
    for b in &plan.batches {
        out.push_str(&serde_json::to_string(b).unwrap());
        out.push('\n');
    }
    out.push_str(&serde_json::to_string(plan.dry_run()).unwrap());
    out.push('\n');
    out
}

fn digest(plan: &Plan) -> String {
    let hash = sha2::Sha256::digest(serialise(plan).as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A/B with a multicast arm, a personalised text arm with LINE emoji and a personalised Flex
/// arm; an aggregation unit; missing variables excluded; an exclusion list.
fn mixed() -> Campaign {
    let source = "{{ name | お客様 }}さん $ あと{{ rank_gap_yen }}円 {{ coupon }}";
    let dollar = source.encode_utf16().position(|u| u == u16::from(b'$')).unwrap();
    let emoji = TextMessage::new(source).with_emoji(Emoji::new(
        u32::try_from(dollar).unwrap(),
        "5ac1bfd5040ab15980c9b435",
        "001",
    ));
    let flex = Message::flex(
        "{{ name }}さんへのおすすめ",
        FlexContainer::raw(serde_json::json!({
            "type": "bubble",
            "body": {"type": "box", "layout": "vertical", "contents": [
                {"type": "text", "text": "{{ product | 人気商品 }}"},
                {"type": "text", "text": "クーポン {{ coupon }}"}
            ]}
        })),
    );
    Campaign::ab(
        id("pinned-mixed"),
        [
            Arm::new("static", 2, [text("冬のセール {{ coupon }}"), text("二通目")]),
            Arm::new("emoji", 1, [MessageTemplate::new(emoji).unwrap()]),
            Arm::new("flex", 1, [MessageTemplate::new(flex).unwrap(), text("{{ name }}様")]),
        ],
    )
    .with_var("coupon", "WINTER10")
    .with_aggregation_unit(AggregationUnit::new("winter_sale").unwrap())
    .exclude([customer(42), customer(43)])
    .on_render_error(OnRenderError::Exclude)
}

#[test]
fn plan_pinned_mixed_campaign_in_full() {
    let (contacts, history) = audience(1_300);
    let plan = planned(&mixed(), &contacts[..60], &history);
    insta::assert_snapshot!("plan_pinned_mixed_60", serialise(&plan));
    // Over 500 multicast recipients: chunking and batch numbering across arms.
    let plan = planned(&mixed(), &contacts, &history);
    insta::assert_snapshot!("plan_pinned_mixed_1300_digest", digest(&plan));
}

#[test]
fn plan_pinned_bench_campaigns_by_digest() {
    let (contacts, history) = audience(20_000);
    let identical = Campaign::ab(
        id("bench-identical"),
        [
            Arm::new("a", 1, [text("冬のセール開催中！クーポン {{ coupon }}")]),
            Arm::new("b", 1, [text("本日限定 {{ coupon }} で10%オフ")]),
        ],
    )
    .with_var("coupon", "WINTER10");
    let personalised = Campaign::new(
        id("bench-personalised"),
        [text("{{ name | お客様 }}さん、次のランクまであと{{ rank_gap_yen }}円です。クーポン {{ coupon }}")],
    )
    .with_var("coupon", "RANKUP");
    let single = Campaign::new(id("single-static"), [text("お知らせ")]);
    let out = [&identical, &personalised, &single]
        .map(|c| {
            let plan = planned(c, &contacts, &history);
            format!("{} {} {}", c.id(), plan.batches.len(), digest(&plan))
        })
        .join("\n");
    insta::assert_snapshot!("plan_pinned_bench_digests", out);
}
