//! The OpenAPI documents are part of the contract: `openapi.yaml` must describe exactly the routes
//! the server registers, carry the crate version, list every error code the server can answer
//! with, and be a valid OpenAPI 3.1 document (as must `openapi-wss.yaml`, which lists the same
//! codes; tests/ws.rs validates real socket traffic against its schemas). No server is started:
//! the route list comes from `athena_rs::http::routes()`, the same table actix serves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

const HTTP_SPEC: &str = "openapi.yaml";
const WSS_SPEC: &str = "openapi-wss.yaml";

/// The method keys of an OpenAPI path item; other keys (`parameters`, `summary`, …) are not
/// operations.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const VALIDATOR_MISSING: &str =
    "openapi-spec-validator is missing: run scripts/test.sh, or pip install openapi-spec-validator";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads the document from the source tree at run time, so an edited file is checked without a
/// rebuild.
fn load(name: &str) -> Value {
    let path = manifest_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"))
}

fn str_at<'a>(doc: &'a Value, keys: &[&str], name: &str) -> &'a str {
    let mut v = doc;
    for k in keys {
        v = v
            .get(*k)
            .unwrap_or_else(|| panic!("{name} has no {}", keys.join(".")));
    }
    v.as_str()
        .unwrap_or_else(|| panic!("{name}: {} is not a string", keys.join(".")))
}

fn assert_version_and_dialect(name: &str) {
    let doc = load(name);
    let openapi = str_at(&doc, &["openapi"], name);
    assert!(
        openapi.starts_with("3.1"),
        "{name}: openapi is {openapi:?}, expected 3.1.x"
    );
    let version = str_at(&doc, &["info", "version"], name);
    assert_eq!(
        version,
        env!("CARGO_PKG_VERSION"),
        "{name}: info.version must equal the crate version in Cargo.toml"
    );
}

#[test]
fn http_spec_is_openapi_3_1_with_the_crate_version() {
    assert_version_and_dialect(HTTP_SPEC);
}

#[test]
fn wss_spec_is_openapi_3_1_with_the_crate_version() {
    assert_version_and_dialect(WSS_SPEC);
}

/// `(METHOD, path)` for every operation of the document.
fn spec_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_mapping)
        .expect("openapi.yaml has a paths mapping");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path keys are strings");
        let item = item
            .as_mapping()
            .unwrap_or_else(|| panic!("path item {path} is not a mapping"));
        for key in item.keys() {
            let key = key.as_str().expect("path item keys are strings");
            if METHODS.contains(&key) {
                out.insert((key.to_ascii_uppercase(), path.to_string()));
            }
        }
    }
    out
}

#[test]
fn http_spec_documents_exactly_the_registered_routes() {
    let registered: BTreeSet<(String, String)> =
        athena_rs::http::routes().list().into_iter().collect();
    assert!(!registered.is_empty(), "the route table is empty");
    let documented = spec_routes(&load(HTTP_SPEC));

    let mut problems = Vec::new();
    for (method, path) in registered.difference(&documented) {
        problems.push(format!(
            "registered but missing from openapi.yaml: {method} {path}"
        ));
    }
    for (method, path) in documented.difference(&registered) {
        problems.push(format!(
            "in openapi.yaml but not registered: {method} {path}"
        ));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_http_operation_has_a_success_response() {
    let doc = load(HTTP_SPEC);
    let mut problems = Vec::new();
    for (method, path) in spec_routes(&doc) {
        let responses = doc["paths"][path.as_str()][method.to_ascii_lowercase().as_str()]
            .get("responses")
            .and_then(Value::as_mapping);
        let has_2xx = responses.is_some_and(|r| {
            r.keys()
                .filter_map(|k| {
                    k.as_str()
                        .map(str::to_string)
                        .or_else(|| k.as_u64().map(|n| n.to_string()))
                })
                // 101 Switching Protocols is the success of a WebSocket upgrade.
                .any(|k| k.starts_with('2') || k == "101")
        });
        // A route kept only to say it is gone (athena_rs 2.0.2's) answers 410 and nothing else.
        let gone = responses.is_some_and(|r| {
            r.len() == 1 && r.keys().next().and_then(|k| k.as_str()) == Some("410")
        });
        if !has_2xx && !gone {
            problems.push(format!("{method} {path} declares no 2xx (or 101) response"));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Every error code the server declares (its one table of codes).
fn server_error_codes() -> BTreeSet<String> {
    athena_rs::http::error::Code::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect()
}

/// Every `code` property with an `enum`, anywhere in the document, with where it was found.
fn code_enums(v: &Value, at: &str, out: &mut Vec<(String, BTreeSet<String>)>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let key = k.as_str().unwrap_or("?");
                let here = format!("{at}/{key}");
                if key == "code" {
                    if let Some(list) = child.get("enum").and_then(Value::as_sequence) {
                        let set = list
                            .iter()
                            .map(|c| {
                                c.as_str()
                                    .expect("code enum values are strings")
                                    .to_string()
                            })
                            .collect();
                        out.push((here.clone(), set));
                    }
                }
                code_enums(child, &here, out);
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                code_enums(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn error_envelope_lists_every_error_code_the_server_produces() {
    let server = server_error_codes();
    let doc = load(HTTP_SPEC);
    assert!(
        doc["components"]["schemas"]["ErrorEnvelope"]["properties"]["code"]
            .get("enum")
            .is_some(),
        "components.schemas.ErrorEnvelope.properties.code must carry an enum of the error codes"
    );
    let mut enums = Vec::new();
    code_enums(&doc, "#", &mut enums);
    let mut problems = Vec::new();
    for (at, documented) in &enums {
        for missing in server.difference(documented) {
            problems.push(format!("{at}: missing error code {missing:?}"));
        }
        for extra in documented.difference(&server) {
            problems.push(format!(
                "{at}: {extra:?} is not an error code the server declares"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn wss_spec_lists_every_error_code_the_server_produces() {
    let server = server_error_codes();
    let doc = load(WSS_SPEC);
    let documented: BTreeSet<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_sequence()
        .expect("openapi-wss.yaml: components.schemas.ErrorCode carries an enum of the error codes")
        .iter()
        .map(|c| {
            c.as_str()
                .expect("code enum values are strings")
                .to_string()
        })
        .collect();
    let mut problems = Vec::new();
    for missing in server.difference(&documented) {
        problems.push(format!("ErrorCode: missing error code {missing:?}"));
    }
    for extra in documented.difference(&server) {
        problems.push(format!(
            "ErrorCode: {extra:?} is not an error code the server declares"
        ));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Runs openapi-spec-validator on one file; fails loudly when the validator is not installed.
fn validate_with_openapi_spec_validator(name: &str) {
    let dir = manifest_dir();
    let probe = Command::new("python3")
        .current_dir(&dir)
        .args(["-c", "import openapi_spec_validator"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{VALIDATOR_MISSING}\n(python3 said: {})",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("{VALIDATOR_MISSING}\n(python3 could not be started: {e})"),
    }
    assert!(Path::new(&dir.join(name)).is_file(), "{name} is missing");
    let script = format!(
        "from openapi_spec_validator import validate; \
         from openapi_spec_validator.readers import read_from_filename; \
         validate(read_from_filename('{name}')[0])"
    );
    let out = Command::new("python3")
        .current_dir(&dir)
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{name} is not a valid OpenAPI document:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn http_spec_passes_openapi_spec_validator() {
    validate_with_openapi_spec_validator(HTTP_SPEC);
}

#[test]
fn wss_spec_passes_openapi_spec_validator() {
    validate_with_openapi_spec_validator(WSS_SPEC);
}
