//! The two surfaces: strict JSON and the DSL, and their round trips.

use enishi::segment::{AttrTest, CmpOp, Condition, SegmentDefinition, SegmentError, Value};
use proptest::prelude::*;

use super::arb;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn segment_dsl_parse_print_is_identity(c in arb::condition(true)) {
        let def = SegmentDefinition::new(c).unwrap();
        let text = def.to_string();
        let back = SegmentDefinition::parse(&text);
        prop_assert_eq!(back.as_ref(), Ok(&def), "text: {}", text);
    }

    #[test]
    fn segment_json_round_trips(c in arb::condition(true)) {
        let def = SegmentDefinition::new(c).unwrap();
        let json = def.to_json();
        prop_assert_eq!(SegmentDefinition::from_json(&json), Ok(def));
    }

    #[test]
    fn segment_dsl_quotes_any_name_and_text(name in "\\PC*|[\"\\\\\n\t\u{1}]{0,4}", text in any::<String>(), n in any::<i64>()) {
        let c = Condition::And { children: vec![
            Condition::Attribute { name: name.clone(), test: AttrTest::Compare { op: CmpOp::Eq, value: Value::Text(text) } },
            Condition::Attribute { name: "n".into(), test: AttrTest::Compare { op: CmpOp::Lt, value: Value::Int(n) } },
            Condition::InList { name },
        ]};
        let def = SegmentDefinition::new(c);
        if let Ok(def) = def {
            prop_assert_eq!(SegmentDefinition::parse(&def.to_string()), Ok(def));
        }
    }

    #[test]
    fn segment_dsl_never_panics_on_garbage(s in "\\PC{0,60}") {
        let _ = SegmentDefinition::parse(&s);
    }
}

#[test]
fn segment_json_is_strict_and_versioned() {
    let ok = r#"{"version":1,"condition":{"type":"line","state":"linked"}}"#;
    assert!(SegmentDefinition::from_json(ok).is_ok());

    let unknown = r#"{"version":1,"condition":{"type":"line","state":"linked","extra":1}}"#;
    let e = SegmentDefinition::from_json(unknown).unwrap_err();
    assert!(matches!(&e, SegmentError::Json(m) if m.contains("extra")), "{e}");

    let top = r#"{"version":1,"condition":{"type":"line","state":"linked"},"name":"x"}"#;
    assert!(SegmentDefinition::from_json(top).is_err());

    let v2 = r#"{"version":2,"condition":{"type":"line","state":"linked"}}"#;
    let e = SegmentDefinition::from_json(v2).unwrap_err();
    assert!(e.to_string().contains("version 2"), "{e}");

    let missing = r#"{"condition":{"type":"line","state":"linked"}}"#;
    assert!(SegmentDefinition::from_json(missing).is_err());

    let nested = r#"{"version":1,"condition":{"type":"orders","filter":{"products":["1"],"colour":"red"},"measure":"count","op":">=","value":1}}"#;
    assert!(SegmentDefinition::from_json(nested).is_err());

    let bad_span =
        r#"{"version":1,"condition":{"type":"cartAbandoned","after":"3 hours","minItems":1}}"#;
    let e = SegmentDefinition::from_json(bad_span).unwrap_err();
    assert!(e.to_string().contains("3 hours"), "{e}");
}

#[test]
fn segment_json_shape_is_documented_form() {
    let def =
        SegmentDefinition::parse(r#"line linked and bought {product = "1"} last 30d"#).unwrap();
    let v: serde_json::Value = serde_json::from_str(&def.to_json()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "version": 1,
            "condition": {"type": "and", "children": [
                {"type": "line", "state": "linked"},
                {"type": "orders", "filter": {"products": ["1"]},
                 "window": {"type": "last", "span": "30d"},
                 "measure": "count", "op": ">=", "value": 1}
            ]}
        })
    );
}

