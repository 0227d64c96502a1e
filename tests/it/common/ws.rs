//! A real WebSocket client (awc) for `/wss/gateway`, recording every message it sends and
//! receives so that a test can check them against `openapi-wss.yaml`.

use std::time::Duration;

use actix_codec::Framed;
use actix_http::ws::Item;
use awc::ws::{CloseReason, Codec, Frame, Message};
use awc::BoxedSocket;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use super::TestServer;

/// How long a test waits for one frame before failing.
pub const FRAME_WAIT: Duration = Duration::from_secs(20);

/// What arrived on the socket.
#[derive(Debug)]
pub enum Event {
    Text(Value),
    Close(Option<CloseReason>),
    /// The connection ended without a close frame.
    End,
}

pub struct Ws {
    conn: Framed<BoxedSocket, Codec>,
    /// Answer the server's pings (a live client); false to play a silent one.
    pub answer_pings: bool,
    /// Every text message received, in order.
    pub received: Vec<Value>,
    /// Every JSON message sent, in order.
    pub sent: Vec<Value>,
}

/// The socket URL of a test server.
pub fn url(srv: &TestServer) -> String {
    srv.url("/wss/gateway").replacen("http://", "ws://", 1)
}

impl Ws {
    /// Connects with `headers` and reads the connect acknowledgement, which it returns.
    pub async fn connect(srv: &TestServer, headers: &[(&str, &str)]) -> (Ws, Value) {
        let mut ws = Ws::try_connect(srv, headers)
            .await
            .unwrap_or_else(|status| panic!("the upgrade was refused with {status}"));
        let ack = ws.next_text().await;
        (ws, ack)
    }

    /// Connects with `headers`; the status when the upgrade is refused.
    pub async fn try_connect(srv: &TestServer, headers: &[(&str, &str)]) -> Result<Ws, u16> {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish();
        let mut req = client.ws(url(srv)).max_frame_size(64 * 1024 * 1024);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.connect().await {
            Ok((resp, conn)) => {
                assert_eq!(resp.status().as_u16(), 101);
                Ok(Ws {
                    conn,
                    answer_pings: true,
                    received: Vec::new(),
                    sent: Vec::new(),
                })
            }
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => Err(s.as_u16()),
            Err(e) => panic!("could not connect: {e}"),
        }
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.conn.send(msg).await.expect("frame sent");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::Text(text.into())).await;
    }

    pub async fn send(&mut self, v: &Value) {
        self.sent.push(v.clone());
        self.send_text(&v.to_string()).await;
    }

    /// Sends `text` as three fragments.
    pub async fn send_fragmented(&mut self, text: &str) {
        let b = Bytes::copy_from_slice(text.as_bytes());
        let (a, rest) = (b.slice(..b.len() / 3), b.slice(b.len() / 3..));
        let (m, z) = (rest.slice(..rest.len() / 2), rest.slice(rest.len() / 2..));
        for item in [Item::FirstText(a), Item::Continue(m), Item::Last(z)] {
            self.send_raw(Message::Continuation(item)).await;
        }
    }

    /// Sends a gateway request.
    pub async fn request(&mut self, id: &str, action: &str, body: Value) {
        self.send(
            &json!({"request_id": id, "action": action, "client_name": "default", "body": body}),
        )
        .await;
    }

    /// The next text message, a close, or the end, within `wait` (pings, answered or not on the
    /// way, do not extend it).
    pub async fn next_event(&mut self, wait: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.conn.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {wait:?}"));
            match frame {
                None => return Event::End,
                Some(Err(e)) => panic!("protocol error on the client: {e}"),
                Some(Ok(Frame::Text(t))) => {
                    let v: Value = serde_json::from_slice(&t)
                        .unwrap_or_else(|e| panic!("a text frame is not JSON ({e}): {t:?}"));
                    self.received.push(v.clone());
                    return Event::Text(v);
                }
                Some(Ok(Frame::Close(reason))) => return Event::Close(reason),
                Some(Ok(Frame::Ping(p))) => {
                    if self.answer_pings {
                        self.send_raw(Message::Pong(p)).await;
                    }
                }
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Reads frames for `dur` (answering pings or not): the first text or close that arrives,
    /// or `None` when the time is up.
    pub async fn pump(&mut self, dur: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.conn.next()).await {
                Err(_) => return None,
                Ok(f) => f,
            };
            match frame {
                None => return Some(Event::End),
                Some(Ok(Frame::Ping(p))) => {
                    if self.answer_pings {
                        self.send_raw(Message::Pong(p)).await;
                    }
                }
                Some(Ok(Frame::Text(t))) => {
                    let v: Value = serde_json::from_slice(&t).expect("text frames are JSON");
                    self.received.push(v.clone());
                    return Some(Event::Text(v));
                }
                Some(Ok(Frame::Close(reason))) => return Some(Event::Close(reason)),
                Some(other) => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next text message; fails on a close.
    pub async fn next_text(&mut self) -> Value {
        match self.next_event(FRAME_WAIT).await {
            Event::Text(v) => v,
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Sends one gateway request and waits for its answer.
    pub async fn call(&mut self, id: &str, action: &str, body: Value) -> Value {
        self.request(id, action, body).await;
        let v = self.next_text().await;
        assert_eq!(v["request_id"], id, "{v}");
        v
    }

    /// Sends `msg` and waits for its answer.
    pub async fn roundtrip(&mut self, msg: Value) -> Value {
        self.send(&msg).await;
        self.next_text().await
    }

    /// Closes from the client side and waits for the server's close.
    pub async fn close(mut self) {
        self.send_raw(Message::Close(None)).await;
        while let Event::Text(_) = self.next_event(FRAME_WAIT).await {}
    }
}

/// Asserts an error frame with `code` (and the request id `id`).
#[track_caller]
pub fn assert_frame_error(v: &Value, id: Option<&str>, code: &str) {
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["request_id"], json!(id), "{v}");
    assert!(v["message"].is_string() && v["error"].is_string(), "{v}");
    assert!(v["trace_id"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
}
