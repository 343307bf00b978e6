//! Random segments and random customer data over a small shared vocabulary, so that random
//! leaves actually match random customers.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use enishi::CustomerId;
use enishi::segment::{
    AddOp, AttrTest, AttrValue, CmpOp, Condition, Context, CountTest, CustomerFacts, DateField,
    DateTest, Expr, Friendship, ItemChangeKind, ItemSource, LineItemFact, LineState, LineStatus,
    Measure, MessageEvent, MessageKind, OrderFact, OrderFilter, OrderKind, ProductStatus,
    SavedItem, Span, SubscriptionFact, SubscriptionState, SumTerm, Value, Window,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// The fixed `now` of generated data: 2025-06-15 12:00 in Tokyo.
pub(super) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-15T03:00:00Z").unwrap().to_utc()
}

pub(super) const PRODUCTS: &[&str] = &["p0", "p1", "p2", "p3", "p4"];
pub(super) const SKUS: &[&str] = &["s0", "s1", "s2"];
pub(super) const CATEGORIES: &[&str] = &["c0", "c1"];
pub(super) const CAMPAIGNS: &[&str] = &["spring", "summer"];
pub(super) const REASONS: &[&str] = &["price", "too_much"];
pub(super) const RANKS: &[&str] = &["bronze", "silver", "gold"];
pub(super) const LISTS: &[&str] = &["vip"];

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(options).prop_map(str::to_owned)
}

fn subset(options: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(options, 0..=2)
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

/// An instant near [`now`]: within about 400 days before and 30 days after, often on hour
/// boundaries (±1 s) so window edges are exercised.
pub(super) fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        // Whole days from `now` (03:00Z) or Tokyo midnights (15:00Z), ±1 s: window and
        // calendar boundaries are hit exactly.
        (-60i64..10, proptest::sample::select(vec![0i64, 12]), -1i64..=1)
            .prop_map(|(d, h, j)| now() + TimeDelta::seconds(d * 86_400 + h * 3600 + j)),
        (-400i64 * 24..30 * 24, -1i64..=1)
            .prop_map(|(h, j)| now() + TimeDelta::seconds(h * 3600 + j)),
        (-400i64 * 86_400..30 * 86_400).prop_map(|s| now() + TimeDelta::seconds(s)),
    ]
}

fn op() -> impl Strategy<Value = CmpOp> {
    proptest::sample::select(CmpOp::ALL.to_vec())
}

fn span() -> impl Strategy<Value = Span> {
    prop_oneof![
        (1i64..60).prop_map(|d| Span::days(d).unwrap()),
        (1i64..10).prop_map(|d| Span::days(d).unwrap()),
        (1i64..72).prop_map(|h| Span::hours(h).unwrap()),
        (1i64..100_000).prop_map(|s| Span::from_secs(s).unwrap()),
    ]
}

pub(super) fn window() -> impl Strategy<Value = Window> {
    prop_oneof![
        Just(Window::AllTime),
        span().prop_map(|span| Window::Last { span }),
        (1u32..60).prop_map(|days| Window::CalendarDays { days }),
        (instant(), 1i64..200 * 86_400)
            .prop_map(|(from, len)| Window::Between { from, to: from + TimeDelta::seconds(len) }),
    ]
}

pub(super) fn filter() -> impl Strategy<Value = OrderFilter> {
    (subset(PRODUCTS), subset(SKUS), subset(CATEGORIES), proptest::option::of(order_kind()))
        .prop_map(|(products, skus, categories, kind)| OrderFilter {
            products,
            skus,
            categories,
            kind,
        })
}

fn order_kind() -> impl Strategy<Value = OrderKind> {
    prop_oneof![Just(OrderKind::OneOff), Just(OrderKind::Subscription)]
}

fn date_test() -> impl Strategy<Value = DateTest> {
    prop_oneof![
        (op(), span()).prop_map(|(op, value)| DateTest::Age { op, value }),
        (op(), -40i32..60).prop_map(|(op, days)| DateTest::DaysAgo { op, days }),
        (instant(), 1i64..300 * 86_400)
            .prop_map(|(from, len)| DateTest::Between { from, to: from + TimeDelta::seconds(len) }),
        (1u32..=12).prop_map(|month| DateTest::MonthIs { month }),
        Just(DateTest::InCurrentMonth),
        Just(DateTest::AnniversaryToday),
    ]
}

