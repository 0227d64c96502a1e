//! Entry points for fuzzing the parsers that read what callers and operators send: each takes
//! arbitrary bytes and must return without panicking, whatever they hold. The cargo-fuzz targets
//! in `fuzz/` call them under libFuzzer; `tests/it/fuzz_corpus.rs` replays every input of
//! `fuzz/corpus/` (seeds and any crash found since) through them on every test run.

use serde_json::Value;

use crate::dialect::{self, DialectOptions};

/// Options as a server with the default gateway settings parses requests.
fn options(camel_to_snake: bool) -> DialectOptions {
    DialectOptions {
        default_limit: 100,
        max_limit: 1000,
        camel_to_snake,
    }
}

/// The gateway's condition dialect and the whole fetch, update and delete bodies around it:
/// `data` as JSON (`{"table_name", "conditions", "order_by", …}` or a bare list of conditions).
pub fn gateway_body(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = dialect::parse_conditions(Some(&value), "conditions");
    if let Value::Object(body) = &value {
        for camel in [false, true] {
            let opts = options(camel);
            let _ = dialect::fetch(body, &opts);
            let _ = dialect::update(body, &opts);
            let _ = dialect::delete(body, &opts);
            let _ = dialect::insert(body, &opts);
            let _ = crate::post::parse(body, None);
        }
        let _ = dialect::sql(body);
    }
}

/// The PostgREST dialect of `/rest/v1`: `data` as a query string (`select=…&age=gt.3&or=(…)`),
/// each pair also read alone as `select` and `order`.
pub fn rest_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    if let Ok(q) = dialect::rest::query(&pairs) {
        let table = athena_actors::ops::TableRef {
            schema: None,
            name: "t".into(),
        };
        let prefer = dialect::rest::Prefer::default();
        let _ = dialect::rest::insert(table.clone(), q.clone(), &prefer, Value::Array(Vec::new()));
        let _ = dialect::rest::delete(table, q);
    }
    for (k, v) in &pairs {
        let _ = dialect::rest::query(&[("select".to_string(), v.clone())]);
        let _ = dialect::rest::query(&[("order".to_string(), v.clone())]);
        let _ = dialect::rest::query(&[(k.clone(), v.clone())]);
    }
}

/// PostgREST's logic strings: `or=(a.eq.1,and(b.gt.2,c.not.in.(x,"y,z")))` and single items.
pub fn postgrest_logic(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = athena_actors::ops::postgrest::parse_list(&text);
    let _ = athena_actors::ops::postgrest::parse_item(&text);
    let _ = athena_actors::ops::postgrest::split_top_level(&text);
    let _ = athena_actors::ops::postgrest::unquote(&text);
    if let Some((column, rest)) = text.split_once('=') {
        let _ = athena_actors::ops::postgrest::parse_op_value(column, rest);
    }
}

/// The scanner that finds the tables a raw SQL statement names (for cache invalidation).
pub fn sql_tables(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(names) = athena_actors::cache::named::tables_named(&text) {
        assert!(names.len() <= athena_actors::cache::named::MAX_NAMES);
    }
}

/// The config file, of today's shape or athena_rs 2.0.2's, up to its typed form: YAML, the 2.0.2
/// rewrite, `${VAR}` expansion (with no variable set) and the schema. Validation, which reads
/// files the config names, is left to the tests.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |_: &str| None;
    let path = std::path::Path::new("fuzz.yaml");
    let Ok(doc) = crate::config::Document::parse(text, path, &env) else {
        return;
    };
    if let Some(migrated) = &doc.migrated {
        let rendered = migrated.render();
        // What `config migrate` writes is YAML that parses again.
        let again = crate::config::Document::parse(&rendered, path, &env)
            .expect("a migrated document parses");
        assert!(
            again.migrated.is_none(),
            "a migrated document is in today's shape"
        );
    }
    let mut value = doc.value;
    if crate::config::interpolate::interpolate(&mut value, &mut Vec::new(), &env).is_ok() {
        let _: Result<crate::config::FileConfig, _> = serde_yaml::from_value(value);
    }
}
