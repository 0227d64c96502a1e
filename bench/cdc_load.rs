//! Load client of the benchmark's change data capture scenario (h): opens `--subscribers`
//! WebSockets to `/wss/gateway`, subscribes each to `--table` (`cdc.subscribe`), then writes
//! `--rate` single-row transactions a second for `--duration` seconds straight to the client
//! database with tokio-postgres (`--writers` connections, `INSERT INTO <table> (n) VALUES ($1)`,
//! synchronous commit), and measures, for every change at every subscriber, the time from the
//! moment the writer's INSERT returned (its commit acknowledged) to the moment the change frame
//! arrived. Every subscriber must receive every change once: what is missing when the last
//! change has had `--settle` seconds to arrive is counted as lost. Prints one line:
//!
//! `BENCH_CDC changes=N subscribers=S received=N lost=N duplicates=N lagged=N p50_us=N p99_us=N max_us=N write_rate=X`
//!
//! Subscribers are spread over `--threads` client threads (each its own actix system), the
//! writers run on a runtime of their own, so reading does not delay the commits it measures.
//! Built by bench/run.sh as an example target (`cargo build --release --example cdc_load`), so it
//! is never part of the shipped binary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use awc::ws::{Frame, Message};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

#[derive(Parser, Debug, Clone)]
#[command(about = "Change data capture load client for the Athena benchmark")]
struct Args {
    /// The socket URL, e.g. ws://127.0.0.1:4052/wss/gateway.
    #[arg(long)]
    url: String,
    /// The API key (with `<table>.read`), sent as `Authorization: Bearer` on the upgrade.
    #[arg(long, env = "ATHENA_BENCH_KEY")]
    key: String,
    /// The client database the writers insert into directly.
    #[arg(long)]
    pg: String,
    /// The captured table: `n bigint PRIMARY KEY` at least.
    #[arg(long, default_value = "cdc_ticks")]
    table: String,
    /// The client name the subscriptions name.
    #[arg(long, default_value = "default")]
    client: String,
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Changes (single-row transactions) per second, over all writers.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of writing.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 4)]
    writers: u64,
    /// Client threads reading the sockets.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds the last change has to arrive everywhere before what is missing counts as lost.
    #[arg(long, default_value_t = 10)]
    settle: u64,
}

/// Nanoseconds since `base` at which each change was committed (0: not yet), by `n`.
struct Clock {
    base: Instant,
    committed: Vec<AtomicU64>,
}

impl Clock {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    received: u64,
    duplicates: u64,
    lagged: u64,
    latencies_us: Vec<u32>,
    error: Option<String>,
}

type Conn = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

async fn subscribe(args: &Args, i: usize) -> Result<Conn, String> {
    let (_, mut conn) = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish()
        .ws(&args.url)
        .header("Authorization", format!("Bearer {}", args.key))
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let msg = json!({"request_id": format!("sub{i}"), "action": "cdc.subscribe",
                     "client_name": args.client, "body": {"table": args.table}});
    conn.send(Message::Text(msg.to_string().into()))
        .await
        .map_err(|e| format!("send: {e}"))?;
    // The connect acknowledgement, then the subscription's answer.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
            Ok(Some(Ok(Frame::Text(t)))) => {
                let v: Value = serde_json::from_slice(&t).unwrap_or_default();
                if v["request_id"].is_string() {
                    if v["status"] == "success" {
                        return Ok(conn);
                    }
                    return Err(format!("subscription refused: {v}"));
                }
            }
            Ok(Some(Ok(_))) => continue,
            other => return Err(format!("no answer to the subscription: {other:?}")),
        }
    }
}

/// Reads one subscriber's frames until it has every change or the deadline (shared, moved by
/// the writers' end) passes.
async fn read(mut conn: Conn, clock: Arc<Clock>, total: usize, end: Arc<AtomicU64>) -> Seen {
    let mut seen = Seen::default();
    let mut got = vec![false; total];
    while (seen.received as usize) < total {
        // At most a second at a time, so that a deadline set meanwhile is seen.
        let left = end
            .load(Ordering::Relaxed)
            .saturating_sub(clock.now())
            .min(1_000_000_000);
        let frame = match tokio::time::timeout(Duration::from_nanos(left), conn.next()).await {
            Err(_) if end.load(Ordering::Relaxed) > clock.now() => continue,
            Err(_) => break,
            Ok(Some(Ok(f))) => f,
            Ok(other) => {
                seen.error = Some(format!("the socket ended: {other:?}"));
                break;
            }
        };
        let at = clock.now();
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Ping(p) => {
                let _ = conn.send(Message::Pong(p)).await;
                continue;
            }
            _ => continue,
        };
        let v: Value = serde_json::from_slice(&text).unwrap_or_default();
        match v["type"].as_str() {
            Some("change") => {}
            Some("lagged") | Some("closed") => {
                seen.lagged += 1;
                seen.error = Some(format!("the subscription ended: {v}"));
                break;
            }
            _ => continue,
        }
        let Some(n) = v["row"]["n"].as_u64().map(|n| n as usize) else {
            continue;
        };
        if n >= total {
            continue;
        }
        if got[n] {
            seen.duplicates += 1;
            continue;
        }
        got[n] = true;
        seen.received += 1;
        let committed = clock.committed[n].load(Ordering::Acquire);
        // The frame can arrive before the writer has read its commit's acknowledgement.
        let us = if committed == 0 {
            0
        } else {
            at.saturating_sub(committed) / 1000
        };
        seen.latencies_us.push(us.min(u32::MAX as u64) as u32);
    }
    let _ = conn.send(Message::Close(None)).await;
    seen
}

