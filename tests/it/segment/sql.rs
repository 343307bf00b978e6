//! SQL push-down: BigQuery snapshots, every random condition compiles, and (with the
//! `postgres` feature) a differential test against a real PostgreSQL.

use chrono::DateTime;
use enishi::segment::{Context, SegmentDefinition, SegmentError, SqlTarget, compile_sql};
use proptest::prelude::*;

use super::arb;

fn ctx() -> Context {
    Context::new(DateTime::parse_from_rfc3339("2025-07-01T00:00:00+09:00").unwrap().to_utc())
}

fn bq(text: &str) -> String {
    compile_sql(
        &SegmentDefinition::parse(text).unwrap(),
        &ctx(),
        &SqlTarget::bigquery().with_schema("shop"),
    )
    .unwrap()
    .sql
}

#[test]
fn segment_sql_bigquery_snapshot_q3() {
    let got = bq(
        r#"line linked and birthday month = 6 and orders sum >= 50000 and last_order age > 30d and bought {product = "1"} and never bought {product = "2"}"#,
    );
    let want = "SELECT c.customer_id FROM `shop`.customers c WHERE (\
COALESCE((c.line_linked), FALSE) AND \
COALESCE((EXTRACT(MONTH FROM c.birth_date) = 6), FALSE) AND \
COALESCE((EXISTS (SELECT 1 FROM (SELECT COUNT(*) AS n, COALESCE(SUM(x.v), 0) AS s FROM (SELECT o.placed_at, o.amount AS v FROM `shop`.orders o WHERE o.customer_id = c.customer_id AND o.placed_at < TIMESTAMP '2025-06-30 15:00:01+00') x) q WHERE q.s >= 50000)), FALSE) AND \
COALESCE(((SELECT MAX(x.placed_at) FROM (SELECT o.placed_at, o.amount AS v FROM `shop`.orders o WHERE o.customer_id = c.customer_id AND o.placed_at < TIMESTAMP '2025-06-30 15:00:01+00') x) < TIMESTAMP '2025-05-31 15:00:00+00'), FALSE) AND \
COALESCE((EXISTS (SELECT 1 FROM (SELECT COUNT(*) AS n, COALESCE(SUM(x.v), 0) AS s FROM (SELECT o.order_id, MIN(o.placed_at) AS placed_at, SUM(i.quantity * i.unit_price) AS v FROM `shop`.orders o, `shop`.order_items i WHERE o.customer_id = c.customer_id AND o.placed_at < TIMESTAMP '2025-06-30 15:00:01+00' AND i.order_id = o.order_id AND i.customer_id = o.customer_id AND i.product_id IN (@p1) GROUP BY o.order_id) x) q WHERE q.n >= 1)), FALSE) AND \
COALESCE((EXISTS (SELECT 1 FROM (SELECT COUNT(*) AS n, COALESCE(SUM(x.v), 0) AS s FROM (SELECT o.order_id, MIN(o.placed_at) AS placed_at, SUM(i.quantity * i.unit_price) AS v FROM `shop`.orders o, `shop`.order_items i WHERE o.customer_id = c.customer_id AND o.placed_at < TIMESTAMP '2025-06-30 15:00:01+00' AND i.order_id = o.order_id AND i.customer_id = o.customer_id AND i.product_id IN (@p2) GROUP BY o.order_id) x) q WHERE q.n = 0)), FALSE)\
) ORDER BY c.customer_id";
    assert_eq!(got, want);
}

#[test]
fn segment_sql_bigquery_snapshot_time_zone_and_bucket() {
    let got = bq(
        r#"registered month = current and bucket "exp'1" in 0..5000 and messages received last 7d count < 2"#,
    );
    let want = "SELECT c.customer_id FROM `shop`.customers c WHERE (\
COALESCE((EXTRACT(MONTH FROM c.registered_at AT TIME ZONE '+09:00') = 7), FALSE) AND \
COALESCE((MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(SHA256(CONCAT(@p1, ':', c.customer_id))), 1, 14)) AS INT64), 10000) >= 0 AND MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(SHA256(CONCAT(@p1, ':', c.customer_id))), 1, 14)) AS INT64), 10000) < 5000), FALSE) AND \
COALESCE((EXISTS (SELECT 1 FROM (SELECT COUNT(*) AS n FROM `shop`.message_events m WHERE m.customer_id = c.customer_id AND m.kind = 'received' AND m.at >= TIMESTAMP '2025-06-23 15:00:01+00' AND m.at < TIMESTAMP '2025-06-30 15:00:01+00') q WHERE q.n < 2)), FALSE)\
) ORDER BY c.customer_id";
    assert_eq!(got, want);
}

