//! Stopping the server on SIGTERM or SIGINT without losing work. One deadline,
//! `server.shutdown_timeout_secs` from the signal, bounds it all:
//!
//! 1. **Stop accepting**: the listening sockets are closed at once, so a new connection is refused;
//!    idle keep-alive connections are closed.
//! 2. **Drain**: HTTP requests in flight run to their answer. Every `/wss/gateway` session refuses
//!    new requests, writes the answers of those it is running, and closes with 1001 (Going Away,
//!    "server shutting down"). Connections still open at the deadline are cut.
//! 3. **Flush statistics**: the StatsActor writes every buffered record (one per served request)
//!    to the logging database, bounded by what is left of the deadline, and by at least
//!    [`MIN_FLUSH`] so records are not dropped because draining used the whole deadline.
//! 4. **Exit** with status 0.
//!
//! A second signal while this runs stops waiting: the process exits at once, with an error.
//!
//! Each phase is logged. [`Drain`] is how the WebSocket sessions learn that the server is
//! stopping, and how the shutdown learns that they have closed; it is part of the application
//! state. Servers started by [`crate::start`] do not handle signals themselves: `athena_rs server`
//! runs them through [`serve_until_signal`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::Running;

/// The least time the statistics flush gets, however long draining took.
pub const MIN_FLUSH: Duration = Duration::from_secs(1);

/// The server's stopping state, published to every WebSocket session. Each open session holds a
/// receiver for as long as it lives, so the number of receivers is the number of open sessions.
#[derive(Clone)]
pub struct Drain {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Drain {
    /// A receiver for one session: it reads `true` once the server is stopping.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Tells every session that the server is stopping.
    pub fn begin(&self) {
        self.tx.send_replace(true);
    }

    /// The server is stopping.
    pub fn draining(&self) -> bool {
        *self.tx.borrow()
    }

    /// Receivers alive: two per open session (its own and its wait for the signal).
    fn receivers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Resolves when every session has closed.
    async fn sessions_closed(&self) {
        self.tx.closed().await
    }
}

/// Waits for SIGTERM or SIGINT and answers its name.
async fn signal() -> std::io::Result<&'static str> {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Serves until SIGTERM or SIGINT, then stops as the module documentation describes. An error is
/// the server failing on its own (or the signal handlers not installing).
pub async fn serve_until_signal(running: Running, grace: Duration) -> std::io::Result<()> {
    let Running {
        server,
        actors,
        drain,
        ..
    } = running;
    let handle = server.handle();
    let mut served = actix_web::rt::spawn(server);
    let which = tokio::select! {
        s = signal() => s?,
        res = &mut served => {
            return res.map_err(std::io::Error::other)?;
        }
    };
    let deadline = Instant::now() + grace;
    tracing::info!(
        signal = which,
        deadline_secs = grace.as_secs_f64(),
        "shutdown: refusing new connections; draining requests in flight"
    );
    let stopping = handle.stop(true);
    drain.begin();
    tracing::info!(
        sessions = drain.receivers() / 2,
        "shutdown: closing WebSocket sessions with 1001 once their requests are answered"
    );
    let _stopping = actix_web::rt::spawn(stopping);
    tokio::select! {
        () = finish(served, &drain, &actors, deadline) => Ok(()),
        again = signal() => {
            let again = again?;
            tracing::warn!(signal = again, "shutdown: second signal; exiting without waiting");
            Err(std::io::Error::other(format!("stopped by {again} before the shutdown finished")))
        }
    }
}

/// Phases 2 to 4: wait for the server to drain and the sessions to close, then flush.
async fn finish(
    mut served: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    drain: &Drain,
    actors: &athena_actors::ActorHandles,
    deadline: Instant,
) {
    match tokio::time::timeout(left(deadline), &mut served).await {
        Ok(Ok(Ok(()))) => tracing::info!("shutdown: HTTP connections drained"),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "shutdown: the HTTP server stopped with an error")
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "shutdown: the HTTP server task failed"),
        Err(_) => tracing::warn!("shutdown: deadline reached; connections still open are cut"),
    }
    match tokio::time::timeout(left(deadline), drain.sessions_closed()).await {
        Ok(()) => tracing::info!("shutdown: WebSocket sessions closed"),
        Err(_) => tracing::warn!(
            sessions = drain.receivers() / 2,
            "shutdown: deadline reached with WebSocket sessions open"
        ),
    }
    let budget = left(deadline).max(MIN_FLUSH);
    tracing::info!(
        budget_ms = budget.as_millis() as u64,
        "shutdown: flushing statistics"
    );
    match tokio::time::timeout(budget, actors.stats.flush()).await {
        Ok(Ok(())) => tracing::info!("shutdown: statistics flushed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "shutdown: statistics could not be flushed"),
        Err(_) => tracing::warn!("shutdown: statistics flush ran out of time"),
    }
    tracing::info!("shutdown: complete");
}
