//! Offer experiments: the sequential test's error rates on simulated experiments (pure,
//! seeded) and the roll-out of the winner to the rest of the audience against `FakeLine`.

use enishi::campaign::{SequentialTest, Simulation, Tally, simulate};

/// 1,000 A/A experiments, each checked after every pair of customers up to 2,000 per arm:
/// the test calls at most 5 % of them different.
#[test]
fn experiment_null_false_positive_rate_is_at_most_5_percent_under_continuous_monitoring() {
    let result = simulate(&Simulation::new(1000, 2000, 0.05, 0.05).seed(20261203));
    assert_eq!(result.experiments, 1000);
    println!("null: {result:?}");
    assert!(result.rejection_rate() <= 0.05, "false-positive rate {}", result.rejection_rate());
    // The same seed gives the same figures (a pure function).
    assert_eq!(simulate(&Simulation::new(1000, 2000, 0.05, 0.05).seed(20261203)), result);
}

/// The same at another base rate and level, so the bound is not an accident of one setting.
#[test]
fn experiment_null_false_positive_rate_holds_at_other_rates() {
    let test = SequentialTest::new(0.05, 0.05).unwrap();
    let result = simulate(&Simulation::new(1000, 1000, 0.2, 0.2).seed(7).test(test));
    println!("null at 20 %: {result:?}");
    assert!(result.rejection_rate() <= 0.05, "false-positive rate {}", result.rejection_rate());
}

/// A planted effect (8 % vs 5 %) is found in most experiments, always in the right direction.
#[test]
fn experiment_planted_effect_is_found() {
    let result = simulate(&Simulation::new(300, 4000, 0.08, 0.05).seed(99));
    println!("planted: {result:?}");
    assert!(result.rejection_rate() >= 0.9, "power {}", result.rejection_rate());
    assert_eq!(result.a_better, result.rejections, "the better arm is always A");
    assert!(result.mean_stop_per_arm < 4000.0);
}

#[test]
fn experiment_confidence_sequence_covers_the_difference() {
    let test = SequentialTest::default();
    let c = test.compare(Tally::new(5000, 500), Tally::new(5000, 400));
    let (lo, hi) = c.interval.unwrap();
    assert!(lo < 0.02 && 0.02 < hi, "({lo}, {hi})");
    assert!(lo > 0.0, "the interval excludes 0 once significant: ({lo}, {hi}) {c:?}");
    assert!(c.significant);
}

#[cfg(all(feature = "client", feature = "testkit"))]
mod rollout {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::Utc;
    use enishi::campaign::{
        Arm, Campaign, Contact, DeliveryJournal, DeliveryPolicy, Dispatcher, ExperimentCounts,
        ExperimentStatus, Holdout, MemoryJournal, MessageTemplate, OfferExperiment, Planner,
        PurchaseFact, RunStatus, SendFact, salted_hash,
    };
    use enishi::line::{LineClient, RetryPolicy};
    use enishi::testkit::{self, FakeLine};
    use enishi::{CampaignId, CustomerId, LineUserId};

    const OFFER_A: &str = "今だけ10%オフ";
    const OFFER_B: &str = "今だけ送料無料";