#[test]
fn segment_sql_bigquery_snapshot_f2_and_not() {
    let got = bq(r#"orders count = 1 and first_order days_ago = 7 and not line blocked"#);
    let want = "SELECT c.customer_id FROM `shop`.customers c WHERE (\
COALESCE((EXISTS (SELECT 1 FROM (SELECT COUNT(*) AS n, COALESCE(SUM(x.v), 0) AS s FROM (SELECT o.placed_at, o.amount AS v FROM `shop`.orders o WHERE o.customer_id = c.customer_id AND o.placed_at < TIMESTAMP '2025-06-30 15:00:01+00') x) q WHERE q.n = 1)), FALSE) AND \
COALESCE((((SELECT MIN(x.placed_at) FROM (SELECT o.placed_at, o.amount AS v FROM `shop`.orders o WHERE o.customer_id = c.customer_id AND o.placed_at < TIMESTAMP '2025-06-30 15:00:01+00') x) >= TIMESTAMP '2025-06-23 15:00:00+00' AND (SELECT MIN(x.placed_at) FROM (SELECT o.placed_at, o.amount AS v FROM `shop`.orders o WHERE o.customer_id = c.customer_id AND o.placed_at < TIMESTAMP '2025-06-30 15:00:01+00') x) < TIMESTAMP '2025-06-24 15:00:00+00')), FALSE) AND \
(NOT COALESCE((c.line_linked AND c.line_friendship = 'blocked'), FALSE))\
) ORDER BY c.customer_id";
    // days_ago = 7 from 2025-07-01 (Tokyo) is the Tokyo day 2025-06-24.
    assert_eq!(got, want);
}

#[test]
fn segment_sql_unresolvable_references_are_compile_errors() {
    let def = SegmentDefinition::parse(r#"segment "vip" and line linked"#).unwrap();
    let e = compile_sql(&def, &ctx(), &SqlTarget::postgres()).unwrap_err();
    assert_eq!(e, SegmentError::UnknownSegment("vip".into()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn segment_sql_every_condition_compiles_in_both_dialects(c in arb::condition(false)) {
        let def = SegmentDefinition::new(c).unwrap();
        for t in [SqlTarget::postgres(), SqlTarget::bigquery()] {
            let q = compile_sql(&def, &ctx(), &t).unwrap();
            prop_assert!(q.sql.starts_with("SELECT c.customer_id FROM customers c WHERE "));
            // Every text of the definition is a parameter, and every parameter is used.
            let pg = t == SqlTarget::postgres();
            for i in 1..=q.params.len() {
                let placeholder = if pg { format!("${i}::text") } else { format!("@p{i}") };
                prop_assert!(q.sql.contains(&placeholder), "{} unused: {}", placeholder, q.sql);
            }
        }
    }
}

#[cfg(feature = "postgres")]
mod differential {
    use enishi::segment::{
        AttrValue, CustomerFacts, Friendship, OrderKind, SegmentDefinition, SqlQuery, SqlTarget,
        compile_sql, matches,
    };
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    use super::super::arb;

    fn q(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    fn t(d: &chrono::DateTime<chrono::Utc>) -> String {
        format!("'{}'::timestamptz", d.to_rfc3339())
    }

    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
        v.map_or("NULL".into(), f)
    }

    const SCHEMA: &str = "
        CREATE TABLE customers (customer_id TEXT PRIMARY KEY, birth_date DATE, registered_at TIMESTAMPTZ,
            line_linked BOOLEAN NOT NULL, line_linked_at TIMESTAMPTZ, line_friendship TEXT NOT NULL);
        CREATE TABLE customer_attributes (customer_id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
            text_value TEXT, int_value BIGINT, bool_value BOOLEAN, time_value TIMESTAMPTZ);
        CREATE TABLE orders (order_id TEXT NOT NULL, customer_id TEXT NOT NULL, placed_at TIMESTAMPTZ NOT NULL,
            amount BIGINT NOT NULL, kind TEXT NOT NULL);
        CREATE TABLE order_items (order_id TEXT NOT NULL, customer_id TEXT NOT NULL, product_id TEXT NOT NULL,
            sku TEXT, category TEXT, quantity BIGINT NOT NULL, unit_price BIGINT NOT NULL);
        CREATE TABLE subscriptions (subscription_id TEXT NOT NULL, customer_id TEXT NOT NULL, state TEXT NOT NULL,
            product_id TEXT, started_at TIMESTAMPTZ NOT NULL, canceled_at TIMESTAMPTZ, cancel_reason TEXT,
            deliveries BIGINT NOT NULL, next_delivery_at TIMESTAMPTZ);
        CREATE TABLE cart_items (customer_id TEXT NOT NULL, product_id TEXT NOT NULL, added_at TIMESTAMPTZ NOT NULL,
            price_at_add BIGINT NOT NULL);
        CREATE TABLE favourites (customer_id TEXT NOT NULL, product_id TEXT NOT NULL, added_at TIMESTAMPTZ NOT NULL,
            price_at_add BIGINT NOT NULL);
        CREATE TABLE products (product_id TEXT PRIMARY KEY, price BIGINT NOT NULL, stock BIGINT NOT NULL,
            restocked_at TIMESTAMPTZ);
        CREATE TABLE message_events (customer_id TEXT NOT NULL, at TIMESTAMPTZ NOT NULL, kind TEXT NOT NULL,
            campaign TEXT);
        CREATE TABLE list_members (list_name TEXT NOT NULL, customer_id TEXT NOT NULL);";

    /// INSERT statements for the documented layout.
    fn inserts(
        cs: &[CustomerFacts],
        catalog: &[(String, enishi::segment::ProductStatus)],
    ) -> String {
        let mut s = String::new();
        for c in cs {
            let id = q(c.id.as_str());
            let fr = match c.line.friendship {
                Friendship::Following => "following",
                Friendship::Blocked => "blocked",
                _ => "unknown",
            };
            s += &format!(
                "INSERT INTO customers VALUES ({id}, {}, {}, {}, {}, '{fr}');\n",
                opt(c.birth_date, |d| format!("'{d}'::date")),
                opt(c.registered_at.as_ref(), t),
                c.line.linked,
                opt(c.line.linked_at.as_ref(), t)
            );
            for (name, v) in &c.attributes {
                let row = |kind: &str, tv: String, iv: String, bv: String, tm: String| {
                    format!(
                        "INSERT INTO customer_attributes VALUES ({id}, {}, '{kind}', {tv}, {iv}, {bv}, {tm});\n",
                        q(name)
                    )
                };
                let n = || "NULL".to_string();
                s += &match v {
                    AttrValue::Text(x) => row("text", q(x), n(), n(), n()),
                    AttrValue::Int(x) => row("int", n(), x.to_string(), n(), n()),
                    AttrValue::Bool(x) => row("bool", n(), n(), x.to_string(), n()),
                    AttrValue::Time(x) => row("time", n(), n(), n(), t(x)),
                    AttrValue::List(xs) if xs.is_empty() => row("list", n(), n(), n(), n()),
                    AttrValue::List(xs) => {
                        xs.iter().map(|x| row("list", q(x), n(), n(), n())).collect()
                    }
                    _ => unreachable!("generated attributes are one of the kinds above"),
                };
            }
            for o in &c.orders {
                let kind = if o.kind == OrderKind::OneOff { "one_off" } else { "subscription" };
                s += &format!(
                    "INSERT INTO orders VALUES ({}, {id}, {}, {}, '{kind}');\n",
                    q(&o.id),
                    t(&o.placed_at),
                    o.amount
                );
                for i in &o.items {
                    s += &format!(
                        "INSERT INTO order_items VALUES ({}, {id}, {}, {}, {}, {}, {});\n",
                        q(&o.id),
                        q(&i.product),
                        opt(i.sku.as_deref(), q),
                        opt(i.category.as_deref(), q),
                        i.quantity,
                        i.unit_price
                    );
                }
            }
            for (k, sub) in c.subscriptions.iter().enumerate() {
                let st = format!("{:?}", sub.state).to_lowercase();
                s += &format!(
                    "INSERT INTO subscriptions VALUES ('{k}', {id}, '{st}', {}, {}, {}, {}, {}, {});\n",
                    opt(sub.product.as_deref(), q),
                    t(&sub.started_at),
                    opt(sub.canceled_at.as_ref(), t),
                    opt(sub.cancel_reason.as_deref(), q),
                    sub.deliveries,
                    opt(sub.next_delivery_at.as_ref(), t)
                );
            }
            for (table, items) in [("cart_items", &c.cart), ("favourites", &c.favourites)] {
                for it in items {
                    s += &format!(
                        "INSERT INTO {table} VALUES ({id}, {}, {}, {});\n",
                        q(&it.product),
                        t(&it.added_at),
                        it.price_at_add
                    );
                }
            }
            for m in &c.messages {
                let k = format!("{:?}", m.kind).to_lowercase();
                s += &format!(
                    "INSERT INTO message_events VALUES ({id}, {}, '{k}', {});\n",
                    t(&m.at),
                    opt(m.campaign.as_deref(), q)
                );
            }
        }
        for c in cs.iter().step_by(3) {
            s += &format!("INSERT INTO list_members VALUES ('vip', {});\n", q(c.id.as_str()));
        }
        for (p, st) in catalog {
            s += &format!(
                "INSERT INTO products VALUES ({}, {}, {}, {});\n",
                q(p),
                st.price,
                st.stock,
                opt(st.restocked_at.as_ref(), t)
            );
        }
        s
    }

    /// Binds a compiled query's text parameters for tokio-postgres.
    fn bind(q: &SqlQuery) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        q.params.iter().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segment_sql_hostile_text_is_a_parameter_even_without_standard_conforming_strings() {
        let client = connect().await;
        let schema = format!("enishi_segment_{}", uuid::Uuid::new_v4().simple());
        // The setting under which an escaped literal (`'\'' OR TRUE --'`) stops being one.
        client
            .batch_execute(&format!(
                "SET standard_conforming_strings = off; SET escape_string_warning = off; \
                 CREATE SCHEMA {schema}; SET search_path TO {schema};{SCHEMA}
                 INSERT INTO customers VALUES ('c1', NULL, NULL, TRUE, NULL, 'following');
                 INSERT INTO customer_attributes VALUES ('c1', 'rank', 'text', 'gold', NULL, NULL, NULL);"
            ))
            .await
            .expect("create the test schema");
        let evil = r"\' OR TRUE OR '' = '";
        let def = SegmentDefinition::parse(&format!(
            "attr rank = \"{}\" or list \"{}\"",
            evil.replace('\\', "\\\\"),
            evil.replace('\\', "\\\\")
        ))
        .unwrap();
        let ctx = enishi::segment::Context::new(chrono::Utc::now());
        let target = SqlTarget::postgres().with_schema(schema.clone());
        let q = compile_sql(&def, &ctx, &target).unwrap();
        assert!(!q.sql.contains("OR TRUE"), "the value reached the SQL text: {}", q.sql);
        assert_eq!(q.params, ["rank", evil]);
        let rows = client.query(&q.sql, &bind(&q)).await;
        let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
        let rows = rows.expect("the parameterised query runs");
        assert!(rows.is_empty(), "the hostile value matched {} customers", rows.len());
    }

    async fn connect() -> tokio_postgres::Client {
        let url = std::env::var("ENISHI_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let (client, conn) = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok(x) => x,
            Err(e) => panic!(
                "PostgreSQL is not reachable at {url} ({e}). Start one with \
                 `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16` \
                 or point ENISHI_TEST_DATABASE_URL at a server."
            ),
        };
        tokio::spawn(conn);
        client
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segment_sql_postgres_matches_the_evaluator() {
        let client = connect().await;
        let schema = format!("enishi_segment_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}; SET search_path TO {schema};{SCHEMA}"))
            .await
            .expect("create the test schema");

        let mut runner = TestRunner::new(Config {
            rng_seed: proptest::test_runner::RngSeed::Fixed(7),
            ..Config::default()
        });
        let mut cs = arb::customers(40).new_tree(&mut runner).unwrap().current();
        // Customers exactly on (and one second either side of) every boundary the handcrafted
        // segments below test: 30 days before `now`, and the Tokyo midnight 7 days ago.
        let now = arb::now();
        let midnight7 =
            chrono::DateTime::parse_from_rfc3339("2025-06-07T15:00:00Z").unwrap().to_utc();
        for (k, at) in [-1i64, 0, 1]
            .iter()
            .flat_map(|j| {
                [
                    now - chrono::TimeDelta::days(30) + chrono::TimeDelta::seconds(*j),
                    midnight7 + chrono::TimeDelta::seconds(*j),
                ]
            })
            .enumerate()
        {
            let mut c = CustomerFacts::new(enishi::CustomerId::new(format!("b{k}")).unwrap());
            c.orders.push(enishi::segment::OrderFact {
                id: "x".into(),
                placed_at: at,
                amount: 1000,
                kind: OrderKind::OneOff,
                items: vec![],
            });
            c.registered_at = Some(at);
            c.birth_date = Some(chrono::NaiveDate::from_ymd_opt(1990, 5, 16 + k as u32).unwrap());
            cs.push(c);
        }
        let catalog = arb::catalog().new_tree(&mut runner).unwrap().current();
        let base =
            SegmentDefinition::new(arb::condition(false).new_tree(&mut runner).unwrap().current())
                .unwrap();
        let ctx = arb::context(&catalog, &cs, Some(&base));
        client.batch_execute(&inserts(&cs, &catalog)).await.expect("load the random data");

        let target = SqlTarget::postgres().with_schema(schema.clone());
        let mut non_trivial = 0;
        let mut failures = Vec::new();
        let mut handcrafted = Vec::new();
        for op in ["=", "!=", "<", "<=", ">", ">="] {
            for f in ["last_order", "first_order", "registered", "birthday"] {
                handcrafted.push(format!("{f} age {op} 30d"));
                handcrafted.push(format!("{f} days_ago {op} 7"));
                handcrafted.push(format!("{f} days_ago {op} 30"));
            }
            handcrafted.push(format!("orders last 30d count {op} 1"));
            handcrafted.push(format!("orders calendar 8d count {op} 1"));
            handcrafted.push(format!("orders calendar 31d count {op} 1"));
        }
        let total = 300 + handcrafted.len();
        for i in 0..total {
            let def = match handcrafted.get(i) {
                Some(text) => SegmentDefinition::parse(text).unwrap(),
                None => SegmentDefinition::new(
                    arb::condition(true).new_tree(&mut runner).unwrap().current(),
                )
                .unwrap(),
            };
            let q = compile_sql(&def, &ctx, &target).unwrap();
            let sql = &q.sql;
            let got: Vec<String> = match client.query(sql, &bind(&q)).await {
                Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
                Err(e) => {
                    failures.push(format!("segment {i} `{def}` failed: {e}\n{sql}"));
                    continue;
                }
            };
            let want: Vec<String> = cs
                .iter()
                .filter(|c| matches(&def, c, &ctx).unwrap())
                .map(|c| c.id.to_string())
                .collect();
            let (mut g, mut w) = (got, want);
            g.sort();
            w.sort();
            if g != w {
                failures.push(format!("segment {i} `{def}`: SQL {g:?} != evaluator {w:?}\n{sql}"));
            }
            if !w.is_empty() && w.len() < cs.len() {
                non_trivial += 1;
            }
        }
        let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
        assert!(
            failures.is_empty(),
            "{} of {total} segments disagree; first:\n{}",
            failures.len(),
            failures[0]
        );
        assert!(non_trivial > 60, "only {non_trivial} random segments split the customers");
    }
}
