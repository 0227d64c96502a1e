//! Load client of the benchmark for the WebSocket gateway (wrk speaks no WebSocket): opens
//! `--sockets` sockets to `/wss/gateway`, keeps `--inflight` requests in flight on each for
//! `--duration` seconds, and prints one line in the format bench/run.sh reads from wrk:
//!
//! `BENCH_RESULT requests=N duration_us=N rps=X p50_us=N p99_us=N max_us=N non200=N socket_errors=N statuses=CODE:N,...`
//!
//! The request is scenario (b)'s: a fetch of one `events` row by a random primary key, with
//! `Cache-Control: no-cache` so that the database path is measured. Latency is from sending a
//! request to reading its answer; only answers read before the deadline are counted, and the
//! requests still in flight then are drained uncounted. Sockets are spread over `--threads`
//! client threads, each its own actix system. `--check` sends one request and prints its answer.
//!
//! Built by bench/run.sh as an example target (`cargo build --release --example ws_load`), so it
//! is never part of the shipped binary.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use awc::ws::{Frame, Message};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};

#[derive(Parser, Debug, Clone)]
#[command(about = "WebSocket load client for the Athena benchmark")]
struct Args {
    /// The socket URL, e.g. ws://127.0.0.1:4052/wss/gateway.
    #[arg(long)]
    url: String,
    /// The API key, sent as `Authorization: Bearer` on the upgrade.
    #[arg(long, env = "ATHENA_BENCH_KEY")]
    key: String,
    #[arg(long, default_value_t = 1)]
    sockets: usize,
    /// Requests kept in flight on each socket.
    #[arg(long, default_value_t = 32)]
    inflight: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Rows of `events`: ids are drawn from 1..=rows.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Send one request, print its answer, and exit (0 when it succeeded with one row).
    #[arg(long)]
    check: bool,
}

/// What one socket (or all of them) saw.
#[derive(Default)]
struct Tally {
    ok: u64,
    /// Error frames, by code.
    errors: BTreeMap<String, u64>,
    socket_errors: u64,
    latencies_us: Vec<u32>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.socket_errors += o.socket_errors;
        self.latencies_us.extend(o.latencies_us);
    }
}

/// xorshift64*: ids spread over the table without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn request(id: u64, rng: &mut Rng, rows: u64) -> String {
    let pk = 1 + rng.below(rows);
    format!(
        r#"{{"request_id":"{id}","action":"gateway.fetch","client_name":"default","headers":{{"cache-control":"no-cache"}},"body":{{"table_name":"events","conditions":[{{"eq_column":"id","eq_value":{pk}}}],"limit":1}}}}"#
    )
}

/// The request id of an answer (`{"request_id":"N",…`), read without parsing the rows.
fn answer_id(text: &[u8]) -> Option<u64> {
    let rest = text.strip_prefix(br#"{"request_id":""#)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The error code of an error frame, or `None` for a success.
fn error_code(text: &[u8]) -> Option<String> {
    const SUCCESS: &[u8] = br#""status":"success""#;
    let head = &text[..text.len().min(96)];
    if head.windows(SUCCESS.len()).any(|w| w == SUCCESS) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(text).unwrap_or_default();
    Some(v["code"].as_str().unwrap_or("unreadable").to_string())
}

type Conn = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

async fn connect(args: &Args) -> Result<Conn, String> {
    let (_, mut conn) = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish()
        .ws(&args.url)
        .header("Authorization", format!("Bearer {}", args.key))
        .max_frame_size(16 * 1024 * 1024)
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // The connect acknowledgement.
    match conn.next().await {
        Some(Ok(Frame::Text(_))) => Ok(conn),
        other => Err(format!("no connect acknowledgement: {other:?}")),
    }
}

async fn socket(args: Args, seed: u64, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let mut conn = match connect(&args).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ws_load: {e}");
            t.socket_errors += 1;
            return t;
        }
    };
    let mut rng = Rng(seed | 1);
    let mut sent: HashMap<u64, Instant> = HashMap::with_capacity(args.inflight * 2);
    let mut next = 0u64;
    for _ in 0..args.inflight {
        if conn
            .send(Message::Text(request(next, &mut rng, args.rows).into()))
            .await
            .is_err()
        {
            t.socket_errors += 1;
            return t;
        }
        sent.insert(next, Instant::now());
        next += 1;
    }
    while !sent.is_empty() {
        let frame = match tokio::time::timeout(Duration::from_secs(15), conn.next()).await {
            Ok(Some(Ok(f))) => f,
            _ => {
                t.socket_errors += 1;
                return t;
            }
        };
        let text = match frame {
            Frame::Text(b) => b,
            Frame::Ping(p) => {
                let _ = conn.send(Message::Pong(p)).await;
                continue;
            }
            Frame::Close(_) => {
                t.socket_errors += 1;
                return t;
            }
            _ => continue,
        };
        let now = Instant::now();
        let Some(started) = answer_id(&text).and_then(|id| sent.remove(&id)) else {
            t.socket_errors += 1;
            continue;
        };
        if now <= deadline {
            match error_code(&text) {
                None => {
                    t.ok += 1;
                    let us = now.duration_since(started).as_micros();
                    t.latencies_us.push(us.min(u32::MAX as u128) as u32);
                }
                Some(code) => *t.errors.entry(code).or_default() += 1,
            }
            let msg = request(next, &mut rng, args.rows);
            if conn.send(Message::Text(msg.into())).await.is_err() {
                t.socket_errors += 1;
                return t;
            }
            sent.insert(next, Instant::now());
            next += 1;
        }
    }
    let _ = conn.send(Message::Close(None)).await;
    t
}