fn date_field() -> impl Strategy<Value = DateField> {
    prop_oneof![
        Just(DateField::Registered),
        Just(DateField::Birthday),
        Just(DateField::LinkedAt),
        filter().prop_map(|filter| DateField::FirstOrder { filter }),
        filter().prop_map(|filter| DateField::LastOrder { filter }),
        Just(DateField::Attribute { name: "last_visit".into() }),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-5i64..3000).prop_map(Value::Int),
        pick(RANKS).prop_map(Value::Text),
        instant().prop_map(|time| Value::Time { time }),
    ]
}

fn attr_name() -> impl Strategy<Value = String> {
    pick(&["rank", "points", "opt_in", "labels", "last_visit", "nothing"])
}

fn attr_test() -> impl Strategy<Value = AttrTest> {
    prop_oneof![
        (op(), value()).prop_map(|(op, value)| AttrTest::Compare { op, value }),
        Just(AttrTest::Exists),
        Just(AttrTest::Missing),
        vec(value(), 1..3).prop_map(|values| AttrTest::In { values }),
        vec(value(), 1..3).prop_map(|values| AttrTest::NotIn { values }),
        pick(&["vip", "new"]).prop_map(|value| AttrTest::Contains { value }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (-3000i64..60_000).prop_map(|value| Expr::Number { value }),
        attr_name().prop_map(|name| Expr::Attribute { name }),
        (filter(), window()).prop_map(|(filter, window)| Expr::OrderCount { filter, window }),
        (filter(), window()).prop_map(|(filter, window)| Expr::OrderSum { filter, window }),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        let add_op = prop_oneof![Just(AddOp::Add), Just(AddOp::Sub)];
        prop_oneof![
            (inner.clone(), vec((add_op, inner.clone()), 1..3)).prop_map(|(first, rest)| {
                Expr::Sum {
                    first: Box::new(first),
                    rest: rest.into_iter().map(|(op, expr)| SumTerm { op, expr }).collect(),
                }
            }),
            vec(inner, 2..4).prop_map(|factors| Expr::Product { factors }),
        ]
    })
}

fn sub_state() -> impl Strategy<Value = SubscriptionState> {
    prop_oneof![
        Just(SubscriptionState::Active),
        Just(SubscriptionState::Paused),
        Just(SubscriptionState::Canceled)
    ]
}

fn message_kind() -> impl Strategy<Value = MessageKind> {
    prop_oneof![Just(MessageKind::Received), Just(MessageKind::Opened), Just(MessageKind::Clicked)]
}

