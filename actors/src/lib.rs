//! Athena's actor system: the client registry, one pool actor per backend client, the request
//! statistics, the cache, change data capture, and the backend-neutral operation model the
//! pools execute.
//!
//! This crate knows nothing about HTTP. The edges (actix-web routes, the CLI) parse caller input
//! into [`ops::Operation`]s, look the client up in the [`registry`] snapshot and run the operation
//! through that client's handle ([`backend::postgres::PoolHandle`] and its peers): on the caller's runtime,
//! with the pool, schema and circuit breaker its actor published, within the handle's in-flight
//! bound. Only what changes that state (schema loads, breaker reports) goes through the actor's
//! mailbox.

pub mod backend;
pub mod backup;
pub mod cache;
pub mod cdc;
pub mod civil;
pub mod keys;
pub mod ops;
pub mod pg;

pub mod provision;
pub mod registry;
pub mod stats;
pub mod system;

pub use system::{spawn_all, ActorHandles};
