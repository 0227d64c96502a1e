//! Every input of `fuzz/corpus/<target>/` (the seeds, and any input a fuzzer found that once
//! crashed, committed as a regression input) replayed through its target's entry point in
//! `athena_rs::fuzzing`: none may panic. The fuzzers themselves (`fuzz/`, cargo-fuzz on nightly
//! Rust) explore from these corpora; see docs/testing.md.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("gateway_body", athena_rs::fuzzing::gateway_body),
    ("rest_query", athena_rs::fuzzing::rest_query),
    ("postgrest_logic", athena_rs::fuzzing::postgrest_logic),
    ("sql_tables", athena_rs::fuzzing::sql_tables),
    ("config", athena_rs::fuzzing::config),
];

#[test]
fn every_corpus_input_runs_through_its_target_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name} has no corpus");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(input.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that panic: {failures:#?}");
}