#[test]
fn segment_validation_rejects_impossible_values() {
    for (text, needle) in [
        ("birthday month = 13", "month 13"),
        ("bucket \"a\" in 10..5", "bucket range"),
        ("bucket \"a\" in 0..10001", "bucket range"),
        ("orders last 0s count >= 1", "empty"),
        ("orders calendar 0d count >= 1", "empty"),
        ("cart abandoned 3h items >= 0", "at least 1"),
        ("attr \"\" exists", "must not be empty"),
    ] {
        let e = SegmentDefinition::parse(text).unwrap_err();
        assert!(matches!(e, SegmentError::Invalid(_)), "{text}: {e}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}

#[test]
fn segment_dsl_errors_say_where_and_what() {
    let cases = [
        ("line linked and", (1, 16), "a condition"),
        ("orders {product = 1} count >= 1", (1, 19), "a quoted string"),
        ("orders count >= 1 or\n  attr rank is \"gold\"", (2, 13), "an attribute test"),
        ("(line linked", (1, 13), "`)`"),
        ("last_order age > 30x", (1, 18), "a span"),
        ("orders {product = \"1\", product = \"2\"} count > 0", (1, 24), "at most once"),
        ("registered between @2025-13-01T00:00:00Z and @2025-01-01T00:00:00Z", (1, 20), "RFC 3339"),
        ("line linked line blocked", (1, 13), "`and`, `or` or end of input"),
    ];
    for (text, (line, column), expected) in cases {
        let SegmentError::Parse(e) = SegmentDefinition::parse(text).unwrap_err() else {
            panic!("{text}: not a parse error")
        };
        assert_eq!((e.line, e.column), (line, column), "{text}: {e}");
        assert!(e.expected.contains(expected), "{text}: {e}");
    }
}

#[test]
fn segment_dsl_precedence_and_grouping() {
    let a = SegmentDefinition::parse("line linked or line blocked and not line following").unwrap();
    let b = SegmentDefinition::parse("any(line linked, all(line blocked, not line following))")
        .unwrap();
    assert_eq!(a, b);
    // Parentheses group without adding nodes, and keep nesting.
    let c = SegmentDefinition::parse("(line linked and line blocked) and line following").unwrap();
    let Condition::And { children } = c.condition() else { panic!() };
    assert_eq!(children.len(), 2);
    assert_eq!(c.to_string(), "(line linked and line blocked) and line following");
    assert_eq!(SegmentDefinition::parse("all()").unwrap().to_string(), "all()");
    assert_eq!(
        SegmentDefinition::parse("any(line linked)").unwrap().to_string(),
        "any(line linked)"
    );
    // Comments and line breaks are whitespace.
    let d = SegmentDefinition::parse("# linked buyers\nline linked # LINE\n and bought").unwrap();
    assert_eq!(d.to_string(), "line linked and bought");
}

#[test]
fn segment_dsl_sugar_is_canonical_orders() {
    let bought = SegmentDefinition::parse("bought {product = \"A\"}").unwrap();
    let long = SegmentDefinition::parse("orders {product in [\"A\"]} count >= 1").unwrap();
    assert_eq!(bought, long);
    let never = SegmentDefinition::parse("never bought {category = \"c\"} last 90d").unwrap();
    assert_eq!(never.to_string(), "never bought {category = \"c\"} last 90d");
    let Condition::Orders { value, op, .. } = never.condition() else { panic!() };
    assert_eq!((*op, *value), (CmpOp::Eq, 0));
}

#[test]
fn segment_docs_use_cases_all_parse_and_round_trip() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/segments.md");
    let doc = std::fs::read_to_string(&path).expect("docs/segments.md exists");
    let blocks: Vec<&str> =
        doc.split("```seg\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert!(blocks.len() >= 25, "only {} segment examples", blocks.len());
    for b in blocks {
        let def = SegmentDefinition::parse(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
        assert_eq!(SegmentDefinition::parse(&def.to_string()).unwrap(), def);
        assert_eq!(SegmentDefinition::from_json(&def.to_json()).unwrap(), def);
    }
}