    fn client(line: &FakeLine) -> LineClient {
        LineClient::builder()
            .channel_access_token(line.channel_access_token())
            .base_url(line.api_base_url())
            .data_base_url(line.data_base_url())
            .retry_policy(
                RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(5)),
            )
            .build()
            .unwrap()
    }

    async fn dispatch(line: &FakeLine, journal: &Arc<dyn DeliveryJournal>, campaign: &CampaignId) {
        let d = Dispatcher::builder(client(line), Arc::clone(journal))
            .concurrency(8)
            .poll_interval(Duration::from_millis(10))
            .build()
            .unwrap();
        let report = d.run(campaign).await.unwrap();
        assert_eq!(report.status, RunStatus::Completed, "{report}");
    }

    /// Orders: a customer converts with 25 % under offer B and 5 % otherwise (a stable hash).
    fn orders(sends: &[SendFact]) -> Vec<PurchaseFact> {
        sends
            .iter()
            .filter(|s| {
                let rate = if s.arm.as_deref() == Some("b") { 25 } else { 5 };
                salted_hash("orders", s.customer.as_str()) % 100 < rate
            })
            .map(|s| PurchaseFact::new(s.customer.clone(), s.at + chrono::Duration::hours(2), 3000))
            .collect()
    }

    #[tokio::test]
    async fn experiment_winner_rolls_out_to_the_rest_against_fakeline() {
        let n = 3000u64;
        let line = FakeLine::builder().friends((0..n).map(testkit::user_id)).start().await.unwrap();
        let contacts: Vec<Contact> = (0..n)
            .map(|i| {
                Contact::reachable(
                    CustomerId::new(format!("c-{i:05}")).unwrap(),
                    LineUserId::new(testkit::user_id(i)).unwrap(),
                )
            })
            .collect();
        let campaign = Campaign::ab(
            CampaignId::new("offer-test").unwrap(),
            [
                Arm::new("a", 1, [MessageTemplate::text(OFFER_A).unwrap()]),
                Arm::new("b", 1, [MessageTemplate::text(OFFER_B).unwrap()]),
            ],
        );
        let experiment = OfferExperiment::new(campaign).test_share_percent(30);
        let policy = DeliveryPolicy::new().with_holdout(Holdout::percent("offer-holdout", 10));
        let planner = Planner::new(&policy);
        let journal: Arc<dyn DeliveryJournal> = Arc::new(MemoryJournal::new());
        let id = experiment.campaign().id().clone();
        let now = Utc::now();

        let plan = experiment.plan_test(&planner, &contacts, now).unwrap();
        journal.enqueue(&plan.batches).await.unwrap();
        dispatch(&line, &journal, &id).await;
        let tested = line.delivery_count();

        let mut sends = SendFact::from_records(&journal.records(&id).await.unwrap());
        sends.extend(experiment.holdout_facts(&policy, &contacts, now));
        let window = chrono::Duration::days(7);

        // Too early: with the first 40 customers the test has not decided and nothing rolls out.
        let early = ExperimentCounts::from_facts(&id, &sends[..40], &orders(&sends[..40]), window);
        let status =
            experiment.advance(&planner, &contacts, journal.as_ref(), &early, now).await.unwrap();
        assert!(
            matches!(status, ExperimentStatus::Running(ref v) if v.winner.is_none()),
            "{status:?}"
        );
        assert_eq!(line.delivery_count(), tested);

        let counts = ExperimentCounts::from_facts(&id, &sends, &orders(&sends), window);
        assert!(counts.holdout.exposed > 0);
        let status =
            experiment.advance(&planner, &contacts, journal.as_ref(), &counts, now).await.unwrap();
        let ExperimentStatus::RolledOut { winner, rolled_out } = status else {
            panic!("no winner: {status:?} from {counts:?}")
        };
        assert_eq!(winner, "b");
        let rollout = experiment.rollout_id().unwrap();
        dispatch(&line, &journal, &rollout).await;

        // A second step (a restart) keeps the winner and plans nothing more.
        let again =
            experiment.advance(&planner, &contacts, journal.as_ref(), &counts, now).await.unwrap();
        assert_eq!(again, ExperimentStatus::RolledOut { winner: "b".into(), rolled_out });
        dispatch(&line, &journal, &rollout).await;

        // Per customer: test share → its arm once; the rest → offer B once; holdout → nothing.
        let holdout = Holdout::percent("offer-holdout", 10);
        let arm_of: HashMap<_, _> =
            sends.iter().filter_map(|s| Some((s.customer.clone(), s.arm.clone()?))).collect();
        let mut rest = 0;
        for (i, c) in contacts.iter().enumerate() {
            let texts: Vec<String> = line
                .messages_for(&testkit::user_id(i as u64))
                .iter()
                .filter_map(|m| m["text"].as_str().map(str::to_owned))
                .collect();
            let expected: Vec<&str> = if holdout.contains(&c.customer) {
                vec![]
            } else if experiment.in_test(&c.customer) {
                vec![if arm_of[&c.customer] == "a" { OFFER_A } else { OFFER_B }]
            } else {
                rest += 1;
                vec![OFFER_B]
            };
            assert_eq!(texts, expected, "customer {}", c.customer);
        }
        assert_eq!(rest, rolled_out);
        assert!(rest > 1500, "{rest}");
        assert!(line.duplicate_deliveries().is_empty());
    }
}
