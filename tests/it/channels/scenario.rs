//! Scenario steps with channels: a step routed across LINE, e-mail and SMS (with the
//! unclicked-LINE rule), planned from a tick into the journal and sent through the fakes and
//! the SMTP server, one message per customer per step whichever channel, across a crash.

use std::sync::Arc;

use chrono::{Duration, Utc};
use enishi::campaign::scenario::{
    ScenarioDef, ScenarioError, ScenarioInput, ScenarioSet, ScenarioState, StepChannels, StepDef,
    Trigger,
};
use enishi::campaign::{BatchStatus, DeliveryPolicy, Transport};
use enishi::channel::{
    ChannelExclusion, ChannelKind, ChannelPlanner, LineEngagement, Purpose, Reach,
};
use enishi::segment::{CustomerFacts, Friendship, LineStatus, OrderFact, OrderKind};
use enishi::testkit::{self, FakeUser};
use enishi::{CampaignId, CustomerId, LineUserId};

use super::harness::{Rig, customer, rig};

fn thanks_scenario() -> ScenarioSet {
    let step = StepDef::new(
        "thanks",
        "1d".parse().unwrap(),
        "{{ name }}さん、ご購入ありがとうございました",
    )
    .channels(
        StepChannels::new(Purpose::Marketing)
            .email_after_unclicked(2, 30)
            .email_subject("ご購入ありがとうございました")
            .sms("ご購入ありがとうございました https://shop.example/r"),
    );
    let def = ScenarioDef::new(
        "thanks",
        Trigger::OrderPlaced { products: vec![], kind: None, nth: None, latest_only: false },
    )
    .step(step)
    // A LINE-only step: never offered to customers LINE cannot reach.
    .step(StepDef::new("line_only", "1d".parse().unwrap(), "LINEだけのお知らせ"));
    ScenarioSet::new(&Default::default(), vec![def]).unwrap()
}

/// Who is who: 1 follows; 2 follows but ignores LINE; 3 blocked, e-mail; 4 unlinked, phone
/// only; 5 unlinked, nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Follows,
    IgnoresLine,
    Blocked,
    PhoneOnly,
    Nothing,
}

const PEOPLE: [(u64, Who); 5] = [
    (1, Who::Follows),
    (2, Who::IgnoresLine),
    (3, Who::Blocked),
    (4, Who::PhoneOnly),
    (5, Who::Nothing),
];

fn facts(id: &CustomerId, who: Who, ordered: chrono::DateTime<Utc>) -> CustomerFacts {
    let mut f = CustomerFacts::new(id.clone());
    let linked = matches!(who, Who::Follows | Who::IgnoresLine | Who::Blocked);
    f.line = LineStatus {
        linked,
        linked_at: linked.then_some(ordered - Duration::days(100)),
        friendship: if who == Who::Blocked { Friendship::Blocked } else { Friendship::Following },
    };
    f.orders.push(OrderFact {
        id: format!("O-{id}"),
        placed_at: ordered,
        amount: 5000,
        kind: OrderKind::OneOff,
        items: vec![],
    });
    f
}

/// The scenario state, the contacts and the engagement for the five people.
async fn setup(rig: &Rig, ordered: chrono::DateTime<Utc>) -> (ScenarioState, LineEngagement) {
    let mut state = ScenarioState::new(thanks_scenario(), ordered - Duration::hours(1));
    let mut engagement = LineEngagement::new();
    for (n, who) in PEOPLE {
        let c = customer(n);
        let user = LineUserId::new(testkit::user_id(n)).unwrap();
        let mut reach = Reach::new(c.clone());
        let mut line_user = None;
        match who {
            Who::Follows | Who::IgnoresLine => {
                rig.line.add_user(FakeUser::new(user.as_str())).unwrap();
                reach = reach.line(user.clone(), true).email(format!("c{n}@mail.example"), true);
                line_user = Some(user.clone());
            }
            Who::Blocked => {
                rig.line.add_user(FakeUser::new(user.as_str())).unwrap();
                rig.line.set_blocked(user.as_str(), true).unwrap();
                reach = reach.line(user.clone(), false).email(format!("c{n}@mail.example"), true);
                line_user = Some(user.clone());
            }
            Who::PhoneOnly => reach = reach.phone(format!("090-7777-000{n}"), true),
            Who::Nothing => {}
        }
        if who == Who::IgnoresLine {
            // Two LINE messages in the last month, no click since.
            engagement.line_send(&c, ordered - Duration::days(20));
            engagement.line_send(&c, ordered - Duration::days(10));
        }
        rig.contacts.put(reach);
        state
            .apply(ScenarioInput::Customer { facts: Box::new(facts(&c, who, ordered)), line_user })
            .unwrap();
    }
    (state, engagement)
}