async fn write(args: Args, clock: Arc<Clock>, total: usize) -> Result<(), String> {
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let target: athena_actors::pg::PgConfig =
            args.pg.parse().map_err(|e| format!("--pg: {e}"))?;
        let (db, conn) = target
            .connect()
            .await
            .map_err(|e| format!("writer {w}: {e}"))?;
        tokio::spawn(conn);
        let clock = clock.clone();
        let sql = format!("INSERT INTO {} (n) VALUES ($1)", args.table);
        let every = Duration::from_nanos(1_000_000_000 * args.writers / args.rate.max(1));
        let writers = args.writers as usize;
        tasks.push(tokio::spawn(async move {
            let stmt = db.prepare(&sql).await.map_err(|e| e.to_string())?;
            let mut tick = tokio::time::interval(every);
            for n in (w as usize..total).step_by(writers) {
                tick.tick().await;
                db.execute(&stmt, &[&(n as i64)])
                    .await
                    .map_err(|e| e.to_string())?;
                clock.committed[n].store(clock.now().max(1), Ordering::Release);
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let total = (args.rate * args.duration) as usize;
    let clock = Arc::new(Clock {
        base: Instant::now(),
        committed: (0..total).map(|_| AtomicU64::new(0)).collect(),
    });
    // Until the writers are done, readers wait for ever; then `settle` seconds more.
    let end = Arc::new(AtomicU64::new(u64::MAX));
    let threads = args.threads.clamp(1, args.subscribers.max(1));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let readers: Vec<_> = (0..threads)
        .map(|t| {
            let (args, clock, end, ready) =
                (args.clone(), clock.clone(), end.clone(), ready_tx.clone());
            let mine: Vec<usize> = (t..args.subscribers).step_by(threads).collect();
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let mut tasks = Vec::new();
                    for i in mine {
                        match subscribe(&args, i).await {
                            Ok(conn) => {
                                let _ = ready.send(Ok(()));
                                tasks.push(actix_rt::spawn(read(
                                    conn,
                                    clock.clone(),
                                    total,
                                    end.clone(),
                                )));
                            }
                            Err(e) => {
                                let _ = ready.send(Err(e));
                            }
                        }
                    }
                    let mut all = Vec::new();
                    for t in tasks {
                        all.push(t.await.unwrap_or_default());
                    }
                    all
                })
            })
        })
        .collect();
    drop(ready_tx);
    for _ in 0..args.subscribers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("cdc_load: {e}");
                std::process::exit(1);
            }
            Err(_) => {
                eprintln!("cdc_load: a client thread ended early");
                std::process::exit(1);
            }
        }
    }
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    if let Err(e) = rt.block_on(write(args.clone(), clock.clone(), total)) {
        eprintln!("cdc_load: the writers failed: {e}");
        std::process::exit(1);
    }
    let wrote = started.elapsed();
    end.store(clock.now() + args.settle * 1_000_000_000, Ordering::Relaxed);
    let mut seen: Vec<Seen> = Vec::new();
    for r in readers {
        seen.extend(r.join().expect("a client thread panicked"));
    }
    for s in &seen {
        if let Some(e) = &s.error {
            eprintln!("cdc_load: {e}");
        }
    }
    let received: u64 = seen.iter().map(|s| s.received).sum();
    let expected = (total * args.subscribers) as u64;
    let mut lat: Vec<u32> = seen
        .iter()
        .flat_map(|s| s.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let pct = |p: usize| -> u32 {
        if lat.is_empty() {
            return 0;
        }
        lat[((lat.len() * p).div_ceil(100)).clamp(1, lat.len()) - 1]
    };
    println!(
        "BENCH_CDC changes={total} subscribers={} received={received} lost={} duplicates={} lagged={} p50_us={} p99_us={} max_us={} write_rate={:.1}",
        args.subscribers,
        expected.saturating_sub(received),
        seen.iter().map(|s| s.duplicates).sum::<u64>(),
        seen.iter().map(|s| s.lagged).sum::<u64>(),
        pct(50),
        pct(99),
        lat.last().copied().unwrap_or(0),
        total as f64 / wrote.as_secs_f64(),
    );
}
