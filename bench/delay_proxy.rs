//! A TCP proxy that delays every byte by a fixed time in each direction: a database on another
//! machine, for `bench/run.sh` (`BENCH_DB_DELAY_US`), on a machine without `tc netem`.
//!
//! Each direction of each connection is a reader and a writer: the reader stamps every chunk it
//! reads with the time it is due and queues it, the writer sends the chunks in order, each no
//! sooner than its time. A round trip through it takes twice the delay plus the proxy's own
//! work; bytes are never reordered. Delays are whole milliseconds, the resolution of tokio's
//! timer.
//!
//! `delay_proxy --listen 127.0.0.1:PORT --to 127.0.0.1:5432 --delay-ms 1` prints
//! `DELAY_PROXY listening=ADDR` once it accepts connections, and runs until killed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

struct Args {
    listen: SocketAddr,
    to: SocketAddr,
    delay: Duration,
}

fn args() -> Result<Args, String> {
    let mut listen = None;
    let mut to = None;
    let mut delay = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?),
            "--to" => to = Some(value.parse().map_err(|e| format!("--to: {e}"))?),
            "--delay-ms" => {
                let ms: u64 = value.parse().map_err(|e| format!("--delay-ms: {e}"))?;
                delay = Some(Duration::from_millis(ms));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        to: to.ok_or("--to is required")?,
        delay: delay.ok_or("--delay-ms is required")?,
    })
}

/// Reads chunks from `from` and queues each with the time it is due.
async fn read_side(
    mut from: OwnedReadHalf,
    queue: mpsc::Sender<(Instant, Vec<u8>)>,
    delay: Duration,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if queue
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Writes the queued chunks to `to` in order, each once it is due; closes `to` at the end.
async fn write_side(mut to: OwnedWriteHalf, mut queue: mpsc::Receiver<(Instant, Vec<u8>)>) {
    while let Some((due, chunk)) = queue.recv().await {
        tokio::time::sleep_until(due).await;
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

async fn relay(client: TcpStream, target: SocketAddr, delay: Duration) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (up_tx, up_rx) = mpsc::channel(4096);
    let (down_tx, down_rx) = mpsc::channel(4096);
    tokio::join!(
        read_side(client_read, up_tx, delay),
        write_side(server_write, up_rx),
        read_side(server_read, down_tx, delay),
        write_side(client_write, down_rx),
    );
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("delay_proxy: {e}\nusage: delay_proxy --listen ADDR --to ADDR --delay-ms N");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("delay_proxy: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    println!("DELAY_PROXY listening={}", args.listen);
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(relay(client, args.to, args.delay));
    }
}
