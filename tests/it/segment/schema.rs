//! Checking a definition against the data: typos and wrong types are errors, the plain
//! semantics stay available.

use chrono::DateTime;
use enishi::CustomerId;
use enishi::segment::{
    AttrKind, AttrValue, Context, CustomerFacts, Engine, LineItemFact, NameKind, OrderFact,
    OrderKind, Schema, SchemaError, SegmentDefinition, SegmentError,
};

fn ctx() -> Context {
    Context::new(DateTime::parse_from_rfc3339("2025-07-01T00:00:00+09:00").unwrap().to_utc())
}

fn customer(i: usize) -> CustomerFacts {
    let mut c = CustomerFacts::new(CustomerId::new(format!("c{i}")).unwrap());
    c.attributes.insert("opt_in".into(), AttrValue::Bool(i.is_multiple_of(2)));
    c.attributes.insert("rank".into(), AttrValue::Text("gold".into()));
    c.attributes.insert("points".into(), AttrValue::Int(100));
    c.attributes.insert("labels".into(), AttrValue::List(vec!["vip".into()]));
    c.orders.push(OrderFact {
        id: format!("o{i}"),
        placed_at: ctx().now() - chrono::TimeDelta::days(3),
        amount: 1000,
        kind: OrderKind::OneOff,
        items: vec![LineItemFact {
            product: "serum".into(),
            sku: Some("serum-30ml".into()),
            category: Some("skincare".into()),
            quantity: 1,
            unit_price: 1000,
        }],
    });
    c
}

fn engine() -> Engine {
    let mut e = Engine::new(ctx());
    (0..10).for_each(|i| e.upsert_customer(customer(i)));
    e
}

fn def(text: &str) -> SegmentDefinition {
    SegmentDefinition::parse(text).unwrap()
}

fn problems(text: &str) -> Vec<SchemaError> {
    match engine().validate(&def(text)) {
        Ok(()) => Vec::new(),
        Err(SegmentError::Schema(p)) => p,
        Err(e) => panic!("{text}: not a schema error: {e}"),
    }
}

#[test]
fn segment_a_misspelt_attribute_is_refused_with_a_suggestion() {
    let mut e = engine();
    // Without the check, `!=` on a misspelt name matches everyone: the bug this prevents.
    e.register_unchecked("plain", def("attr opt_inn != true")).unwrap();
    assert_eq!(e.count("plain").unwrap(), 10);

    let err = e.register("typo", def("attr opt_inn != true")).unwrap_err();
    assert_eq!(
        err,
        SegmentError::Schema(vec![SchemaError::UnknownAttribute {
            name: "opt_inn".into(),
            suggestion: Some("opt_in".into()),
        }])
    );
    assert!(err.to_string().contains(r#"unknown attribute "opt_inn" (did you mean "opt_in"?)"#));
    assert!(e.count("typo").is_err(), "a refused segment is not registered");

    // `=` (which silently gave nobody), `exists`, `date_attr` and `calc` are checked too;
    // a name far from every known one gets no suggestion.
    assert_eq!(
        problems(r#"attr Rank = "gold" or attr zzz exists or date_attr signup age > 1d"#),
        [
            SchemaError::UnknownAttribute { name: "Rank".into(), suggestion: Some("rank".into()) },
            SchemaError::UnknownAttribute { name: "zzz".into(), suggestion: None },
            SchemaError::UnknownAttribute { name: "signup".into(), suggestion: None },
        ]
    );
    assert_eq!(
        problems("calc attr pionts * 2 > 10"),
        [SchemaError::UnknownAttribute {
            name: "pionts".into(),
            suggestion: Some("points".into())
        }]
    );
}

#[test]
fn segment_values_of_the_wrong_type_are_refused() {
    for (text, name) in [
        (r#"attr opt_in = "true""#, "opt_in"),
        ("attr points = true", "points"),
        ("attr rank > 3", "rank"),
        (r#"attr labels = "vip""#, "labels"),
        (r#"attr rank contains "g""#, "rank"),
        (r#"attr opt_in in ["yes", 1]"#, "opt_in"),
        ("calc attr rank + 1 > 0", "rank"),
        ("date_attr points age > 1d", "points"),
    ] {
        let p = problems(text);
        assert!(
            matches!(&p[..], [SchemaError::WrongType { name: n, .. }] if n == name),
            "{text}: {p:?}"
        );
    }
    let p = problems(r#"attr opt_in = "true""#);
    assert_eq!(
        p[0].to_string(),
        r#"attribute "opt_in" holds boolean values, but the segment uses it as `= "true" (text)`"#
    );
    for ok in [
        "attr opt_in != true",
        r#"attr rank in ["gold", "silver"]"#,
        r#"attr labels contains "vip""#,
        "attr points >= 100 and attr labels exists and attr rank missing",
        "calc attr points * 2 - 1 > 10",
    ] {
        assert_eq!(problems(ok), [], "{ok}");
    }
}

#[test]
fn segment_unknown_products_skus_and_categories_are_refused() {
    assert_eq!(
        problems(
            r#"bought {product = "serun"} and orders {sku = "serum-30ml", category = "makeup"} count >= 1"#
        ),
        [
            SchemaError::UnknownName {
                kind: NameKind::Product,
                name: "serun".into(),
                suggestion: Some("serum".into()),
            },
            SchemaError::UnknownName {
                kind: NameKind::Category,
                name: "makeup".into(),
                suggestion: None,
            },
        ]
    );
    // A product the data does not mention yet can be declared (a new product, a catalogue).
    let mut e = engine();
    let d = def(r#"never bought {product = "cleanser"}"#);
    assert!(e.register("new", d.clone()).is_err());
    e.declare(&Schema::new().with_attribute("coupon", AttrKind::Bool));
    let mut products = Schema::new();
    products.add_product("cleanser");
    e.declare(&products);
    e.register("new", d).unwrap();
    e.register("declared", def("attr coupon = true")).unwrap();
    assert_eq!(e.count("declared").unwrap(), 0);
}

#[test]
fn segment_schema_from_customers_matches_the_engine_schema() {
    let cs: Vec<CustomerFacts> = (0..10).map(customer).collect();
    let s = Schema::from_customers(&cs);
    assert_eq!(s, engine().schema());
    assert_eq!(s.attribute("opt_in"), Some(vec![AttrKind::Bool]));
    assert_eq!(s.attribute_names().collect::<Vec<_>>(), ["labels", "opt_in", "points", "rank"]);
    assert!(def("attr opt_in = true").validate(&s).is_ok());
    // An attribute with values of two types accepts either.
    let mut mixed = cs[0].clone();
    mixed.attributes.insert("points".into(), AttrValue::Text("many".into()));
    let s = Schema::from_customers(cs.iter().chain([&mixed]));
    assert!(def(r#"attr points = "many" or attr points > 1"#).validate(&s).is_ok());
}

#[test]
fn segment_an_empty_engine_registers_without_a_check() {
    // Nothing to check against (segments registered before the data is loaded).
    let mut e = Engine::new(ctx());
    e.register("early", def("attr opt_in = true")).unwrap();
    e.upsert_customer(customer(0));
    assert_eq!(e.count("early").unwrap(), 1);
}
