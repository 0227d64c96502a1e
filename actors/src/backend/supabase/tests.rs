//! The translation to PostgREST, its URLs and the reading of its answers, without a network.

use serde_json::{json, Map, Value};

use super::exec::url;
use super::filter::{params, quote_if_needed};
use super::response;
use super::translate::{translate, Method, PrimaryKeys, Request};
use super::Target;
use crate::backend::breaker::classify;
use crate::ops::*;

fn t(name: &str) -> TableRef {
    TableRef {
        schema: None,
        name: name.into(),
    }
}

fn cond(column: &str, op: Op, value: Value) -> Filter {
    Filter::Cond {
        column: column.into(),
        op,
        value: FilterValue::Json(value),
    }
}

fn text(column: &str, op: Op, value: &str) -> Filter {
    Filter::Cond {
        column: column.into(),
        op,
        value: FilterValue::Text(value.into()),
    }
}

fn fetch(filter: Option<Filter>) -> Fetch {
    Fetch {
        table: t("users"),
        columns: Columns::All,
        filter,
        order: vec![],
        limit: 100,
        offset: 0,
        count: false,
        page: None,
    }
}

fn pairs(f: Filter) -> Vec<(String, String)> {
    params(Some(&f)).unwrap()
}

fn p(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_operator_renders_as_postgrest_writes_it() {
    let cases = [
        (cond("a", Op::Eq, json!(1)), "eq.1"),
        (cond("a", Op::Neq, json!("x")), "neq.x"),
        (cond("a", Op::Gt, json!(1.5)), "gt.1.5"),
        (cond("a", Op::Gte, json!(2)), "gte.2"),
        (cond("a", Op::Lt, json!(3)), "lt.3"),
        (cond("a", Op::Lte, json!(4)), "lte.4"),
        (cond("a", Op::Like, json!("%da%")), "like.%da%"),
        (cond("a", Op::Ilike, json!("A%")), "ilike.A%"),
        (cond("a", Op::Is, Value::Null), "is.null"),
        (cond("a", Op::Is, json!(true)), "is.true"),
        (text("a", Op::Is, "unknown"), "is.unknown"),
        (
            cond("a", Op::In, json!([1, "b,c", "d"])),
            "in.(1,\"b,c\",d)",
        ),
        (
            Filter::Cond {
                column: "a".into(),
                op: Op::In,
                value: FilterValue::List(vec!["x".into(), "y)".into()]),
            },
            "in.(x,\"y)\")",
        ),
        (
            cond("tags", Op::Contains, json!(["red", "a b"])),
            "cs.{red,\"a b\"}",
        ),
        (cond("tags", Op::ContainedBy, json!(["x"])), "cd.{x}"),
        (
            cond("meta", Op::Contains, json!({"gift": true})),
            "cs.{\"gift\":true}",
        ),
        (cond("a", Op::Eq, json!("a,b(c).d:e")), "eq.a,b(c).d:e"),
        (cond("a", Op::Eq, json!(true)), "eq.true"),
    ];
    for (f, want) in cases {
        let column = match &f {
            Filter::Cond { column, .. } => column.clone(),
            _ => unreachable!(),
        };
        assert_eq!(pairs(f), vec![p(&column, want)], "{want}");
    }
}

#[test]
fn negation_and_groups_become_trees_with_quoted_values() {
    assert_eq!(
        pairs(Filter::Not(Box::new(cond("a", Op::Eq, json!(1))))),
        vec![p("a", "not.eq.1")]
    );
    let or = Filter::Or(vec![
        cond("status", Op::Eq, json!("a,b")),
        Filter::And(vec![
            cond("age", Op::Gt, json!(10)),
            Filter::Not(Box::new(cond("name", Op::Like, json!("x\"y\\z")))),
        ]),
        Filter::Not(Box::new(Filter::Or(vec![cond("a", Op::Is, Value::Null)]))),
    ]);
    assert_eq!(
        pairs(or),
        vec![p(
            "and",
            r#"(or(status.eq."a,b",and(age.gt.10,name.not.like."x\"y\\z"),not.or(a.is.null)))"#
        )]
    );
    let top = Filter::And(vec![
        cond("a", Op::Eq, json!(1)),
        Filter::Not(Box::new(Filter::And(vec![cond("b", Op::Lt, json!(2))]))),
        cond("c", Op::Eq, json!("\"quoted\"")),
    ]);
    assert_eq!(
        pairs(top),
        vec![
            p("a", "eq.1"),
            p("and", r#"(not.and(b.lt.2),c.eq."\"quoted\"")"#)
        ]
    );
}

#[test]
fn hostile_values_and_names_cannot_change_the_filter() {
    assert_eq!(quote_if_needed("1,id.gt.0"), "\"1,id.gt.0\"");
    assert_eq!(quote_if_needed(" pad"), "\" pad\"");
    assert_eq!(quote_if_needed(""), "\"\"");
    let e = params(Some(&cond("id&x", Op::Eq, json!(1)))).unwrap_err();
    assert!(matches!(e, OpError::InvalidRequest(_)), "{e:?}");
    let e = params(Some(&cond("a", Op::Eq, Value::Null))).unwrap_err();
    assert!(matches!(e, OpError::InvalidFilter(_)), "{e:?}");
    let e = params(Some(&cond("a", Op::Like, json!("a*b%")))).unwrap_err();
    assert!(matches!(e, OpError::InvalidFilter(_)), "{e:?}");
    let e = params(Some(&cond("a", Op::Is, json!("maybe")))).unwrap_err();
    assert!(matches!(e, OpError::InvalidFilter(_)), "{e:?}");
    let e = params(Some(&Filter::Or(vec![]))).unwrap_err();
    assert!(matches!(e, OpError::InvalidFilter(_)), "{e:?}");
    let mut deep = cond("a", Op::Eq, json!(1));
    for _ in 0..MAX_FILTER_DEPTH {
        deep = Filter::Not(Box::new(Filter::Or(vec![deep])));
    }
    assert!(matches!(
        params(Some(&deep)).unwrap_err(),
        OpError::FilterTooDeep { .. }
    ));
}

#[test]
fn urls_percent_encode_every_segment_and_parameter() {
    let target = Target {
        url: "https://x.supabase.co/base/".parse().unwrap(),
        key: "k".into(),
    };
    let mut f = fetch(Some(cond("name", Op::Eq, json!("a&b=c #+%"))));
    f.table = t("my$table");
    let req = translate(&Operation::Fetch(f), &PrimaryKeys::new(), false).unwrap();
    let u = url(&target, &req).unwrap();
    assert_eq!(
        u.as_str(),
        "https://x.supabase.co/base/rest/v1/my$table?name=eq.a%26b%3Dc%20%23%2B%25&limit=100"
    );
    assert_eq!(
        format!("{target:?}"),
        r#"Target { url: "https://x.supabase.co", key: "***" }"#
    );
}

#[test]
fn a_fetch_carries_select_aliases_order_paging_and_count() {
    let f = Fetch {
        table: TableRef {
            schema: Some("other".into()),
            name: "things".into(),
        },
        columns: Columns::List(vec![
            Selected::plain("id"),
            Selected::renamed("label", "title"),
            Selected::plain("*"),
        ]),
        filter: Some(cond("id", Op::Gte, json!(1))),
        order: vec![
            Order {
                column: "label".into(),
                descending: true,
                nulls_first: Some(false),
            },
            Order {
                column: "id".into(),
                descending: false,
                nulls_first: Some(true),
            },
        ],
        limit: 10,
        offset: 20,
        count: true,
        page: None,
    };
    let req = translate(&Operation::Fetch(f), &PrimaryKeys::new(), false).unwrap();
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.path, ["rest", "v1", "things"]);
    assert_eq!(
        req.query,
        vec![
            p("select", "id,title:label,*"),
            p("id", "gte.1"),
            p("order", "label.desc.nullslast,id.asc.nullsfirst"),
            p("limit", "10"),
            p("offset", "20"),
        ]
    );
    assert_eq!(header(&req, "Accept-Profile"), Some("other"));
    assert_eq!(header(&req, "Prefer"), Some("count=exact"));
    assert!(req.count);
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn insert(on_conflict: OnConflict) -> Insert {
    Insert {
        order: Vec::new(),
        table: t("users"),
        rows: vec![
            row(json!({"email": "a@x"})),
            row(json!({"email": "b@x", "age": 3})),
        ],
        columns: vec![],
        on_conflict,
        returning: Columns::List(vec![Selected::plain("id")]),
        default_to_null: false,
    }
}

#[test]
fn inserts_upserts_and_ignores_use_prefer_and_on_conflict() {
    let k = PrimaryKeys::new();
    let plain = translate(&Operation::Insert(insert(OnConflict::Error)), &k, false).unwrap();
    assert_eq!(plain.method, Method::Post);
    assert_eq!(
        plain.query,
        vec![p("columns", "email,age"), p("select", "id")]
    );
    assert_eq!(
        header(&plain, "Prefer"),
        Some("return=representation,missing=default")
    );
    assert_eq!(
        plain.body,
        Some(json!([{"email": "a@x"}, {"email": "b@x", "age": 3}]))
    );
    let upsert = OnConflict::Update {
        target: vec!["email".into()],
        set: None,
    };
    let up = translate(&Operation::Insert(insert(upsert)), &k, false).unwrap();
    assert!(up.query.contains(&p("on_conflict", "email")));
    assert_eq!(
        header(&up, "Prefer"),
        Some("return=representation,missing=default,resolution=merge-duplicates")
    );
    let ignore = OnConflict::Ignore { target: vec![] };
    let ig = translate(&Operation::Insert(insert(ignore)), &k, false).unwrap();
    assert!(!ig.query.iter().any(|(k, _)| k == "on_conflict"));
    assert!(header(&ig, "Prefer")
        .unwrap()
        .ends_with("resolution=ignore-duplicates"));
    let set = OnConflict::Update {
        target: vec![],
        set: Some(Map::new()),
    };
    let e = translate(&Operation::Insert(insert(set)), &k, false).unwrap_err();
    assert!(
        matches!(
            e,
            OpError::Unsupported {
                backend: "supabase",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn updates_and_deletes_need_a_filter_and_resource_id_needs_a_configured_key() {
    let k: PrimaryKeys = [("users".to_string(), vec!["id".to_string()])].into();
    let update = Update {
        order: Vec::new(),
        table: t("users"),
        set: row(json!({"name": "Z"})),
        filter: cond("id", Op::Eq, json!(1)),
        returning: Columns::All,
    };
    let req = translate(&Operation::Update(update.clone()), &k, false).unwrap();
    assert_eq!(req.method, Method::Patch);
    assert_eq!(req.query, vec![p("id", "eq.1")]);
    assert_eq!(req.body, Some(json!({"name": "Z"})));
    let unfiltered = Update {
        order: Vec::new(),
        filter: Filter::And(vec![]),
        ..update
    };
    let e = translate(&Operation::Update(unfiltered), &k, false).unwrap_err();
    assert!(matches!(e, OpError::MissingFilter(_)), "{e:?}");

    let delete = |target| {
        Operation::Delete(Delete {
            order: Vec::new(),
            table: t("users"),
            target,
            returning: Columns::All,
        })
    };
    let by_id = translate(&delete(DeleteTarget::ResourceId(json!(7))), &k, false).unwrap();
    assert_eq!(by_id.method, Method::Delete);
    assert_eq!(by_id.query, vec![p("id", "eq.7")]);
    let e = translate(
        &delete(DeleteTarget::ResourceId(json!(7))),
        &PrimaryKeys::new(),
        false,
    )
    .unwrap_err();
    assert!(matches!(e, OpError::NoPrimaryKey { .. }), "{e:?}");
    let e = translate(
        &delete(DeleteTarget::Filter(Filter::And(vec![]))),
        &k,
        false,
    )
    .unwrap_err();
    assert!(matches!(e, OpError::MissingFilter(_)), "{e:?}");
    let one = translate(
        &delete(DeleteTarget::Filter(cond("id", Op::Eq, json!(1)))),
        &k,
        true,
    )
    .unwrap();
    assert!(one.single);
    assert_eq!(
        header(&one, "Accept"),
        Some("application/vnd.pgrst.object+json")
    );
}

#[test]
fn functions_post_their_arguments_and_shape_the_result_with_parameters() {
    let rpc = Rpc {
        function: TableRef {
            schema: Some("api".into()),
            name: "adults".into(),
        },
        args: row(json!({"min_age": 18})),
        columns: Columns::List(vec![Selected::plain("name")]),
        filter: Some(cond("status", Op::Eq, json!("active"))),
        order: vec![Order {
            column: "name".into(),
            descending: false,
            nulls_first: None,
        }],
        limit: 5,
        offset: 0,
        count: true,
    };
    let req = translate(&Operation::Rpc(rpc), &PrimaryKeys::new(), false).unwrap();
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.path, ["rest", "v1", "rpc", "adults"]);
    assert_eq!(
        req.query,
        vec![
            p("select", "name"),
            p("status", "eq.active"),
            p("order", "name.asc"),
            p("limit", "5")
        ]
    );
    assert_eq!(req.body, Some(json!({"min_age": 18})));
    assert_eq!(header(&req, "Content-Profile"), Some("api"));
    assert_eq!(header(&req, "Prefer"), Some("count=exact"));
}

#[test]
fn what_postgrest_cannot_do_is_refused_naming_the_backend() {
    let k = PrimaryKeys::new();
    for op in [
        Operation::Sql(Sql {
            query: "SELECT 1".into(),
            params: vec![],
        }),
        Operation::ListTables,
        Operation::DescribeTable(t("users")),
    ] {
        let e = translate(&op, &k, false).unwrap_err();
        assert!(
            matches!(
                e,
                OpError::Unsupported {
                    backend: "supabase",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let mut f = fetch(None);
    f.table = t("users?id=neq.0#");
    assert!(matches!(
        translate(&Operation::Fetch(f), &k, false).unwrap_err(),
        OpError::InvalidRequest(_)
    ));
}

#[test]
fn answers_become_rows_totals_and_errors() {
    let out = response::rows(r#"[{"a":1},{"a":2}]"#.into(), Some("0-1/57"), false).unwrap();
    assert_eq!((out.row_count, out.total), (2, Some(57)));
    let out = response::rows("[]".into(), Some("*/0"), false).unwrap();
    assert_eq!((out.row_count, out.total), (0, Some(0)));
    let out = response::rows(r#"{"a":1}"#.into(), None, true).unwrap();
    assert_eq!((out.rows_json.as_str(), out.row_count), (r#"[{"a":1}]"#, 1));
    assert_eq!(response::total(Some("0-9/*")), None);

    // Each error with what it means for the client's breaker.
    let err = |status, body: &str| {
        let e = response::error(status, body, "https://x", "users");
        let counts = classify(&e).is_some();
        (e, counts)
    };
    let body = |code: &str, msg: &str| {
        json!({"code": code, "message": msg, "details": null, "hint": null}).to_string()
    };
    assert!(matches!(
        err(404, &body("42P01", "relation does not exist")).0,
        OpError::UnknownTable { .. }
    ));
    assert!(matches!(
        err(404, &body("PGRST205", "Could not find the table")).0,
        OpError::UnknownTable { .. }
    ));
    match err(400, &body("42703", "column users.nope does not exist")).0 {
        OpError::UnknownColumn { column, .. } => assert_eq!(column, "users.nope"),
        other => panic!("{other:?}"),
    }
    match err(400, &body("PGRST204", "Could not find the 'nope' column")).0 {
        OpError::UnknownColumn { column, .. } => assert_eq!(column, "nope"),
        other => panic!("{other:?}"),
    }
    match err(409, &body("23505", "duplicate key")) {
        (OpError::Db(f), false) => assert_eq!(f.sqlstate, "23505"),
        other => panic!("{other:?}"),
    }
    let not_one = json!({"code": "PGRST116", "message": "m", "details": "The result contains 3 rows", "hint": null});
    assert!(matches!(
        err(406, &not_one.to_string()).0,
        OpError::NotOneRow { rows: 3 }
    ));
    assert!(matches!(
        err(401, &body("PGRST301", "JWT invalid")).0,
        OpError::BackendAuth(_)
    ));
    assert!(matches!(
        err(403, &body("42501", "permission denied")).0,
        OpError::BackendAuth(_)
    ));
    assert!(matches!(err(401, "").0, OpError::BackendAuth(_)));
    assert!(matches!(
        err(503, &body("PGRST001", "no connection")),
        (OpError::Unavailable(_), true)
    ));
    assert!(matches!(
        err(502, "<html>bad gateway</html>"),
        (OpError::Unavailable(_), true)
    ));
    assert!(matches!(err(504, ""), (OpError::BackendTimeout(_), true)));
    assert!(matches!(
        err(500, &body("57014", "canceling statement")),
        (OpError::StatementTimeout, false)
    ));
    assert!(matches!(
        err(404, "<html>not found</html>"),
        (OpError::BadBackendResponse(_), false)
    ));
    assert!(matches!(
        err(400, &body("PGRST100", "failed to parse filter")).0,
        OpError::InvalidFilter(_)
    ));
}
