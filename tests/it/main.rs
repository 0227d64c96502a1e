//! Every integration test, in one binary: the harness in `common` is compiled once and the
//! binary linked once. Each module tests one area against real services (PostgreSQL, Redis and
//! what `scripts/test.sh` installs), and a test's name says the behaviour it proves.

mod common;

mod api_keys;
mod backups;
mod cache;
mod catalog;
mod cdc;
mod cli;
mod compose;
mod cors;
mod faults;
mod fuzz_corpus;
mod gateway_fetch;
mod gateway_write;
mod hostile;
mod nul_fields;
mod openapi;
mod pipeline_memory;
mod pipelines;
mod post_processing;
mod provision;
mod raw_sql;
mod rest;
mod rpc;
mod schemathesis;
mod scylla;
mod sdk;
mod server;
mod shutdown;
mod statistics;
mod supabase;
mod text_and_races;
mod tls;
mod types;
mod upgrade;
mod ws;
mod ws_cdc;
mod ws_contract;
mod ws_limits;
