use chrono::{TimeDelta, TimeZone as _};

use super::*;
use crate::campaign::{Holdout, SendRecord};

/// A bench-like audience: not linked, blocked, no consent, capped, shared LINE users and
/// missing names.
fn audience(n: usize, now: DateTime<Utc>) -> (Vec<Contact>, SendHistory) {
    let user = |i: usize| LineUserId::new(format!("U{i:032x}")).unwrap();
    let mut contacts = Vec::new();
    let mut records = Vec::new();
    for i in 0..n {
        let line_user = if i % 97 == 1 { user(i - 1) } else { user(i) };
        let mut c = Contact::reachable(CustomerId::new(format!("c-{i:08}")).unwrap(), line_user)
            .with_var("gap", i % 50);
        if i % 13 != 0 {
            c = c.with_var("name", format!("顧客{i}"));
        }
        match i % 100 {
            0..=4 => c.line_user = None,
            5..=6 => c.following = false,
            7..=9 => c.consent = false,
            _ => {}
        }
        if i % 10 == 0 {
            for days in [1, 2] {
                records.push(SendRecord {
                    line_user: user(i),
                    campaign: CampaignId::new("earlier").unwrap(),
                    at: now - TimeDelta::days(days),
                });
            }
        }
        contacts.push(c);
    }
    (contacts, SendHistory::from_records(&records))
}

fn json(plan: &Plan) -> String {
    let mut out = serde_json::to_string(&plan.batches).unwrap();
    out.push_str(&serde_json::to_string(plan.dry_run()).unwrap());
    out
}

#[test]
fn two_threads_plan_what_one_plans() {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap();
    let (contacts, history) = audience(3_000, now);
    let text = |s: &str| MessageTemplate::text(s).unwrap();
    let mixed = Campaign::ab(
        CampaignId::new("mixed").unwrap(),
        [
            Arm::new("static", 2, [text("セール {{ coupon }}")]),
            Arm::new("push", 1, [text("{{ name }}さん あと{{ gap }}円")]),
        ],
    )
    .with_var("coupon", "W10")
    .with_aggregation_unit(AggregationUnit::new("unit").unwrap())
    .on_render_error(OnRenderError::Exclude);
    let identical = Campaign::new(CampaignId::new("same").unwrap(), [text("お知らせ")]);
    // Push only: rendered and made in one pass; names missing in both halves renumber the
    // second half's batches.
    let personal = Campaign::ab(
        CampaignId::new("personal").unwrap(),
        [
            Arm::new("x", 1, [text("{{ name }}さん あと{{ gap }}円")]),
            Arm::new("y", 2, [text("{{ name | お客様 }} {{ gap }}")]),
        ],
    )
    .with_aggregation_unit(AggregationUnit::new("unit").unwrap())
    .on_render_error(OnRenderError::Exclude);
    let failing = Campaign::new(CampaignId::new("fail").unwrap(), [text("{{ name }}")]);
    let policy = DeliveryPolicy::recommended().with_holdout(Holdout::percent("h", 5));
    let planner = Planner::new(&policy).with_history(&history);
    for campaign in [&mixed, &identical, &personal] {
        let one = planner.parallel_from(usize::MAX).plan(campaign, &contacts, now).unwrap();
        for from in [1, 100] {
            let two = planner.parallel_from(from).plan(campaign, &contacts, now).unwrap();
            assert_eq!(json(&one), json(&two), "{} from {from}", campaign.id());
        }
    }
    // The gaps left by missing names are closed: numbers run on, keys follow the IDs.
    let plan = planner.parallel_from(1).plan(&personal, &contacts, now).unwrap();
    let missing = plan.dry_run().excluded.get(&ExclusionReason::MissingVariable);
    assert!(missing.is_some_and(|n| *n > 10), "{:?}", plan.dry_run().excluded);
    assert_eq!(plan.dry_run().recipients, plan.batches.len() as u64);
    for (k, batch) in plan.batches.iter().enumerate() {
        assert_eq!(batch.id.as_str(), format!("personal#{:07}", k + 1));
        assert_eq!(batch.retry_key, RetryKey::derive(batch.id.as_str()));
        assert_eq!(batch.recipients.len(), 1);
    }
    let one = planner.parallel_from(usize::MAX).plan(&failing, &contacts, now).unwrap_err();
    let two = planner.parallel_from(1).plan(&failing, &contacts, now).unwrap_err();
    assert_eq!(one.to_string(), two.to_string());
}
