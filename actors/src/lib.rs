//! Athena's actor system: the client registry, one pool actor per backend client, the request
//! statistics, the cache, change data capture, and the backend-neutral operation model the
//! pools execute.
//!
//! This crate knows nothing about HTTP. The edges (actix-web routes, the CLI) parse caller input
//! into [`ops::Operation`]s, look the client up in the [`registry`] snapshot and send the
//! operation to that client's [`pool::PoolActor`] with a bounded mailbox.

pub mod backend;
pub mod backup;
pub mod cache;
pub mod cdc;
pub mod civil;
pub mod keys;
pub mod ops;
pub mod pg;
pub mod pool;
pub mod provision;
pub mod registry;
pub mod stats;
pub mod system;

pub use system::{spawn_all, ActorHandles};
