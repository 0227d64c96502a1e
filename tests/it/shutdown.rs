//! Stopping `athena_rs server` (the built binary, as a child process) with SIGTERM: requests in
//! flight over HTTP and over a socket are answered, a new connection is refused, the socket is
//! closed with 1001, the request-log rows of the served requests are in the logging database,
//! and the process exits 0 within `server.shutdown_timeout_secs`.

use crate::common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use awc::ws::{Frame, Message};
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_athena_rs");
const GRACE_SECS: u64 = 6;

/// The child, killed if the test fails before it exits.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

async fn root(http: &reqwest::Client, base: &str) -> Option<Value> {
    http.get(format!("{base}/"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// A running `athena_rs server` whose `default` client and logging database are `db`: the child,
/// its port, and the file its log goes to.
async fn start(db: &TestDb, dir: &std::path::Path) -> (Server, u16, std::path::PathBuf) {
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  host: 127.0.0.1\n  port: {port}\n  workers: 2\n  shutdown_timeout_secs: {GRACE_SECS}\n\
             logging:\n  uri: {uri}\napi_keys:\n  enforce: false\ncache:\n  enabled: false\n\
             stats:\n  flush_interval_ms: 60000\n\
             clients:\n  default:\n    uri: {uri}\n    probe_interval_ms: 200\n",
            uri = db.uri
        ),
    )
    .unwrap();
    let log = dir.join("stderr.log");
    let server = Server(
        Command::new(BIN)
            .arg("server")
            .env("ATHENA_CONFIG", &config)
            .env("ATHENA_KEY_12", ADMIN_KEY)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // Up, with its client online and the logging database migrated.
    let ready = Instant::now() + Duration::from_secs(30);
    loop {
        let up = root(&http, &base).await.is_some_and(|v| {
            v["data"]["logging"]["state"] == "ready"
                && v["data"]["clients"]
                    .as_array()
                    .is_some_and(|c| c.iter().all(|c| c["state"] == "online"))
        });
        if up {
            break;
        }
        assert!(Instant::now() < ready, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, port, log)
}

fn signal(server: &Server, name: &str) {
    let kill = Command::new("kill")
        .args([name, &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// A slow raw SQL request with the admin key, answered with its status and body.
fn slow_request(
    http: &reqwest::Client,
    base: &str,
    seconds: f64,
) -> actix_rt::task::JoinHandle<Result<(u16, String), reqwest::Error>> {
    let http = http.clone();
    let url = format!("{base}/gateway/query");
    actix_rt::spawn(async move {
        let r = http
            .post(url)
            .header("X-Athena-Client", "default")
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"query": format!("select pg_sleep({seconds}) AS slept")}))
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await.unwrap_or_default()))
    })
}

#[actix_rt::test]
async fn sigterm_answers_requests_in_flight_closes_sockets_flushes_statistics_and_exits_zero() {
    let db = TestDb::create("").await;
    let dir = std::env::temp_dir().join(unique_name("athena_shutdown"));
    let (mut server, port, log) = start(&db, &dir).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // A socket, with a slow request of its own.
    let (_, mut socket) = awc::Client::new()
        .ws(format!("ws://127.0.0.1:{port}/wss/gateway"))
        .header("Authorization", format!("Bearer {ADMIN_KEY}"))
        .connect()
        .await
        .expect("socket opens");
    let ack = socket.next().await.unwrap().unwrap();
    assert!(matches!(ack, Frame::Text(_)), "{ack:?}");
    let slow = json!({"request_id": "slow", "action": "gateway.query", "client_name": "default",
                      "body": {"query": "select pg_sleep(1.5) AS slept"}});
    socket
        .send(Message::Text(slow.to_string().into()))
        .await
        .unwrap();

    // Slow HTTP requests in flight.
    let inflight: Vec<_> = (0..3).map(|_| slow_request(&http, &base, 1.0)).collect();
    tokio::time::sleep(Duration::from_millis(400)).await;

    let signalled = Instant::now();
    signal(&server, "-TERM");

    // New connections are refused once the listener is closed, well before the requests end.
    let mut refused = false;
    while signalled.elapsed() < Duration::from_millis(800) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(refused, "a new connection was still accepted after SIGTERM");

    for task in inflight {
        let (status, body) = task
            .await
            .unwrap()
            .expect("an in-flight request is answered");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"slept\""), "{body}");
    }

    // The socket's request is answered, then the socket is closed with 1001.
    let mut answered = false;
    let close = loop {
        let frame = tokio::time::timeout(Duration::from_secs(GRACE_SECS + 5), socket.next())
            .await
            .expect("the socket is closed in time");
        match frame {
            Some(Ok(Frame::Text(t))) => {
                let v: Value = serde_json::from_slice(&t).unwrap();
                assert_eq!(v["request_id"], "slow", "{v}");
                assert_eq!(v["status"], "success", "{v}");
                answered = true;
            }
            Some(Ok(Frame::Ping(p))) => {
                let _ = socket.send(Message::Pong(p)).await;
            }
            Some(Ok(Frame::Close(reason))) => break reason,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        answered,
        "the socket's request was not answered before the close"
    );
    let close = close.expect("a close reason");
    assert_eq!(u16::from(close.code), 1001, "{close:?}");
    assert_eq!(close.description.as_deref(), Some("server shutting down"));

    // The process exits 0 within the deadline.
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(GRACE_SECS + 2),
            "the server did not exit within its deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "exit status {status:?}\n{stderr}");
    for phase in [
        "shutdown: refusing new connections",
        "shutdown: closing WebSocket sessions",
        "shutdown: HTTP connections drained",
        "shutdown: statistics flushed",
        "shutdown: complete",
    ] {
        assert!(stderr.contains(phase), "{phase:?} not logged:\n{stderr}");
    }

    // Every served request was written to the logging database by the final flush (the periodic
    // flush is a minute away).
    let logged = db
        .scalar(
            "SELECT count(*) FROM gateway_request_log \
             WHERE path = '/gateway/query' AND status_code = 200",
        )
        .await;
    assert_eq!(logged.as_deref(), Some("3"), "{stderr}");
    let socket_logged = db
        .scalar(
            "SELECT count(*) FROM gateway_request_log WHERE method = 'WS' AND status_code = 200",
        )
        .await;
    assert_eq!(socket_logged.as_deref(), Some("1"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn a_second_signal_stops_waiting_and_exits_at_once() {
    let db = TestDb::create("").await;
    let dir = std::env::temp_dir().join(unique_name("athena_shutdown"));
    let (mut server, port, log) = start(&db, &dir).await;
    let http = reqwest::Client::new();
    let slow = slow_request(&http, &format!("http://127.0.0.1:{port}"), 30.0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let signalled = Instant::now();
    signal(&server, "-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&server, "-INT");
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(GRACE_SECS - 2),
            "the second signal did not stop the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("second signal"), "{stderr}");
    // The request cut short is not answered.
    assert!(slow.await.unwrap().is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
