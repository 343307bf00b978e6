//! Routing by purpose and reachability: pure decisions.

use chrono::{TimeDelta, Utc};
use enishi::channel::{Address, ChannelKind, LineEngagement, Purpose, Reach, Route, Routing, Skip};
use enishi::{CustomerId, LineUserId};

fn reach(id: &str) -> Reach {
    Reach::new(CustomerId::new(id).unwrap())
}

fn user() -> LineUserId {
    LineUserId::new(format!("U{}", "a".repeat(32))).unwrap()
}

fn route(purpose: Purpose, r: &Reach) -> Route {
    Routing::for_purpose(purpose).route(
        purpose,
        r,
        &LineEngagement::new(),
        Utc::now(),
        &|_| true,
        &|_| false,
    )
}

fn channel(route: &Route) -> Option<ChannelKind> {
    match route {
        Route::Send { channel, .. } => Some(*channel),
        _ => None,
    }
}

#[test]
fn marketing_goes_line_then_email_with_consent_then_sms_with_consent() {
    let following = reach("a").line(user(), true).email("a@x.example", true);
    assert_eq!(channel(&route(Purpose::Marketing, &following)), Some(ChannelKind::Line));
    let blocked =
        reach("b").line(user(), false).email("b@x.example", true).phone("09011112222", true);
    assert_eq!(channel(&route(Purpose::Marketing, &blocked)), Some(ChannelKind::Email));
    let no_consent = reach("c").email("c@x.example", false).phone("09011112222", true);
    assert_eq!(channel(&route(Purpose::Marketing, &no_consent)), Some(ChannelKind::Sms));
    let nothing = reach("d").email("d@x.example", false).phone("09011112222", false);
    let Route::Unreachable(why) = route(Purpose::Marketing, &nothing) else { panic!() };
    assert_eq!(
        why,
        vec![
            (ChannelKind::Line, Skip::NotLinked),
            (ChannelKind::Email, Skip::NoConsent),
            (ChannelKind::Sms, Skip::NoConsent)
        ]
    );
}

#[test]
fn transactional_goes_line_then_pnp_then_email_then_sms_without_consent() {
    let blocked =
        reach("b").line(user(), false).email("b@x.example", false).phone("090-1111-2222", false);
    let r = route(Purpose::Transactional, &blocked);
    let Route::Send { channel: pnp, address: Address::Phone(p) } = r else { panic!("{r:?}") };
    assert_eq!((pnp, p.as_str()), (ChannelKind::Pnp, "+819011112222"));
    let email_only = reach("e").email("e@x.example", false);
    assert_eq!(channel(&route(Purpose::Transactional, &email_only)), Some(ChannelKind::Email));
    // Without PNP in the order (a step that sets it), a phone gets SMS.
    let sms = Routing::for_purpose(Purpose::Transactional)
        .order(vec![ChannelKind::Line, ChannelKind::Sms])
        .route(
            Purpose::Transactional,
            &blocked,
            &LineEngagement::new(),
            Utc::now(),
            &|_| true,
            &|_| false,
        );
    assert_eq!(channel(&sms), Some(ChannelKind::Sms));
}

#[test]
fn notification_messages_are_never_used_for_marketing() {
    let r = reach("p").phone("09011112222", false);
    let routing = Routing::for_purpose(Purpose::Marketing).order(vec![ChannelKind::Pnp]);
    let got = routing.route(
        Purpose::Marketing,
        &r,
        &LineEngagement::new(),
        Utc::now(),
        &|_| true,
        &|_| false,
    );
    assert_eq!(got, Route::Unreachable(vec![(ChannelKind::Pnp, Skip::TransactionalOnly)]));
}

#[test]
fn the_shops_mail_delivery_stop_and_opt_outs_are_honoured() {
    let stopped = reach("s").email("s@x.example", true).email_stopped(true);
    let Route::Unreachable(why) = route(Purpose::Marketing, &stopped) else { panic!() };
    assert!(why.contains(&(ChannelKind::Email, Skip::ShopStopped)), "{why:?}");
    // A transactional notice is not marketing: the shop's stop does not apply.
    assert_eq!(channel(&route(Purpose::Transactional, &stopped)), Some(ChannelKind::Email));
    // An unsubscribed channel is never used, whatever the purpose.
    let r = reach("o").email("o@x.example", true).phone("09011112222", true);
    let got = Routing::for_purpose(Purpose::Marketing).route(
        Purpose::Marketing,
        &r,
        &LineEngagement::new(),
        Utc::now(),
        &|_| true,
        &|c| c == ChannelKind::Email,
    );
    assert_eq!(channel(&got), Some(ChannelKind::Sms));
}

#[test]
fn invalid_addresses_are_excluded_with_a_reason() {
    let r = reach("i").email("taro@@example", true).phone("12-34", true);
    let Route::Unreachable(why) = route(Purpose::Transactional, &r) else { panic!() };
    let reasons: Vec<String> = why
        .iter()
        .filter_map(|(_, s)| match s {
            Skip::InvalidAddress(text) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 3, "{why:?}");
    assert!(reasons.iter().any(|t| t.contains("phone number")), "{reasons:?}");
    assert!(reasons.iter().any(|t| t.contains("e-mail address")), "{reasons:?}");
}

#[test]
fn no_click_on_the_last_line_messages_moves_email_first() {
    let now = Utc::now();
    let r = reach("u").line(user(), true).email("u@x.example", true);
    let routing = Routing::for_purpose(Purpose::Marketing).email_after_unclicked(3, 14);
    let mut e = LineEngagement::new();
    for d in [1, 3, 5] {
        e.line_send(&r.customer, now - TimeDelta::days(d));
    }
    let got = routing.route(Purpose::Marketing, &r, &e, now, &|_| true, &|_| false);
    assert_eq!(channel(&got), Some(ChannelKind::Email));
    // A click after the earliest of the last three keeps LINE.
    let mut clicked = e.clone();
    clicked.click(&r.customer, now - TimeDelta::days(2));
    let got = routing.route(Purpose::Marketing, &r, &clicked, now, &|_| true, &|_| false);
    assert_eq!(channel(&got), Some(ChannelKind::Line));
    // Two messages in the window are not enough to judge.
    let mut few = LineEngagement::new();
    few.line_send(&r.customer, now - TimeDelta::days(1));
    few.line_send(&r.customer, now - TimeDelta::days(20));
    few.line_send(&r.customer, now - TimeDelta::days(30));
    let got = routing.route(Purpose::Marketing, &r, &few, now, &|_| true, &|_| false);
    assert_eq!(channel(&got), Some(ChannelKind::Line));
    // Without an e-mail route the customer keeps LINE.
    let no_email = reach("u").line(user(), true);
    let got = routing.route(Purpose::Marketing, &no_email, &e, now, &|_| true, &|_| false);
    assert_eq!(channel(&got), Some(ChannelKind::Line));
}

#[test]
fn a_channel_without_content_in_the_step_is_skipped() {
    let r = reach("n").line(user(), true).email("n@x.example", true);
    let got = Routing::for_purpose(Purpose::Marketing).route(
        Purpose::Marketing,
        &r,
        &LineEngagement::new(),
        Utc::now(),
        &|c| c != ChannelKind::Line,
        &|_| false,
    );
    assert_eq!(channel(&got), Some(ChannelKind::Email));
}
