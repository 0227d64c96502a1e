use serde_json::json;

use super::*;
use crate::dialect::DialectOptions;

const FILE: &str = "pipelines:
  - name: copy
    source: {table_name: a, order_by: id, limit: 10, page_size: 50}
    transform: {drop: [secret]}
    sink: {table_name: b, mode: upsert, on_conflict: [id]}
";

fn opts() -> DialectOptions {
    DialectOptions {
        default_limit: 100,
        max_limit: 1000,
        camel_to_snake: false,
    }
}

fn body(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn files_parse_and_refuse_duplicates_and_unknown_keys() {
    let r = Registry::parse(FILE).unwrap();
    assert_eq!(r.definitions.keys().collect::<Vec<_>>(), vec!["copy"]);
    assert!(Registry::parse("").unwrap().definitions.is_empty());
    let twice = format!(
        "{FILE}  - name: copy\n    source: {{table_name: a}}\n    sink: {{table_name: b}}\n"
    );
    assert!(Registry::parse(&twice)
        .unwrap_err()
        .contains("share a name"));
    assert!(Registry::parse(
        "pipelines:\n  - name: x\n    source: {}\n    sink: {}\n    extra: 1\n"
    )
    .is_err());
    assert!(
        Registry::load(std::path::Path::new("/nonexistent/pipelines.yaml"))
            .unwrap()
            .definitions
            .is_empty()
    );
}

#[test]
fn request_stages_override_a_definition_field_by_field() {
    let r = Registry::parse(FILE).unwrap();
    let p = resolve(
        &body(json!({"pipeline": "copy", "source": {"limit": 3}, "sink": {"client": "other"}})),
        &r,
        &opts(),
    )
    .unwrap();
    assert_eq!(p.name.as_deref(), Some("copy"));
    assert_eq!((p.source.fetch.limit, p.source.page), (3, 50));
    assert_eq!(
        p.source.fetch.order.len(),
        1,
        "order_by kept from the definition"
    );
    assert_eq!(
        (p.sink.mode, p.sink.client.as_deref()),
        (Mode::Upsert, Some("other"))
    );
    assert_eq!(p.sink.on_conflict, vec!["id"]);
    assert_eq!(p.transform.drop, vec!["secret"]);
    assert!(!p.dry_run);
}

#[test]
fn an_inline_source_reads_every_row_unless_limited() {
    let p = resolve(
        &body(json!({"source": {"table_name": "a"}, "sink": {"table_name": "b"}, "dry_run": true})),
        &Registry::default(),
        &opts(),
    )
    .unwrap();
    assert_eq!(p.source.fetch.limit, i64::MAX as u64);
    assert_eq!(
        (p.source.page, p.sink.mode, p.dry_run),
        (DEFAULT_PAGE, Mode::Insert, true)
    );
}
