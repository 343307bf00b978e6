//! Plans a campaign for N candidates (default 1,000,000), once with identical content
//! (multicast) and once personalised (push), and prints the time each plan took.
//!
//! ```sh
//! cargo run --release --all-features --example plan_bench -- --recipients 1000000
//! ```
//!
//! Each kind is planned several times (default 5) and the best run is the figure: on a shared
//! machine the other runs measure the neighbours too. The median is printed beside it.
//!
//! The last line is machine-readable:
//! `plan_identical_ms=<f> plan_personalised_ms=<f> recipients=<n> plan_identical_median_ms=<f>
//! plan_personalised_median_ms=<f>`.

#[path = "support/report.rs"]
mod report;

use std::time::Instant;

use chrono::{TimeDelta, TimeZone as _, Utc};
use clap::Parser;
use enishi::campaign::{
    Arm, Campaign, Contact, DeliveryPolicy, Holdout, MessageTemplate, Planner, SendHistory,
    SendRecord,
};
use enishi::{CampaignId, CustomerId, LineUserId};

/// Campaign planning benchmark: identical (multicast) and personalised (push) content.
#[derive(Debug, Parser)]
#[command(name = "plan_bench", version)]
struct Args {
    /// Candidates to plan for.
    #[arg(long, default_value_t = 1_000_000)]
    recipients: usize,
    /// Planning runs per content kind (the best is reported, the median beside it).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn main() -> std::process::ExitCode {
    report::exit(run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let n = args.recipients;
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 3, 0, 0).single().ok_or("bad date")?;

    // A realistic audience: 5 % not linked, 2 % blocked, 3 % without consent.
    let mut contacts = Vec::with_capacity(n);
    let mut records = Vec::new();
    for i in 0..n {
        let customer = CustomerId::new(format!("c-{i:08}"))?;
        let user = LineUserId::new(format!("U{i:032x}"))?;
        let mut contact = Contact::reachable(customer, user.clone())
            .with_var("name", format!("顧客{i}"))
            .with_var("rank_gap_yen", (i % 50) * 100);
        match i % 100 {
            0..=4 => contact.line_user = None,
            5..=6 => contact.following = false,
            7..=9 => contact.consent = false,
            _ => {}
        }
        if i % 10 == 0 {
            // 10 % were messaged twice this week: capped.
            let campaign = CampaignId::new("earlier")?;
            for days in [1, 2] {
                let at = now - TimeDelta::days(days);
                records.push(SendRecord {
                    line_user: user.clone(),
                    campaign: campaign.clone(),
                    at,
                });
            }
        }
        contacts.push(contact);
    }
    let history = SendHistory::from_records(&records);
    let policy = DeliveryPolicy::recommended().with_holdout(Holdout::percent("global-2026", 5));
    let planner = Planner::new(&policy).with_history(&history);

    let identical = Campaign::ab(
        CampaignId::new("bench-identical")?,
        [
            Arm::new("a", 1, [MessageTemplate::text("冬のセール開催中！クーポン {{ coupon }}")?]),
            Arm::new("b", 1, [MessageTemplate::text("本日限定 {{ coupon }} で10%オフ")?]),
        ],
    )
    .with_var("coupon", "WINTER10");
    let personalised = Campaign::new(
        CampaignId::new("bench-personalised")?,
        [MessageTemplate::text(
            "{{ name | お客様 }}さん、次のランクまであと{{ rank_gap_yen }}円です。クーポン {{ coupon }}",
        )?],
    )
    .with_var("coupon", "RANKUP");

    // Wall-clock time (best of the runs) and the process's CPU time (all threads: planning
    // splits large audiences over the cores), which a machine shared with other work inflates
    // less.
    let mut times: [Vec<f64>; 2] = Default::default();
    let mut best_cpu = [f64::INFINITY; 2];
    for (k, campaign) in [&identical, &personalised].into_iter().enumerate() {
        for run in 0..args.runs.max(1) {
            let started = Instant::now();
            let cpu = cpu_time::ProcessTime::now();
            let plan = planner.plan(campaign, &contacts, now)?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            times[k].push(ms);
            best_cpu[k] = best_cpu[k].min(cpu.elapsed().as_secs_f64() * 1e3);
            if run == 0 {
                println!("{}", plan.dry_run());
            }
            // Freeing a million batches is not planning: keep it out of the next timing.
            drop(plan);
        }
    }
    println!(
        "plan_identical_cpu_ms={:.1} plan_personalised_cpu_ms={:.1}",
        best_cpu[0], best_cpu[1]
    );
    let [best, median] = [0.0, 0.5].map(|q| times.clone().map(|t| quantile(t, q)));
    println!(
        "plan_identical_ms={:.1} plan_personalised_ms={:.1} recipients={n} \
         plan_identical_median_ms={:.1} plan_personalised_median_ms={:.1}",
        best[0], best[1], median[0], median[1]
    );
    Ok(())
}

/// The `q` quantile of `times` (0 the least, 0.5 the median).
fn quantile(mut times: Vec<f64>, q: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    let at = ((times.len().saturating_sub(1)) as f64 * q).round() as usize;
    times.get(at).copied().unwrap_or(f64::NAN)
}
