//! Athena: one HTTP gateway in front of many databases.
//!
//! The library holds the edges and the wiring; `main.rs` only parses the command line and calls
//! [`cli::run`]. Tests start the same server with [`start`].

pub mod cli;
pub mod config;
pub mod dialect;
pub mod fuzzing;
pub mod http;
pub mod pipelines;
pub mod post;
pub mod sdk;
pub mod shutdown;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use athena_actors::ActorHandles;

use crate::config::Settings;

use crate::http::AppState;

/// Connections the admin and statistics routes share to the logging database.
const LOGGING_DB_CONNECTIONS: usize = 4;
/// The reference SDK's module path (`athena_rs::client::query_builder::OrderDirection`).
pub use crate::sdk as client;
pub use crate::sdk::{AthenaClient, AthenaClientBuilder, BackendType, QueryResult, SdkError};

/// The README's Rust examples, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The SDK document's Rust examples, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../docs/sdk.md")]
pub struct SdkDoctests;

/// A started server: its address, its actors, the future that runs it, and how its WebSocket
/// sessions are told it is stopping.
pub struct Running {
    pub addr: SocketAddr,
    pub actors: ActorHandles,
    pub server: Server,
    pub drain: shutdown::Drain,
}

/// Starts the actors (one `spawn_all`) and binds the HTTP server. Must be called inside an actix
/// system; await (or spawn) `Running::server` to serve, or hand `Running` to
/// [`shutdown::serve_until_signal`]. The server does not act on signals by itself.
pub fn start(settings: Settings) -> std::io::Result<Running> {
    let logging = Some(athena_actors::registry::LoggingSpec {
        config: settings.logging.clone(),
        create_database: settings.logging_create_database,
        migrate: settings.logging_migrate_at_start,
        client_template: settings.catalog_client_template.clone(),
        import_2_0_2: settings.logging_import_2_0_2.clone(),
    });
    let actors = athena_actors::spawn_all(
        settings.clients.clone(),
        logging,
        settings.keys,
        settings.stats.clone(),
        settings.cache.clone(),
        settings.cdc.clone(),
        settings.backups.clone(),
    );
    let drain = shutdown::Drain::default();
    let logging_db = settings
        .logging
        .side_pool("athena_admin", LOGGING_DB_CONNECTIONS);
    let state = AppState {
        logging_db,
        settings: Arc::new(settings),
        actors: actors.clone(),
        started: Instant::now(),
        drain: drain.clone(),
    };
    let s = state.settings.server.clone();
    let data = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::from_fn(http::stats::middleware))
            // Outermost: a preflight is answered before anything else runs.
            .wrap(actix_web::middleware::from_fn(http::cors::middleware))
            .configure(http::configure)
    })
    .keep_alive(Duration::from_secs(s.keep_alive_secs))
    .backlog(s.backlog)
    .max_connections(s.max_connections)
    .client_request_timeout(Duration::from_millis(s.client_request_timeout_ms))
    .client_disconnect_timeout(Duration::from_millis(s.client_disconnect_timeout_ms))
    .shutdown_timeout(s.shutdown_timeout_secs)
    .disable_signals();
    if s.workers > 0 {
        server = server.workers(s.workers);
    }
    let server = server.bind((s.host.as_str(), s.port))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("bound to no address"))?;
    tracing::info!(%addr, "athena listening");
    Ok(Running {
        addr,
        actors,
        server: server.run(),
        drain,
    })
}