#[tokio::test]
async fn channel_scenario_step_routes_each_customer_once_across_a_crash() {
    let rig = rig().await;
    let ordered = Utc::now() - Duration::days(1) - Duration::hours(1);
    let (mut state, engagement) = setup(&rig, ordered).await;
    let now = Utc::now();
    let tick = state.tick(now);
    // The LINE-only step goes to the two following customers as plain push batches; the
    // routed step to all five (routing decides who is reachable).
    assert_eq!(tick.batches.len(), 2, "{:?}", tick.batches);
    assert!(tick.batches.iter().all(|b| b.id.as_str().starts_with("thanks/line_only/")));
    assert_eq!(tick.routed.len(), 5);
    let planner = ChannelPlanner::new(Arc::clone(&rig.journal), DeliveryPolicy::new())
        .opt_outs(rig.opt_outs.clone())
        .engagement(engagement.clone());
    let plan = planner.plan_scenario(&tick.routed, rig.contacts.as_ref(), now).await.unwrap();
    let routed = |n: u64| plan.routed.iter().find(|(c, _)| *c == customer(n)).map(|(_, k)| *k);
    assert_eq!(routed(1), Some(ChannelKind::Line));
    assert_eq!(routed(2), Some(ChannelKind::Email), "ignores LINE: e-mail first");
    assert_eq!(routed(3), Some(ChannelKind::Email));
    assert_eq!(routed(4), Some(ChannelKind::Sms));
    assert_eq!(routed(5), None);
    assert!(
        matches!(plan.excluded[..], [(ref c, ChannelExclusion::Unreachable(_))] if *c == customer(5))
    );
    // The batch keeps the tick's ID (one per customer per step) and the scenario's unit.
    let line_batch = plan.batches.iter().find(|b| b.transport == Transport::Push).unwrap();
    assert_eq!(line_batch.id, tick.routed[0].batch.id);
    assert_eq!(line_batch.aggregation_unit.as_ref().map(|u| u.as_str()), Some("thanks"));

    // A second worker ticking the same facts plans the same IDs: nothing is written twice.
    let (mut other, _) = (ScenarioState::new(thanks_scenario(), ordered - Duration::hours(1)), ());
    for (n, who) in PEOPLE {
        let line_user = matches!(who, Who::Follows | Who::IgnoresLine | Who::Blocked)
            .then(|| LineUserId::new(testkit::user_id(n)).unwrap());
        other
            .apply(ScenarioInput::Customer {
                facts: Box::new(facts(&customer(n), who, ordered)),
                line_user,
            })
            .unwrap();
    }
    let again =
        planner.plan_scenario(&other.tick(now).routed, rig.contacts.as_ref(), now).await.unwrap();
    assert!(again.batches.is_empty());
    assert_eq!(
        again.excluded.iter().filter(|(_, e)| *e == ChannelExclusion::AlreadyPlanned).count(),
        4
    );

    let campaign = CampaignId::new("scenario.thanks").unwrap();
    let first = rig.dispatcher("w1").crash_after(2).build().unwrap().run(&campaign).await.unwrap();
    assert!(first.crashed);
    rig.dispatcher("w2").build().unwrap().run(&campaign).await.unwrap();

    // The providers' records: exactly one message each, on the routed channel.
    let pushes: Vec<String> = rig.line.deliveries().into_iter().map(|d| d.to).collect();
    assert_eq!(pushes, [testkit::user_id(1)]);
    let mut mail: Vec<String> = rig.smtp.messages().into_iter().flat_map(|m| m.rcpt_tos).collect();
    mail.sort();
    assert_eq!(mail, ["c2@mail.example", "c3@mail.example"]);
    let sms = rig.sms.messages();
    assert_eq!((sms.len(), sms[0].to.as_str()), (1, "+819077770004"));
    assert!(sms[0].body.contains("ご購入ありがとうございました"), "{:?}", sms[0].body);
    let subjects: Vec<String> = rig.smtp.messages().into_iter().map(|m| m.subject).collect();
    assert!(subjects.iter().all(|s| s == "ご購入ありがとうございました"), "{subjects:?}");
    let records = rig.journal.records(&campaign).await.unwrap();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r.status == BatchStatus::Sent));

    // A later tick of the first state offers the step to nobody again.
    let later = state.tick(now + Duration::days(1));
    assert!(later.routed.is_empty() && later.batches.is_empty());
}

