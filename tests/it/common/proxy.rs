//! A TCP proxy between Athena and PostgreSQL that injects faults, switchable at run time:
//! pass (forward both ways), refuse (new connections are reset at once), stall (new connections
//! are accepted and existing ones kept, but nothing is forwarded), and reset (every live
//! connection is killed with an RST on both sides: SO_LINGER 0, then close).
//!
//! It runs on a thread and runtime of its own, so its timing does not depend on the test's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Refuse,
    Stall,
}

pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
    /// Bumped by `reset`: every connection alive at that moment dies.
    kills: watch::Sender<u64>,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicUsize,
    live: AtomicUsize,
}

impl Proxy {
    /// A proxy in front of the local PostgreSQL (127.0.0.1:5432), passing.
    pub fn start() -> Proxy {
        Proxy::to("127.0.0.1:5432".parse().unwrap())
    }

    pub fn to(upstream: SocketAddr) -> Proxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        let (kills, kills_rx) = watch::channel(0u64);
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let c = counters.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        c.accepted.fetch_add(1, Ordering::Relaxed);
                        let conn = serve(
                            client,
                            upstream,
                            mode_rx.clone(),
                            kills_rx.clone(),
                            c.clone(),
                        );
                        tokio::spawn(conn);
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection task, closing their sockets.
        });
        Proxy {
            port,
            mode,
            kills,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A connection URI for database `db` through the proxy.
    pub fn uri(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Kills every live connection with an RST on both sides.
    pub fn reset(&self) {
        self.kills.send_modify(|n| *n += 1);
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.counters.accepted.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.counters.live.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Counts a connection as live while it exists.
struct Live(Arc<Counters>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    mut kills: watch::Receiver<u64>,
    counters: Arc<Counters>,
) {
    counters.live.fetch_add(1, Ordering::Relaxed);
    let _live = Live(counters);
    kills.borrow_and_update();
    let first = *mode.borrow_and_update();
    match first {
        Mode::Refuse => {
            let _ = client.set_zero_linger();
            return;
        }
        Mode::Stall => {
            // Hold the connection, answer nothing, until reset or no longer stalling.
            tokio::select! {
                _ = kills.changed() => {}
                _ = mode.wait_for(|m| *m != Mode::Stall) => {}
            }
            let _ = client.set_zero_linger();
            return;
        }
        Mode::Pass => {}
    }
    let up = match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream)).await
    {
        Ok(Ok(up)) => up,
        _ => {
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let killed = tokio::select! {
        _ = pump(&mut cr, &mut uw, mode.clone()) => false,
        _ = pump(&mut ur, &mut cw, mode.clone()) => false,
        _ = kills.changed() => true,
    };
    let client = cr.reunite(cw).unwrap();
    let up = ur.reunite(uw).unwrap();
    if killed {
        let _ = client.set_zero_linger();
        let _ = up.set_zero_linger();
    }
}

/// Copies one direction, holding what it reads while the proxy stalls.
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if mode.wait_for(|m| *m != Mode::Stall).await.is_err() {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
    }
}
