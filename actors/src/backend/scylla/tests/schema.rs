//! The catalog: column types as `system_schema` writes them, user-defined types, index targets.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::backend::scylla::schema::IndexKind;
use crate::backend::scylla::types::{resolve_udts, Udt};

#[test]
fn catalog_types_parse_with_frozen_collections_tuples_vectors_and_udts() {
    let udts = resolve_udts(
        "ks",
        vec![
            (
                "outer".into(),
                vec!["inner".into()],
                vec!["frozen<inner>".into()],
            ),
            (
                "inner".into(),
                vec!["n".into(), "Tag".into()],
                vec!["int".into(), "text".into()],
            ),
            ("broken".into(), vec!["x".into()], vec!["nosuchtype".into()]),
        ],
    );
    assert!(udts.contains_key("outer") && udts.contains_key("inner"));
    assert!(!udts.contains_key("broken"));
    let p = |s: &str| CqlType::parse(s, "ks", &udts);
    assert_eq!(
        p("frozen<map<text, list<int>>>").unwrap(),
        CqlType::Map(
            Box::new(CqlType::Text),
            Box::new(CqlType::List(Box::new(CqlType::Int)))
        )
    );
    assert_eq!(
        p("tuple<int, frozen<set<varchar>>, timeuuid>").unwrap(),
        CqlType::Tuple(vec![
            CqlType::Int,
            CqlType::Set(Box::new(CqlType::Text)),
            CqlType::Timeuuid
        ])
    );
    assert_eq!(
        p("vector<float, 3>").unwrap(),
        CqlType::Vector(Box::new(CqlType::Float), 3)
    );
    match p("frozen<outer>").unwrap() {
        CqlType::Udt(u) => {
            assert_eq!(u.name, "outer");
            assert!(matches!(&u.fields[0].1, CqlType::Udt(i) if i.fields[1].0 == "Tag"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p("'org.example.Custom'").unwrap(),
        CqlType::Custom("org.example.Custom".into())
    );
    for bad in [
        "map<int>",
        "list<int",
        "nosuch",
        "list<int> extra",
        "\"unterminated",
        "",
    ] {
        assert!(p(bad).is_err(), "{bad}");
    }
    let deep = format!("{}int{}", "list<".repeat(40), ">".repeat(40));
    assert!(p(&deep).is_err());
    let quoted: HashMap<String, Arc<Udt>> = HashMap::from([(
        "My Type".to_string(),
        Arc::new(Udt {
            keyspace: "ks".into(),
            name: "My Type".into(),
            fields: vec![],
        }),
    )]);
    assert!(matches!(
        CqlType::parse(r#"frozen<"My Type">"#, "ks", &quoted),
        Ok(CqlType::Udt(_))
    ));
    assert_eq!(
        CqlType::Map(Box::new(CqlType::Text), Box::new(CqlType::Int)).cql_name(),
        "map<text, int>"
    );
}

#[test]
fn index_targets_say_which_filters_they_serve() {
    let i = |t: &str| Index::from_target("i", t).unwrap();
    assert_eq!(
        (i("kind").column, i("kind").kind),
        ("kind".to_string(), IndexKind::Global)
    );
    assert_eq!(i("values(tags)").kind, IndexKind::Values);
    assert_eq!(i("keys(m)").kind, IndexKind::Other);
    assert_eq!(i("\"Odd\"\"Name\"").column, "Odd\"Name");
    let local = i(r#"{"pk":["a"],"ck":["b"]}"#);
    assert_eq!((local.column.as_str(), local.kind), ("b", IndexKind::Local));
    assert!(Index::from_target("i", "{not json").is_none());
    let e = events();
    assert_eq!(e.index_of("kind"), Some(IndexKind::Global));
    assert_eq!(e.index_of("payload"), None);
    let names: Vec<&str> = e.primary_key().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["tenant", "day", "ts", "id"]);
}

/// Made-up type texts (a fixed pseudo-random sequence of type-ish tokens): each parses or is a
/// reason, never a panic.
#[test]
fn made_up_type_texts_never_panic() {
    let tokens = [
        "frozen", "list", "set", "map", "tuple", "vector", "int", "text", "<", ">", ",", " ", "\"",
        "'", "3", "é", "addr",
    ];
    let udts = resolve_udts(
        "ks",
        vec![("addr".into(), vec!["a".into()], vec!["int".into()])],
    );
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 12) as usize;
        let mut s = String::new();
        let mut x = seed;
        for _ in 0..n {
            s.push_str(tokens[(x % tokens.len() as u64) as usize]);
            x = x.rotate_left(7).wrapping_mul(31);
        }
        let _ = CqlType::parse(&s, "ks", &udts);
        let _ = Index::from_target("i", &s);
    }
}