#[test]
fn channel_scenario_step_channels_load_and_are_checked() {
    let json = r#"{ "scenario": [ { "name": "shipped", "trigger": { "type": "order_placed" },
        "steps": [ { "name": "notice", "delay": "0s", "message": "発送しました",
          "channels": { "purpose": "transactional", "order": ["line", "pnp", "sms", "email"],
                        "email_subject": "発送のお知らせ", "sms": "発送しました" } } ] } ] }"#;
    let set = ScenarioSet::from_json(json).unwrap();
    let ch = set.scenarios()[0].definition().steps[0].channels.clone().unwrap();
    assert_eq!(ch.purpose, Purpose::Transactional);
    assert_eq!(
        ch.order,
        [ChannelKind::Line, ChannelKind::Pnp, ChannelKind::Sms, ChannelKind::Email]
    );

    let marketing_pnp = json.replace("\"transactional\"", "\"marketing\"");
    let err = ScenarioSet::from_json(&marketing_pnp).unwrap_err();
    assert!(matches!(err, ScenarioError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("transactional steps only"), "{err}");
    let bad_var = json.replace("発送のお知らせ", "{{ nonsense }}");
    assert!(matches!(
        ScenarioSet::from_json(&bad_var).unwrap_err(),
        ScenarioError::MissingVariable { .. }
    ));
    let unknown = json.replace("\"pnp\"", "\"fax\"");
    assert!(ScenarioSet::from_json(&unknown).is_err());
}

/// The app sends LINE only, so it refuses a scenario set with a routed step when it is built,
/// naming the scenario and the step, instead of passing over the step at run time.
#[tokio::test]
async fn channel_scenario_step_with_channels_is_refused_by_the_app() {
    use enishi::app::{AppError, Enishi};
    let line = enishi::line::LineClient::builder().channel_access_token("token").build().unwrap();
    let err = Enishi::builder()
        .line(line.clone())
        .storage(enishi::storage::Storage::in_memory())
        .scenarios(thanks_scenario())
        .build()
        .unwrap_err();
    match err {
        AppError::Config(message) => {
            assert!(message.contains("channels"), "{message}");
            assert!(message.contains("plan_scenario"), "{message}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    let plain = r#"{ "scenario": [ { "name": "thanks", "trigger": { "type": "order_placed" },
        "steps": [ { "name": "notice", "delay": "0s", "message": "ありがとうございます" } ] } ] }"#;
    Enishi::builder()
        .line(line)
        .storage(enishi::storage::Storage::in_memory())
        .scenarios(ScenarioSet::from_json(plain).unwrap())
        .build()
        .expect("a set without channels builds");
}
