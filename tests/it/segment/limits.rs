//! Hostile sizes: a million-term `calc` chain and deep nesting either work or fail with a
//! typed error, on a 2 MiB stack, in every surface (parse, eval, SQL, print, JSON).

use chrono::DateTime;
use enishi::CustomerId;
use enishi::segment::{
    AttrValue, Condition, Context, CustomerFacts, Engine, MAX_DEPTH, SegmentDefinition,
    SegmentError, SqlTarget, compile_sql, matches,
};

/// Runs `f` on a thread with a 2 MiB stack; a stack overflow would abort the whole binary.
fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap()
}

fn ctx() -> Context {
    Context::new(DateTime::parse_from_rfc3339("2025-07-01T00:00:00+09:00").unwrap().to_utc())
}

const TERMS: usize = 1_000_000;

#[test]
fn segment_a_million_term_calc_chain_works_everywhere_on_a_small_stack() {
    small_stack(|| {
        let text = format!("calc attr points + {} <= 5", vec!["1"; TERMS - 1].join(" + "));
        let def = SegmentDefinition::parse(&text).expect("a flat chain parses");

        let mut c = CustomerFacts::new(CustomerId::new("c1").unwrap());
        assert!(!matches(&def, &c, &ctx()).unwrap(), "a million ones are not <= 5");
        c.attributes.insert("points".into(), AttrValue::Int(-(TERMS as i64) + 6));
        assert!(matches(&def, &c, &ctx()).unwrap(), "-999,994 + 999,999 = 5 <= 5");

        let printed = def.to_string();
        assert_eq!(printed.len(), text.len());
        assert_eq!(SegmentDefinition::parse(&printed).unwrap(), def);

        let json = def.to_json();
        assert_eq!(SegmentDefinition::from_json(&json).unwrap(), def);

        for target in [SqlTarget::postgres(), SqlTarget::bigquery()] {
            let q = compile_sql(&def, &ctx(), &target).unwrap();
            assert!(q.sql.len() > TERMS, "every term is in the SQL");
            assert_eq!(q.params, ["points"], "equal texts share one parameter");
        }

        let mut e = Engine::new(ctx());
        e.upsert_customer(c);
        e.register("chain", def).unwrap();
        assert_eq!(e.count("chain").unwrap(), 1);
    });
}

#[test]
fn segment_long_and_or_chains_stay_flat() {
    small_stack(|| {
        let text = vec!["line linked"; 100_000].join(" and ");
        let def = SegmentDefinition::parse(&text).unwrap();
        assert!(
            matches!(def.condition(), Condition::And { children } if children.len() == 100_000)
        );
        assert_eq!(SegmentDefinition::from_json(&def.to_json()).unwrap(), def);
    });
}

/// `not` nested `depth` times around a leaf: `depth + 1` levels.
fn nots(depth: usize) -> String {
    format!("{}line linked", "not ".repeat(depth))
}

/// A `calc` whose left side nests sums `depth` levels deep through their right operands
/// (`1 + (1 + (1 + ...))`, the deepest JSON per level): `depth + 2` levels with the `calc`
/// and the innermost numbers.
fn nested_sums(depth: usize) -> String {
    let mut e = "1 + 1".to_string();
    for _ in 1..depth {
        e = format!("1 + ({e})");
    }
    format!("calc {e} > 0")
}

#[test]
fn segment_nesting_deeper_than_the_limit_is_a_typed_error() {
    small_stack(|| {
        // The deepest allowed definitions work in every surface, JSON included (serde_json
        // refuses input nested deeper than 128).
        for text in [nots(MAX_DEPTH - 1), nested_sums(MAX_DEPTH - 2)] {
            let def = SegmentDefinition::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(SegmentDefinition::from_json(&def.to_json()).unwrap(), def, "{text}");
            assert_eq!(SegmentDefinition::parse(&def.to_string()).unwrap(), def);
            compile_sql(&def, &ctx(), &SqlTarget::postgres()).unwrap();
            let c = CustomerFacts::new(CustomerId::new("c1").unwrap());
            matches(&def, &c, &ctx()).unwrap();
        }
        // One more level is refused, by the parser and by `new` (and so by `from_json`).
        for text in [nots(MAX_DEPTH), nested_sums(MAX_DEPTH - 1)] {
            let e = SegmentDefinition::parse(&text).unwrap_err();
            assert_eq!(e, SegmentError::TooDeep { limit: MAX_DEPTH }, "{text}");
            assert!(e.to_string().contains("nested too deeply"), "{e}");
        }
        let mut deep = Condition::Line { state: enishi::segment::LineState::Linked };
        for _ in 0..MAX_DEPTH {
            deep = Condition::Not { child: Box::new(deep) };
        }
        assert_eq!(SegmentDefinition::new(deep), Err(SegmentError::TooDeep { limit: MAX_DEPTH }));
        // Hostile JSON and DSL nesting far beyond the limit fail cleanly, without recursion.
        let json = format!(
            r#"{{"version": 1, "condition": {}{{"type": "line", "state": "linked"}}{}}}"#,
            r#"{"type": "not", "child": "#.repeat(100_000),
            "}".repeat(100_000)
        );
        assert!(matches!(SegmentDefinition::from_json(&json), Err(SegmentError::Json(_))));
        assert!(SegmentDefinition::parse(&nots(100_000)).is_err());
        let parens = format!("calc {}1{} > 0", "(".repeat(100_000), ")".repeat(100_000));
        assert!(SegmentDefinition::parse(&parens).is_err());
    });
}