fn check(args: &Args) -> i32 {
    let args = args.clone();
    actix_rt::System::new().block_on(async move {
        let mut conn = match connect(&args).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("ws_load: {e}");
                return 1;
            }
        };
        let msg = request(0, &mut Rng(7), args.rows);
        if conn.send(Message::Text(msg.into())).await.is_err() {
            return 1;
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
                Ok(Some(Ok(Frame::Text(b)))) => {
                    println!("{}", String::from_utf8_lossy(&b));
                    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                    let one = v["data"]["rows"].as_array().is_some_and(|r| r.len() == 1);
                    return if v["status"] == "success" && one {
                        0
                    } else {
                        1
                    };
                }
                Ok(Some(Ok(_))) => continue,
                other => {
                    eprintln!("ws_load: no answer: {other:?}");
                    return 1;
                }
            }
        }
    })
}

fn main() {
    let args = Args::parse();
    if args.check {
        std::process::exit(check(&args));
    }
    let threads = args.threads.clamp(1, args.sockets.max(1));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let handles: Vec<_> = (0..threads)
        .map(|n| {
            let args = args.clone();
            // Sockets n, n + threads, … belong to this thread.
            let mine: Vec<usize> = (n..args.sockets).step_by(threads).collect();
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let tasks: Vec<_> = mine
                        .into_iter()
                        .map(|i| {
                            let seed = 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0xA24B);
                            actix_rt::spawn(socket(args.clone(), seed, deadline))
                        })
                        .collect();
                    let mut t = Tally::default();
                    for task in tasks {
                        t.merge(task.await.unwrap_or_else(|_| Tally {
                            socket_errors: 1,
                            ..Tally::default()
                        }));
                    }
                    t
                })
            })
        })
        .collect();
    let mut total = Tally::default();
    for h in handles {
        total.merge(h.join().expect("a client thread panicked"));
    }
    let secs = args.duration as f64;
    let mut lat = total.latencies_us;
    lat.sort_unstable();
    // Nearest rank, as bench/run.sh computes pgbench's.
    let pct = |p: usize| -> u32 {
        if lat.is_empty() {
            return 0;
        }
        lat[((lat.len() * p).div_ceil(100)).clamp(1, lat.len()) - 1]
    };
    let non_ok: u64 = total.errors.values().sum();
    let statuses = if total.errors.is_empty() {
        "-".to_string()
    } else {
        let parts: Vec<String> = total
            .errors
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        parts.join(",")
    };
    println!(
        "BENCH_RESULT requests={} duration_us={} rps={:.1} p50_us={} p99_us={} max_us={} non200={} socket_errors={} statuses={}",
        total.ok + non_ok,
        args.duration * 1_000_000,
        (total.ok + non_ok) as f64 / secs,
        pct(50),
        pct(99),
        lat.last().copied().unwrap_or(0),
        non_ok,
        total.socket_errors,
        statuses
    );
}