/// A random leaf. `with_refs` adds `segment "base"` references.
pub(super) fn leaf(with_refs: bool) -> BoxedStrategy<Condition> {
    let mut arms: Vec<BoxedStrategy<Condition>> = vec![
        (attr_name(), attr_test())
            .prop_map(|(name, test)| Condition::Attribute { name, test })
            .boxed(),
        prop_oneof![Just(LineState::Linked), Just(LineState::Following), Just(LineState::Blocked)]
            .prop_map(|state| Condition::Line { state })
            .boxed(),
        (date_field(), date_test())
            .prop_map(|(field, test)| Condition::Date { field, test })
            .boxed(),
        (
            filter(),
            window(),
            prop_oneof![Just(Measure::Count), Just(Measure::Sum), Just(Measure::Avg)],
            op(),
            prop_oneof![0i64..4, 0i64..40_000],
        )
            .prop_map(|(filter, window, measure, op, value)| Condition::Orders {
                filter,
                window,
                measure,
                op,
                value,
            })
            .boxed(),
        (
            proptest::option::of(sub_state()),
            subset(PRODUCTS),
            subset(REASONS),
            proptest::option::of((op(), 0i64..5).prop_map(|(op, value)| CountTest { op, value })),
            proptest::option::of(date_test()),
            proptest::option::of(date_test()),
            proptest::option::of(date_test()),
        )
            .prop_map(
                |(
                    state,
                    products,
                    cancel_reasons,
                    deliveries,
                    started,
                    canceled,
                    next_delivery,
                )| {
                    Condition::Subscription {
                        state,
                        products,
                        cancel_reasons,
                        deliveries,
                        started,
                        canceled,
                        next_delivery,
                    }
                },
            )
            .boxed(),
        (span(), 1u32..3)
            .prop_map(|(after, min_items)| Condition::CartAbandoned { after, min_items })
            .boxed(),
        (
            prop_oneof![
                Just(ItemSource::Cart),
                Just(ItemSource::Favourites),
                Just(ItemSource::Saved)
            ],
            prop_oneof![
                Just(ItemChangeKind::Restocked),
                Just(ItemChangeKind::PriceDropped),
                Just(ItemChangeKind::LastOne)
            ],
            subset(PRODUCTS),
        )
            .prop_map(|(source, change, products)| Condition::ItemChange {
                source,
                change,
                products,
            })
            .boxed(),
        (message_kind(), subset(CAMPAIGNS), window(), op(), 0i64..4)
            .prop_map(|(kind, campaigns, window, op, value)| Condition::Messages {
                kind,
                campaigns,
                window,
                op,
                value,
            })
            .boxed(),
        pick(LISTS).prop_map(|name| Condition::InList { name }).boxed(),
        (pick(&["a", "b"]), 0u32..10_000, 0u32..10_000)
            .prop_map(|(salt, a, b)| Condition::Bucket { salt, from: a.min(b), to: a.max(b) })
            .boxed(),
        (expr(), op(), expr())
            .prop_map(|(left, op, right)| Condition::Compare { left, op, right })
            .boxed(),
    ];
    if with_refs {
        arms.push(Just(Condition::InSegment { name: "base".into() }).boxed());
    }
    proptest::strategy::Union::new(arms).boxed()
}

/// A random condition tree up to depth 3.
pub(super) fn condition(with_refs: bool) -> impl Strategy<Value = Condition> {
    leaf(with_refs).prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|children| Condition::And { children }),
            vec(inner.clone(), 0..4).prop_map(|children| Condition::Or { children }),
            inner.prop_map(|c| Condition::Not { child: Box::new(c) }),
        ]
    })
}

fn line_item() -> impl Strategy<Value = LineItemFact> {
    (
        pick(PRODUCTS),
        proptest::option::of(pick(SKUS)),
        proptest::option::of(pick(CATEGORIES)),
        1u32..3,
        100i64..8000,
    )
        .prop_map(|(product, sku, category, quantity, unit_price)| LineItemFact {
            product,
            sku,
            category,
            quantity,
            unit_price,
        })
}

pub(super) fn order(i: usize) -> impl Strategy<Value = OrderFact> {
    (instant(), 300i64..20_000, order_kind(), vec(line_item(), 0..3)).prop_map(
        move |(placed_at, amount, kind, items)| OrderFact {
            id: format!("o{i}"),
            placed_at,
            amount,
            kind,
            items,
        },
    )
}

pub(super) fn saved() -> impl Strategy<Value = SavedItem> {
    (pick(PRODUCTS), instant(), 500i64..5000)
        .prop_map(|(product, added_at, price_at_add)| SavedItem { product, added_at, price_at_add })
}

fn subscription() -> impl Strategy<Value = SubscriptionFact> {
    (
        sub_state(),
        proptest::option::of(pick(PRODUCTS)),
        instant(),
        proptest::option::of(instant()),
        proptest::option::of(pick(REASONS)),
        0u32..5,
        proptest::option::of(instant()),
    )
        .prop_map(
            |(
                state,
                product,
                started_at,
                canceled_at,
                cancel_reason,
                deliveries,
                next_delivery_at,
            )| {
                SubscriptionFact {
                    id: "s".into(),
                    state,
                    product,
                    started_at,
                    canceled_at,
                    cancel_reason,
                    deliveries,
                    next_delivery_at,
                }
            },
        )
}

