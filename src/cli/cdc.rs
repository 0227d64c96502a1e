//! `athena_rs cdc tail`: follows one captured table of a running server over its WebSocket
//! gateway (`cdc.subscribe` on `/wss/gateway`) and prints each change as one JSON line on
//! stdout, until interrupted. Diagnostics go to stderr; an error ends it with a non-zero exit.
//!
//! A subscription that falls behind (`lagged`) is resumed from its `last_seq` at once, so the
//! output has no gap and no duplicate; one that the server ends (`closed`, the socket closing)
//! ends the command with the seq to pass to `--since` to go on.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use awc::ws::{Frame, Message};
use clap::{Args, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};

#[derive(Debug, Subcommand)]
pub enum CdcCommand {
    /// Print one table's changes as JSON lines as they are committed, until interrupted.
    ///
    /// Each line is a change event: {"type":"change","seq","client","table","op","row","old"?,
    /// "committed_at"}. The server must capture the table (cdc.clients.<client>.tables in its
    /// config, or POST /admin/cdc/tables).
    ///
    /// Example: athena_rs cdc tail --client default --table users
    ///
    /// Example: athena_rs cdc tail --client default --table sales.orders --since 1042 --filter '[{"eq_column":"status","eq_value":"paid"}]' --url http://127.0.0.1:4052 --key ath_3f2a.c0ffee
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The client whose table to follow, as X-Athena-Client names it (e.g. default).
    #[arg(long, value_name = "CLIENT")]
    client: String,
    /// The table: `name` (in public) or `schema.name` (e.g. users, sales.orders).
    #[arg(long, value_name = "TABLE")]
    table: String,
    /// Print the kept changes after this seq first, then the new ones (no gap, no duplicate);
    /// without it, only changes committed from now on (e.g. --since 1042).
    #[arg(long, value_name = "SEQ")]
    since: Option<i64>,
    /// Only changes whose row matches these conditions, in the /gateway/fetch dialect
    /// (e.g. '[{"eq_column":"status","eq_value":"active"}]' or
    /// '[{"operator":"gt","column":"qty","value":10}]').
    #[arg(long, value_name = "JSON")]
    filter: Option<String>,
    /// The server, http(s):// or ws(s):// (default: http://127.0.0.1:<server.port of the
    /// config>, or http://127.0.0.1:4052 without a config file); /wss/gateway is added when the
    /// URL has no path (e.g. --url http://127.0.0.1:4052).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// An API key holding <table>.read where keys are enforced (default: $ATHENA_API_KEY, then
    /// the admin key $ATHENA_KEY_12; e.g. --key ath_3f2a.c0ffee).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

pub fn run(config: Option<PathBuf>, command: CdcCommand) -> anyhow::Result<()> {
    match command {
        CdcCommand::Tail(args) => tail(config, args),
    }
}

/// The socket URL of a server URL.
fn socket_url(base: &str) -> anyhow::Result<String> {
    let base = base.trim().trim_end_matches('/');
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| anyhow!("--url must start with http://, https://, ws:// or wss://"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => bail!("--url has an unknown scheme {other:?}"),
    };
    let path = if rest.contains('/') {
        ""
    } else {
        "/wss/gateway"
    };
    Ok(format!("{scheme}://{rest}{path}"))
}

fn tail(config: Option<PathBuf>, args: TailArgs) -> anyhow::Result<()> {
    let filter = match &args.filter {
        Some(text) => {
            let v: Value = serde_json::from_str(text).context("--filter is not valid JSON")?;
            if !(v.is_array() || v.is_object()) {
                bail!("--filter must be a JSON array (or object) of conditions");
            }
            Some(v)
        }
        None => None,
    };
    let base = match (&args.url, &config) {
        (Some(u), _) => u.clone(),
        (None, Some(_)) => format!("http://127.0.0.1:{}", super::load(config)?.server.port),
        (None, None) => match super::load(None) {
            Ok(s) => format!("http://127.0.0.1:{}", s.server.port),
            Err(_) => "http://127.0.0.1:4052".to_string(),
        },
    };
    let url = socket_url(&base)?;
    let key = args
        .key
        .clone()
        .or_else(|| std::env::var("ATHENA_API_KEY").ok())
        .or_else(|| std::env::var("ATHENA_KEY_12").ok())
        .filter(|k| !k.trim().is_empty());
    actix_rt::System::new().block_on(follow(url, key, args, filter))
}

type Conn = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

async fn connect(url: &str, key: Option<&str>) -> anyhow::Result<Conn> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut req = client.ws(url).max_frame_size(64 * 1024 * 1024);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let (_, mut conn) = req
        .connect()
        .await
        .map_err(|e| anyhow!("cannot connect to {url}: {e}"))?;
    match conn.next().await {
        Some(Ok(Frame::Text(_))) => Ok(conn),
        other => bail!("{url} did not acknowledge the connection: {other:?}"),
    }
}

/// What a subscription's frame asks of the loop.
enum Step {
    Go,
    /// Lagged: subscribe again after this seq.
    Resume(i64),
}

