//! The session actor: one per socket, on the HTTP worker that accepted the upgrade.
//!
//! Job: read the caller's frames, answer `auth` messages, start each gateway request as a task of
//! its own (at most `websocket.max_in_flight` at once) and write each answer when it arrives, in
//! whatever order they finish. It pings every `ping_interval_ms` and closes a socket that has
//! been silent for `idle_timeout_ms` with no request running (1001). A message larger than
//! `max_frame_bytes` closes the socket with 1009; any other bad message gets an error frame and
//! the socket stays open.
//!
//! It also holds the socket's change subscriptions (`cdc.subscribe`, at most
//! `max_subscriptions`): each one's events are a stream of the actor's context, written as frames
//! as they come; `cdc.unsubscribe` cancels the stream, and closing the socket drops them all,
//! which ends them in the hub. Each heartbeat checks their keys again and ends, with `closed`,
//! those that may no longer read their table. See [`super::subscribe`] for why a caller that stops reading gets
//! `lagged` rather than a growing queue.
//!
//! Mailbox: the socket's frames (a stream), [`Answer`]s from the request tasks and
//! [`Subscribed`] from the subscribe tasks (sent with `do_send`, so they are never refused: their
//! number is bounded by `max_in_flight` and `max_subscriptions`), and the subscriptions' events
//! (streams).
//! When the server stops ([`crate::shutdown`]) it refuses new requests (503 `not_ready`), writes
//! the answers of those running, then closes with 1001 ("server shutting down").
//! Restart policy: none. The actor lives and dies with its socket; requests already running
//! finish (and are recorded), their answers are dropped.
//! It holds the socket's key, its count of requests in flight and its subscriptions; nothing
//! else is shared.

mod cdc;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, Message, StreamHandler, WrapFuture,
};
use actix_http::ws::Item;
use actix_web::web;
use actix_web_actors::ws::{self, CloseCode, CloseReason, ProtocolError};
use bytes::BytesMut;

use super::protocol::{self, Incoming};
use super::request::{self, Peer};
use super::subscribe::Subscriptions;
use crate::config::WebsocketConfig;
use crate::http::error::{ApiError, Code};
use crate::http::{keys, AppState};

pub struct Session {
    state: web::Data<AppState>,
    limits: WebsocketConfig,
    /// The key of requests that carry none of their own: presented at the upgrade, or by the last
    /// accepted `auth` message.
    key: Option<Arc<str>>,
    peer: Arc<Peer>,
    /// Sent in the connect acknowledgement.
    api_base: String,
    /// Requests started and not yet answered.
    in_flight: usize,
    /// When the caller last sent a frame of any kind.
    last_heard: Instant,
    /// A fragmented message being put together: whether it is text, and its bytes so far.
    fragments: Option<(bool, BytesMut)>,
    /// A close frame was sent: what the caller sends from now on is ignored (a frame the codec
    /// refused is reported again on every read).
    closing: bool,
    /// The socket's change subscriptions, open and being opened.
    subs: Subscriptions,
    /// Held while the session lives: the server counts open sessions by these when it stops.
    drain: tokio::sync::watch::Receiver<bool>,
    /// The server is stopping: no new request is taken, and the socket closes once the running
    /// ones are answered.
    going_away: bool,
}

impl Session {
    pub fn new(
        state: web::Data<AppState>,
        key: Option<Arc<str>>,
        peer: Peer,
        api_base: String,
    ) -> Session {
        Session {
            drain: state.drain.subscribe(),
            going_away: false,
            limits: state.settings.websocket.clone(),
            state,
            key,
            peer: Arc::new(peer),
            api_base,
            in_flight: 0,
            last_heard: Instant::now(),
            fragments: None,
            closing: false,
            subs: Subscriptions::default(),
        }
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, why: &str) {
        self.closing = true;
        ctx.close(Some(CloseReason {
            code,
            description: Some(why.to_string()),
        }));
        ctx.stop();
    }

    fn too_large(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let err = ApiError::new(
            Code::PayloadTooLarge,
            format!(
                "the message is larger than {} bytes",
                self.limits.max_frame_bytes
            ),
        )
        .hint("send fewer rows per message, or raise websocket.max_frame_bytes");
        ctx.text(protocol::error_frame(
            None,
            &err,
            athena_actors::stats::RequestId::next(),
        ));
        self.close(ctx, CloseCode::Size, "message too big");
    }

