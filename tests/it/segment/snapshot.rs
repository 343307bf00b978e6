//! Snapshots of the DSL printer and the SQL compiler (PostgreSQL and BigQuery, with bind
//! parameters) for representative definitions: a change in either output shows up as a diff
//! in review. Update with `cargo insta review` or `INSTA_UPDATE=always`.

use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset};
use enishi::segment::{Context, SegmentDefinition, SqlQuery, SqlTarget, compile_sql};

/// A dozen definitions covering every leaf family and the combinators.
const DEFINITIONS: &[(&str, &str)] = &[
    (
        "attributes",
        r#"attr rank = "gold" and attr points >= 500 and attr labels contains "vip" and attr sex not in ["m", "x"] and attr optin exists"#,
    ),
    ("line_state", "line following or (line linked and not line blocked)"),
    (
        "dates",
        "registered age > 30d and birthday month = current and linked_at days_ago <= 7 and date_attr \"last visit\" between @2025-01-01T00:00:00Z and @2025-02-01T00:00:00+09:00",
    ),
    ("anniversary", "birthday anniversary today or registered anniversary today"),
    (
        "orders",
        r#"orders {category in ["cosme", "skin"], kind = one_off} last 90d sum >= 20000 and orders calendar 7d avg > 3000"#,
    ),
    (
        "bought",
        r#"bought {product = "1"} last 30d and never bought {sku = "S-2"} and first_order age > 365d and last_order {product = "9"} age < 14d"#,
    ),
    (
        "subscription",
        r#"subscription {state = canceled, product in ["p1", "p2"], reason = "price", deliveries >= 3, canceled days_ago <= 30}"#,
    ),
    (
        "cart",
        r#"cart abandoned 3h items >= 2 or cart restocked or favourites price_dropped ["p1"] or saved last_one"#,
    ),
    (
        "messages",
        r#"messages opened ["spring", "summer"] last 30d count >= 1 and messages received last 7d count < 3"#,
    ),
    ("list_and_segment", r#"list "o'neil \\ imports" and segment "vip" and not segment "vip""#),
    ("bucket", r#"bucket "exp'1" in 0..1000 or bucket "exp'1" in 9000..10000"#),
    (
        "calc",
        r#"calc attr points * 2 + sum(orders last 30d) - count(orders {kind = subscription}) >= (attr budget - 100) * 3"#,
    ),
    (
        "groups",
        "all() or any(line linked) or all(line linked, any(line blocked, not line following))",
    ),
];

fn ctx() -> Context {
    let now = DateTime::parse_from_rfc3339("2025-02-28T03:00:00Z").unwrap().to_utc();
    let mut ctx = Context::new(now).with_tz(FixedOffset::east_opt(9 * 3600).unwrap());
    ctx.define_segment("vip", SegmentDefinition::parse(r#"attr rank = "gold""#).unwrap()).unwrap();
    ctx
}

fn show(out: &mut String, dialect: &str, q: &SqlQuery) {
    writeln!(out, "-- {dialect}\n{}", q.sql).unwrap();
    for (i, p) in q.params.iter().enumerate() {
        writeln!(out, "--   ${} = {p:?}", i + 1).unwrap();
    }
}

#[test]
fn segment_snapshot_dsl_printer_and_sql_compiler() {
    let ctx = ctx();
    for (name, text) in DEFINITIONS {
        let def = SegmentDefinition::parse(text).unwrap();
        let printed = def.to_string();
        assert_eq!(SegmentDefinition::parse(&printed).unwrap(), def, "{name}");
        insta::assert_snapshot!(format!("dsl_{name}"), printed);
        let mut sql = String::new();
        show(&mut sql, "PostgreSQL", &compile_sql(&def, &ctx, &SqlTarget::postgres()).unwrap());
        let bq = compile_sql(&def, &ctx, &SqlTarget::bigquery().with_schema("shop")).unwrap();
        show(&mut sql, "BigQuery", &bq);
        insta::assert_snapshot!(format!("sql_{name}"), sql);
    }
}