async fn follow(
    url: String,
    key: Option<String>,
    args: TailArgs,
    filter: Option<Value>,
) -> anyhow::Result<()> {
    let mut conn = connect(&url, key.as_deref()).await?;
    let mut since = args.since;
    let mut round = 0u64;
    let stdout = std::io::stdout();
    loop {
        round += 1;
        let request_id = format!("tail-{round}");
        let mut body = json!({"table": args.table});
        if let Some(f) = &filter {
            body["filter"] = f.clone();
        }
        if let Some(s) = since {
            body["since_seq"] = json!(s);
        }
        let msg = json!({"request_id": request_id, "action": "cdc.subscribe",
                         "client_name": args.client, "body": body});
        conn.send(Message::Text(msg.to_string().into()))
            .await
            .map_err(|e| anyhow!("cannot send to {url}: {e}"))?;
        loop {
            let frame = match conn.next().await {
                Some(Ok(f)) => f,
                Some(Err(e)) => bail!("{}", ended(&format!("the connection failed: {e}"), since)),
                None => bail!("{}", ended("the server closed the connection", since)),
            };
            let text = match frame {
                Frame::Text(t) => t,
                Frame::Ping(p) => {
                    let _ = conn.send(Message::Pong(p)).await;
                    continue;
                }
                Frame::Close(reason) => {
                    let why = reason
                        .and_then(|r| r.description)
                        .map(|d| format!("the server closed the connection ({d})"))
                        .unwrap_or_else(|| "the server closed the connection".into());
                    bail!("{}", ended(&why, since));
                }
                _ => continue,
            };
            let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(&text) else {
                bail!("the server sent something that is not a JSON object");
            };
            match handle(&mut m, &request_id, &mut since)? {
                Step::Go => {}
                Step::Resume(last) => {
                    eprintln!("fell behind at seq {last}: subscribing again from there");
                    since = Some(last);
                    break;
                }
            }
            if m.get("type").and_then(Value::as_str) == Some("change") {
                let mut out = stdout.lock();
                // A closed stdout (`| head`) ends the command quietly.
                if writeln!(out, "{}", Value::Object(m))
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
    }
}

/// Reads one frame: the subscription's answer, or one of its messages.
fn handle(
    m: &mut Map<String, Value>,
    request_id: &str,
    since: &mut Option<i64>,
) -> anyhow::Result<Step> {
    let seq = |k: &str| m.get(k).and_then(Value::as_i64);
    match m.get("type").and_then(Value::as_str) {
        Some("change") => {
            *since = seq("seq").or(*since);
            m.shift_remove("subscription_id");
            Ok(Step::Go)
        }
        Some("lagged") => Ok(Step::Resume(seq("last_seq").or(*since).unwrap_or(0))),
        Some("closed") => {
            let reason = m.get("reason").and_then(Value::as_str).unwrap_or("closed");
            *since = seq("last_seq").or(*since);
            bail!(
                "{}",
                ended(&format!("the server ended the stream: {reason}"), *since)
            )
        }
        _ if m.get("request_id").and_then(Value::as_str) == Some(request_id) => {
            if m.get("status").and_then(Value::as_str) == Some("success") {
                return Ok(Step::Go);
            }
            let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
            let hint = match s("hint") {
                "" => String::new(),
                h => format!(" (hint: {h})"),
            };
            bail!(
                "the subscription was refused: {} {}: {}{hint}",
                s("message"),
                s("code"),
                s("error")
            )
        }
        // Nothing else is sent on a socket that only subscribes.
        _ => Ok(Step::Go),
    }
}

fn ended(why: &str, since: Option<i64>) -> String {
    match since {
        Some(s) => format!("{why}; go on with --since {s}"),
        None => why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_become_socket_urls() {
        assert_eq!(
            socket_url("http://127.0.0.1:4052/").unwrap(),
            "ws://127.0.0.1:4052/wss/gateway"
        );
        assert_eq!(
            socket_url("https://h.example").unwrap(),
            "wss://h.example/wss/gateway"
        );
        assert_eq!(
            socket_url("ws://h:1/custom/path").unwrap(),
            "ws://h:1/custom/path"
        );
        assert!(socket_url("127.0.0.1:4052").is_err());
        assert!(socket_url("ftp://h").is_err());
    }

    #[test]
    fn frames_are_read_into_steps() {
        let mut since = Some(3);
        let mut m = json!({"type": "change", "subscription_id": "s1", "seq": 5, "row": {}})
            .as_object()
            .unwrap()
            .clone();
        assert!(matches!(handle(&mut m, "t", &mut since), Ok(Step::Go)));
        assert_eq!(since, Some(5));
        let keys: Vec<&String> = m.keys().collect();
        assert_eq!(keys, ["type", "seq", "row"]);
        let mut lagged = json!({"type": "lagged", "subscription_id": "s1", "last_seq": 9})
            .as_object()
            .unwrap()
            .clone();
        assert!(matches!(
            handle(&mut lagged, "t", &mut since),
            Ok(Step::Resume(9))
        ));
        let mut refused = json!({"request_id": "t", "status": "error", "message": "Forbidden",
                                 "code": "forbidden", "error": "no right"})
        .as_object()
        .unwrap()
        .clone();
        let e = handle(&mut refused, "t", &mut since)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("forbidden") && e.contains("no right"), "{e}");
        let mut closed = json!({"type": "closed", "reason": "stopping", "last_seq": 11})
            .as_object()
            .unwrap()
            .clone();
        let e = handle(&mut closed, "t", &mut since)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--since 11"), "{e}");
    }
}