    fn refuse(ctx: &mut ws::WebsocketContext<Self>, request_id: Option<&str>, err: &ApiError) {
        let trace_id = athena_actors::stats::RequestId::next();
        ctx.text(protocol::error_frame(request_id, err, trace_id));
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let req = match protocol::parse(text) {
            Ok(Incoming::Request(req)) => req,
            Ok(Incoming::Auth { request_id, key }) => return self.on_auth(request_id, key, ctx),
            Ok(Incoming::Subscribe(msg)) => return self.on_subscribe(msg, ctx),
            Ok(Incoming::Unsubscribe {
                request_id,
                subscription_id,
            }) => return self.on_unsubscribe(&request_id, &subscription_id, ctx),
            Err(refused) => {
                return Self::refuse(ctx, refused.request_id.as_deref(), &refused.error)
            }
        };
        if self.going_away {
            let err = ApiError::new(Code::NotReady, "the server is shutting down")
                .hint("reconnect to another instance, or once the server is back");
            ctx.text(request::refuse(&self.state, &req, &self.peer, &err));
            return;
        }
        if self.in_flight >= self.limits.max_in_flight {
            let err = ApiError::new(
                Code::TooManyInFlight,
                format!(
                    "this socket already has {} requests in flight",
                    self.in_flight
                ),
            )
            .hint("wait for an answer before sending more, or open another socket");
            ctx.text(request::refuse(&self.state, &req, &self.peer, &err));
            return;
        }
        self.in_flight += 1;
        let addr = ctx.address();
        let run = request::run(self.state.clone(), req, self.key.clone(), self.peer.clone());
        actix_web::rt::spawn(async move {
            addr.do_send(Answer(run.await));
        });
    }

    fn on_auth(
        &mut self,
        request_id: Option<String>,
        key: String,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        if let Some(failure) = keys::key_failure(&self.state, &key) {
            let err = ApiError::new(Code::InvalidApiKey, keys::failure_message(failure));
            return Self::refuse(ctx, request_id.as_deref(), &err);
        }
        let admin = crate::http::auth::is_admin_key(&self.state, &key);
        let public_id = (!admin).then(|| keys::presented_public_id(&key)).flatten();
        ctx.text(protocol::auth_frame(
            request_id.as_deref(),
            admin,
            public_id.as_deref(),
        ));
        self.key = Some(Arc::from(key));
    }

    /// Puts a fragmented message together; a complete one is handled like an unfragmented one.
    fn on_fragment(&mut self, item: Item, ctx: &mut ws::WebsocketContext<Self>) {
        let (first, bytes, last) = match item {
            Item::FirstText(b) => (Some(true), b, false),
            Item::FirstBinary(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        if let Some(text) = first {
            self.fragments = Some((text, BytesMut::new()));
        }
        let Some((text, buf)) = self.fragments.as_mut() else {
            // The codec refuses a continuation that was not started; this is defensive.
            return self.close(ctx, CloseCode::Protocol, "continuation not started");
        };
        let over = buf.len() + bytes.len() > self.limits.max_frame_bytes;
        if !over {
            buf.extend_from_slice(&bytes);
        }
        let text = *text;
        if over {
            self.fragments = None;
            return self.too_large(ctx);
        }
        if !last {
            return;
        }
        let Some((_, buf)) = self.fragments.take() else {
            return;
        };
        if !text {
            return Self::refuse(ctx, None, &binary());
        }
        match std::str::from_utf8(&buf) {
            Ok(s) => self.on_text(s, ctx),
            Err(_) => self.close(ctx, CloseCode::Invalid, "text message is not UTF-8"),
        }
    }

    /// The server is stopping: close now, or once the requests running are answered.
    fn go_away(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.going_away = true;
        if self.in_flight == 0 && !self.closing {
            self.close(ctx, CloseCode::Away, "server shutting down");
        }
    }

    fn heartbeat(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let idle = Duration::from_millis(self.limits.idle_timeout_ms);
        let running = self.in_flight + self.subs.pending;
        if running == 0 && self.last_heard.elapsed() >= idle {
            return self.close(ctx, CloseCode::Away, "idle timeout");
        }
        self.recheck_subscriptions(ctx);
        ctx.ping(b"");
    }
}

fn binary() -> ApiError {
    ApiError::new(
        Code::UnsupportedFrame,
        "binary messages are not supported; send JSON as text",
    )
}

/// A request's answer, from its task.
#[derive(Message)]
#[rtype(result = "()")]
struct Answer(String);

impl Handler<Answer> for Session {
    type Result = ();

    fn handle(&mut self, msg: Answer, ctx: &mut Self::Context) {
        self.in_flight = self.in_flight.saturating_sub(1);
        ctx.text(msg.0);
        if self.going_away && self.in_flight == 0 && !self.closing {
            self.close(ctx, CloseCode::Away, "server shutting down");
        }
    }
}

impl Actor for Session {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.text(protocol::connect_ack(
            SystemTime::now(),
            &self.api_base,
            &self.limits,
        ));
        let every = Duration::from_millis(self.limits.ping_interval_ms);
        ctx.run_interval(every, Self::heartbeat);
        let mut stopping = self.drain.clone();
        ctx.spawn(
            async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
            }
            .into_actor(self)
            .map(|_, act, ctx| act.go_away(ctx)),
        );
    }
}

impl StreamHandler<Result<ws::Message, ProtocolError>> for Session {
    fn handle(&mut self, msg: Result<ws::Message, ProtocolError>, ctx: &mut Self::Context) {
        if self.closing {
            return;
        }
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Binary(_)) => Self::refuse(ctx, None, &binary()),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                self.closing = true;
                ctx.close(reason);
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => self.too_large(ctx),
            Err(e) => {
                tracing::debug!(error = %e, "websocket protocol error");
                self.close(ctx, CloseCode::Protocol, "protocol error");
            }
        }
    }
}
