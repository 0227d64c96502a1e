use athena_actors::ops::{FilterValue, Op};
use serde_json::json;

use super::*;

fn pairs(qs: &[(&str, &str)]) -> Vec<(String, String)> {
    qs.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn q(qs: &[(&str, &str)]) -> Result<Query, ApiError> {
    query(&pairs(qs))
}

fn code(r: Result<impl std::fmt::Debug, ApiError>) -> Code {
    r.expect_err("an error").code
}

fn users() -> TableRef {
    TableRef {
        schema: None,
        name: "users".into(),
    }
}

fn text(c: &str, op: Op, v: &str) -> Filter {
    Filter::Cond {
        column: c.into(),
        op,
        value: FilterValue::Text(v.into()),
    }
}

#[test]
fn filters_of_one_column_are_all_kept_and_operators_are_whitelisted() {
    let parsed = q(&[
        ("age", "gte.18"),
        ("age", "lt.65"),
        ("name", "not.ilike.*bo*"),
    ])
    .unwrap();
    assert_eq!(
        parsed.filters,
        vec![
            text("age", Op::Gte, "18"),
            text("age", Op::Lt, "65"),
            Filter::Not(Box::new(text("name", Op::Ilike, "%bo%"))),
        ]
    );
    // `*` is a wildcard only in like patterns.
    assert_eq!(
        q(&[("name", "eq.a*b")]).unwrap().filters,
        vec![text("name", Op::Eq, "a*b")]
    );
    assert_eq!(code(q(&[("age", "regex.1")])), Code::InvalidFilter);
    assert_eq!(code(q(&[("age", "18")])), Code::InvalidFilter);
    assert_eq!(code(q(&[("age", "fts.x")])), Code::InvalidFilter);
}

#[test]
fn logic_trees_parse_with_negation_and_need_parentheses() {
    let parsed = q(&[
        ("or", "(a.eq.1,and(b.gt.2,c.is.null))"),
        ("not.and", "(d.eq.x,e.eq.y)"),
    ])
    .unwrap();
    assert!(matches!(&parsed.filters[0], Filter::Or(p) if p.len() == 2));
    assert!(matches!(&parsed.filters[1], Filter::Not(inner) if matches!(**inner, Filter::And(_))));
    assert_eq!(code(q(&[("or", "a.eq.1,b.eq.2")])), Code::InvalidFilter);
    assert_eq!(code(q(&[("or", "()")])), Code::InvalidFilter);
}

#[test]
fn select_takes_aliases_and_star_and_refuses_embedding_casts_and_bad_aliases() {
    let parsed = q(&[("select", "id,mail:email,*")]).unwrap();
    assert_eq!(
        parsed.select,
        Columns::List(vec![
            "id".into(),
            athena_actors::ops::Selected::renamed("email", "mail"),
            "*".into()
        ])
    );
    assert_eq!(q(&[("select", "*")]).unwrap().select, Columns::All);
    assert_eq!(q(&[("select", "")]).unwrap().select, Columns::All);
    let quoted = q(&[("select", "\"my key\":\"odd,name\"")]).unwrap();
    assert_eq!(
        quoted.select,
        Columns::List(vec![athena_actors::ops::Selected::renamed(
            "odd,name", "my key"
        )])
    );
    for bad in [
        "id,orders(*)",
        "id::text",
        "meta->a",
        "a'b:id",
        "a\"b:id",
        "x:*",
        "id,",
        "...orders(*)",
        "count()",
    ] {
        assert_eq!(code(q(&[("select", bad)])), Code::InvalidField, "{bad}");
    }
    // A hostile name is only a name: the catalog refuses it later.
    assert_eq!(
        q(&[("select", "id;drop table x")]).unwrap().select,
        Columns::List(vec!["id;drop table x".into()])
    );
}

#[test]
fn order_terms_take_direction_and_nulls() {
    let parsed = q(&[("order", "age.desc.nullslast,name,\"a.b\".nullsfirst")]).unwrap();
    assert_eq!(
        parsed.order,
        vec![
            Order {
                column: "age".into(),
                descending: true,
                nulls_first: Some(false)
            },
            Order {
                column: "name".into(),
                descending: false,
                nulls_first: None
            },
            Order {
                column: "a.b".into(),
                descending: false,
                nulls_first: Some(true)
            },
        ]
    );
    for bad in [
        "id.up",
        "id.asc.desc",
        "id);drop table x",
        "",
        "rel(id).asc",
    ] {
        assert_eq!(code(q(&[("order", bad)])), Code::InvalidField, "{bad:?}");
    }
}

#[test]
fn paging_parameters_are_numbers_given_once() {
    assert_eq!(code(q(&[("limit", "-1")])), Code::InvalidField);
    assert_eq!(code(q(&[("limit", "1; drop")])), Code::InvalidField);
    assert_eq!(
        code(q(&[("limit", "1"), ("limit", "2")])),
        Code::InvalidField
    );
    let f = fetch(
        users(),
        q(&[("limit", "5000"), ("offset", "3")]).unwrap(),
        &Prefer::default(),
        None,
        1000,
    )
    .unwrap();
    assert_eq!((f.limit, f.offset), (1000, 3), "capped at the maximum");
    let f = fetch(
        users(),
        q(&[("limit", "5")]).unwrap(),
        &Prefer::default(),
        Some(Range {
            first: 10,
            last: Some(19),
        }),
        1000,
    )
    .unwrap();
    assert_eq!((f.limit, f.offset), (10, 10), "the Range header wins");
    assert!(
        fetch(
            users(),
            q(&[("count", "exact")]).unwrap(),
            &Prefer::default(),
            None,
            1000
        )
        .unwrap()
        .count
    );
    // `count` with any other value is a filter on a column named count.
    assert_eq!(
        q(&[("count", "eq.3")]).unwrap().filters,
        vec![text("count", Op::Eq, "3")]
    );
}

#[test]
fn range_headers_parse_or_are_unsatisfiable() {
    assert_eq!(range(None, None).unwrap(), None);
    assert_eq!(
        range(Some("0-9"), Some("items")).unwrap(),
        Some(Range {
            first: 0,
            last: Some(9)
        })
    );
    assert_eq!(
        range(Some("items=5-"), None).unwrap(),
        Some(Range {
            first: 5,
            last: None
        })
    );
    for bad in ["9-0", "a-b", "5", "-5", "99999999999999999999-"] {
        assert_eq!(
            code(range(Some(bad), None)),
            Code::RangeNotSatisfiable,
            "{bad}"
        );
    }
    assert_eq!(
        code(range(Some("0-9"), Some("bytes"))),
        Code::RangeNotSatisfiable
    );
    // A byte range says what is wrong with it: its unit, not its bounds.
    let e = range(Some("bytes=0-0"), None).unwrap_err();
    assert_eq!(e.code, Code::RangeNotSatisfiable);
    assert!(
        e.detail.contains("unit \"bytes\" is not items"),
        "{}",
        e.detail
    );
    assert_eq!(
        range(Some("ITEMS=0-0"), None).unwrap(),
        Some(Range {
            first: 0,
            last: Some(0)
        })
    );
}

#[test]
fn prefer_reads_every_preference_and_refuses_what_cannot_be_ignored() {
    let p = prefer([
        "return=representation, count=exact",
        "resolution=merge-duplicates,missing=default,foo=bar",
    ])
    .unwrap();
    assert_eq!(
        p,
        Prefer {
            ret: Return::Representation,
            count: true,
            resolution: Some(Resolution::MergeDuplicates),
            missing_default: true,
        }
    );
    assert_eq!(prefer([]).unwrap(), Prefer::default());
    assert_eq!(
        code(prefer(["handling=strict,foo=bar"])),
        Code::InvalidField
    );
    assert_eq!(code(prefer(["max-affected=1"])), Code::InvalidField);
    assert_eq!(code(prefer(["tx=rollback"])), Code::InvalidField);
}

#[test]
fn accept_chooses_array_or_object_and_refuses_the_rest() {
    assert_eq!(media(None).unwrap(), Media::default());
    assert!(
        media(Some("application/vnd.pgrst.object+json"))
            .unwrap()
            .object
    );
    let m = media(Some("application/vnd.pgrst.array+json;nulls=stripped")).unwrap();
    assert!(m.strip_nulls && !m.object);
    assert!(!media(Some("text/html, */*;q=0.8")).unwrap().object);
    assert_eq!(code(media(Some("text/csv"))), Code::NotAcceptable);
}

#[test]
fn writes_take_their_shapes_and_refuse_what_they_cannot_honour() {
    let p = Prefer {
        resolution: Some(Resolution::IgnoreDuplicates),
        ..Prefer::default()
    };
    let ins = insert(
        users(),
        q(&[("on_conflict", "email"), ("columns", "\"email\",\"name\"")]).unwrap(),
        &p,
        json!([{"email": "a"}, {"email": "b", "name": "B", "age": 3}]),
    )
    .unwrap();
    assert_eq!(ins.rows.len(), 2);
    assert_eq!(ins.columns, ["email", "name"]);
    assert_eq!(
        ins.on_conflict,
        OnConflict::Ignore {
            target: vec!["email".into()]
        }
    );
    assert!(ins.default_to_null);
    assert!(insert(users(), Query::default(), &p, json!([]))
        .unwrap()
        .rows
        .is_empty());
    for body in [
        json!("x"),
        json!(1),
        json!(null),
        json!([1]),
        json!([{"a": 1}, "b"]),
    ] {
        assert_eq!(
            code(insert(users(), Query::default(), &p, body.clone())),
            Code::InvalidBody,
            "{body}"
        );
    }
    assert_eq!(
        code(insert(
            users(),
            q(&[("id", "eq.1")]).unwrap(),
            &p,
            json!({})
        )),
        Code::InvalidField
    );

    let filtered = || q(&[("id", "eq.1")]).unwrap();
    let u = update(users(), filtered(), json!({"name": "x"})).unwrap();
    assert_eq!(u.filter, text("id", Op::Eq, "1"));
    let u = update(
        users(),
        q(&[("id", "eq.1"), ("columns", "name,age")]).unwrap(),
        json!({"name": "x", "email": "ignored"}),
    )
    .unwrap();
    assert_eq!(Value::Object(u.set), json!({"name": "x", "age": null}));
    assert_eq!(
        code(update(users(), Query::default(), json!({"name": "x"}))),
        Code::MissingFilter
    );
    assert_eq!(
        code(update(users(), filtered(), json!([{"name": "x"}]))),
        Code::InvalidBody
    );
    assert_eq!(
        code(update(users(), filtered(), json!({}))),
        Code::InvalidBody
    );
    assert_eq!(
        code(update(
            users(),
            q(&[("id", "gt.1"), ("limit", "1")]).unwrap(),
            json!({"name": "x"})
        )),
        Code::InvalidField
    );
    assert_eq!(code(delete(users(), Query::default())), Code::MissingFilter);
    assert_eq!(
        code(delete(
            users(),
            q(&[("id", "gt.1"), ("offset", "1")]).unwrap()
        )),
        Code::InvalidField
    );
    // `order` orders the rows a write returns.
    let d = delete(users(), q(&[("id", "gt.1"), ("order", "id.desc")]).unwrap()).unwrap();
    assert_eq!(d.order.len(), 1);
    assert!(d.order[0].descending);
    assert!(matches!(
        delete(users(), filtered()).unwrap().target,
        DeleteTarget::Filter(_)
    ));
}

#[test]
fn tables_come_from_the_path_or_the_profile_header() {
    assert_eq!(
        table("things", Some("other")).unwrap(),
        TableRef {
            schema: Some("other".into()),
            name: "things".into()
        }
    );
    assert_eq!(
        table("other.things", Some("public"))
            .unwrap()
            .schema
            .as_deref(),
        Some("other")
    );
    assert_eq!(table("users", None).unwrap(), users());
    assert_eq!(code(table(" ", None)), Code::InvalidField);
}

#[test]
fn filter_keys_naming_related_tables_or_json_paths_are_refused() {
    assert_eq!(code(q(&[("orders.total", "gt.1")])), Code::InvalidFilter);
    assert_eq!(code(q(&[("meta->>a", "eq.1")])), Code::InvalidFilter);
    assert_eq!(code(q(&[("orders.limit", "1")])), Code::InvalidFilter);
    assert_eq!(
        q(&[("\"odd.name\"", "eq.1")]).unwrap().filters,
        vec![text("odd.name", Op::Eq, "1")]
    );
}
