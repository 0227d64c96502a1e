//! The server's own session. Started without a terminal (from a script, a test harness, a
//! supervisor that does not make one), `athena_rs server` leaves the session that started it with
//! setsid(2), as a service does, unless `server.own_session` is false.
//!
//! Why: with the kernel's autogroup scheduling (on by default on most Linux machines), CPU time
//! is shared between sessions first and between threads only within a session. A gateway left in
//! its starter's session shares one share with everything else there: a load generator started
//! by the same script, say. On a machine it shares with PostgreSQL (a session of its own, all its
//! backends in it), the two shares then swing from one CPU to the other, and a backend that
//! answers a request waits up to seconds for a CPU where its session's share has run out:
//! measured on 2 CPUs, p99 from 10 ms to 1.7 s, with a 10-row fetch at 32 connections, whatever
//! the pool size or the statistics; in a session of its own, 5 to 7 ms (docs/benchmarks.md).
//!
//! Nothing changes for a server that leads its process group (a shell with job control started
//! it, or systemd, or a container's init), nor for one whose standard input is a terminal
//! (typed at a prompt, or `cargo run`): Ctrl-C reaches it as before.

use std::io::IsTerminal;

/// What [`detach`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// It left its starter's session: it leads a session of its own now.
    Own,
    /// It already led its process group (a job-control shell, systemd or a container's init
    /// started it): its session is its own already, or its starter's by design.
    Leader,
    /// Its standard input is a terminal: it stays where Ctrl-C reaches it.
    Terminal,
    /// `server.own_session` is false.
    Kept,
}

/// Leaves the starter's session when `enabled`, the standard input is not a terminal and the
/// process does not lead its process group.
pub fn detach(enabled: bool) -> std::io::Result<Session> {
    if !enabled {
        return Ok(Session::Kept);
    }
    if std::io::stdin().is_terminal() {
        return Ok(Session::Terminal);
    }
    if rustix::process::getpgrp() == rustix::process::getpid() {
        return Ok(Session::Leader);
    }
    rustix::process::setsid()?;
    Ok(Session::Own)
}
