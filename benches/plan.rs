//! Criterion benchmarks of campaign planning on 100,000 candidates (identical content by
//! multicast, personalised content by push). The 1,000,000-recipient figures come from
//! `examples/plan_bench.rs`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone as _, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use enishi::campaign::{
    Arm, Campaign, Contact, DeliveryPolicy, Holdout, MessageTemplate, Planner, SendHistory,
    SendRecord, Vars,
};
use enishi::{CampaignId, CustomerId, LineUserId};

const N: usize = 100_000;

fn bench(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 3, 0, 0).unwrap();
    let mut records = Vec::new();
    let contacts: Vec<Contact> = (0..N)
        .map(|i| {
            let user = LineUserId::new(format!("U{i:032x}")).unwrap();
            if i % 10 == 0 {
                for days in [1, 2] {
                    records.push(SendRecord {
                        line_user: user.clone(),
                        campaign: CampaignId::new("earlier").unwrap(),
                        at: now - TimeDelta::days(days),
                    });
                }
            }
            Contact::reachable(CustomerId::new(format!("c-{i:08}")).unwrap(), user)
                .with_vars(Vars::new().with("name", format!("顧客{i}")).with("gap", i % 50 * 100))
        })
        .collect();
    let history = SendHistory::from_records(&records);
    let policy = DeliveryPolicy::recommended().with_holdout(Holdout::percent("global", 5));
    let planner = Planner::new(&policy).with_history(&history);
    let identical = Campaign::ab(
        CampaignId::new("identical").unwrap(),
        [
            Arm::new("a", 1, [MessageTemplate::text("セール開催中").unwrap()]),
            Arm::new("b", 1, [MessageTemplate::text("本日限定").unwrap()]),
        ],
    );
    let personalised = Campaign::new(
        CampaignId::new("personalised").unwrap(),
        [MessageTemplate::text("{{ name | お客様 }}さん、あと{{ gap }}円でランクアップ").unwrap()],
    );

    let mut g = c.benchmark_group("plan_100k");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("identical_multicast", |b| {
        b.iter(|| planner.plan(black_box(&identical), &contacts, now).unwrap())
    });
    g.bench_function("personalised_push", |b| {
        b.iter(|| planner.plan(black_box(&personalised), &contacts, now).unwrap())
    });
    g.finish();

    let template =
        MessageTemplate::text("{{ name | お客様 }}さん、あと{{ gap }}円でランクアップ").unwrap();
    let vars = Vars::new().with("name", "花子").with("gap", 2000);
    c.bench_function("render_text", |b| b.iter(|| template.render(black_box(&vars)).unwrap()));
    c.bench_function("send_history_index_200k", |b| {
        b.iter(|| SendHistory::from_records(black_box(&records[..])))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