fn attributes() -> impl Strategy<Value = BTreeMap<String, AttrValue>> {
    (
        proptest::option::of(pick(RANKS)),
        proptest::option::of(prop_oneof![
            (-5i64..3000).prop_map(AttrValue::Int),
            Just(AttrValue::Text("x".into()))
        ]),
        proptest::option::of(any::<bool>()),
        proptest::option::of(subset(&["vip", "new"])),
        proptest::option::of(instant()),
    )
        .prop_map(|(rank, points, opt_in, labels, visit)| {
            let mut m = BTreeMap::new();
            if let Some(r) = rank {
                m.insert("rank".into(), AttrValue::Text(r));
            }
            if let Some(p) = points {
                m.insert("points".into(), p);
            }
            if let Some(b) = opt_in {
                m.insert("opt_in".into(), AttrValue::Bool(b));
            }
            if let Some(l) = labels {
                m.insert("labels".into(), AttrValue::List(l));
            }
            if let Some(t) = visit {
                m.insert("last_visit".into(), AttrValue::Time(t));
            }
            m
        })
}

fn birth_date() -> impl Strategy<Value = Option<NaiveDate>> {
    proptest::option::of(prop_oneof![
        (1950i32..2010, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap()),
        Just(NaiveDate::from_ymd_opt(2000, 2, 29).unwrap()),
        Just(NaiveDate::from_ymd_opt(1990, 6, 15).unwrap()),
    ])
}

/// One random customer called `id`.
pub(super) fn customer(id: String) -> impl Strategy<Value = CustomerFacts> {
    (
        attributes(),
        birth_date(),
        proptest::option::of(instant()),
        (any::<bool>(), proptest::option::of(instant()), 0u8..3),
        vec(order(0), 0..6).prop_map(|mut v| {
            for (i, o) in v.iter_mut().enumerate() {
                o.id = format!("o{i}");
            }
            v
        }),
        vec(subscription(), 0..3),
        vec(saved(), 0..3),
        vec(saved(), 0..3),
        vec(
            (instant(), message_kind(), proptest::option::of(pick(CAMPAIGNS)))
                .prop_map(|(at, kind, campaign)| MessageEvent { at, kind, campaign }),
            0..5,
        ),
    )
        .prop_map(
            move |(
                attributes,
                birth_date,
                registered_at,
                (linked, linked_at, fr),
                orders,
                subscriptions,
                cart,
                favourites,
                messages,
            )| {
                let mut c = CustomerFacts::new(CustomerId::new(id.clone()).unwrap());
                c.attributes = attributes;
                c.birth_date = birth_date;
                c.registered_at = registered_at;
                c.line = LineStatus {
                    linked,
                    linked_at,
                    friendship: [Friendship::Unknown, Friendship::Following, Friendship::Blocked]
                        [fr as usize],
                };
                c.orders = orders;
                c.subscriptions = subscriptions;
                c.cart = cart;
                c.favourites = favourites;
                c.messages = messages;
                c
            },
        )
}

/// `n` random customers `c0..c{n-1}`.
pub(super) fn customers(n: usize) -> impl Strategy<Value = Vec<CustomerFacts>> {
    (0..n).map(|i| customer(format!("c{i}"))).collect::<Vec<_>>()
}

/// A random catalogue for every product.
pub(super) fn catalog() -> impl Strategy<Value = Vec<(String, ProductStatus)>> {
    vec((500i64..5000, 0i64..3, proptest::option::of(instant())), PRODUCTS.len()).prop_map(|v| {
        v.into_iter()
            .zip(PRODUCTS)
            .map(|((price, stock, r), p)| {
                ((*p).to_owned(), ProductStatus { price, stock, restocked_at: r })
            })
            .collect()
    })
}

/// A context at [`now`] with the catalogue, the `vip` list (every third customer) and a
/// `base` segment.
pub(super) fn context(
    catalog: &[(String, ProductStatus)],
    customers: &[CustomerFacts],
    base: Option<&enishi::segment::SegmentDefinition>,
) -> Context {
    let mut ctx = Context::new(now());
    for (p, s) in catalog {
        ctx.set_product(p.clone(), *s);
    }
    ctx.set_list("vip", customers.iter().step_by(3).map(|c| c.id.clone()));
    if let Some(b) = base {
        ctx.define_segment("base", b.clone()).unwrap();
    }
    ctx
}
