//! Change subscriptions over a socket. `cdc.subscribe` is admitted as any request is, through
//! `http::cdc::subscribe` with a [`WsCall`] made from the message and the socket (client, key,
//! `<table>.read`, rate limit), and recorded in the statistics like a gateway request (method
//! `WS`, path `/wss/gateway/cdc.subscribe`, operation `subscribe` on the table). The session then
//! writes the subscription's events as frames, each with the `subscription_id` the answer gave.
//!
//! Opening runs as a task of its own, as a gateway request does; the session keeps the book of
//! its subscriptions ([`Subscriptions`]) and the streams themselves. Filters are evaluated by the
//! hub in memory. Rights are checked when subscribing and again on every heartbeat of the socket
//! (`keys::still_allowed`, as keys stand then): a subscription whose key was revoked, expired or
//! lost `<table>.read` is ended with `closed`.
//!
//! Memory: a subscription holds at most `cdc.subscriber_buffer` events in the hub's buffer, and a
//! socket at most `websocket.max_subscriptions` subscriptions. The session adds no queue of its
//! own: it takes events from the hub's buffer only when it runs, and it runs only when the
//! socket's writer asks for more bytes (actix-http stops polling a response body whose write
//! buffer is full). A caller that stops reading therefore leaves the events in the hub's buffer,
//! which fills, and the hub ends that subscription with `lagged` (the frame is written when the
//! caller reads again); nothing queues without bound, and no other subscriber waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix::SpawnHandle;
use actix_web::web;
use athena_actors::cdc::{event::label, CdcMessage, Subscription};
use athena_actors::keys::Required;
use athena_actors::stats::{OperationRecord, RequestId};

use super::protocol::{self, CdcAction, MessageHeaders, SubscribeMessage};
use super::request::{record, Outcome, Peer, WsCall};
use crate::http::error::ApiError;
use crate::http::stats::{self, RequestFacts};
use crate::http::AppState;

/// A subscription that was opened, with the request it answers.
pub struct Opened {
    pub request_id: String,
    pub subscription: Subscription,
    /// The key it was admitted with, and the right it needs: checked again later.
    pub key: Option<Arc<str>>,
    pub required: Required,
}

/// What one subscription stream yields to the session: a message of subscription `id`, or its end.
pub enum SubEvent {
    Message(String, CdcMessage),
    /// The stream ended; after a `lagged` or `closed` message the subscription is already gone.
    End(String),
}

async fn admit(
    call: &WsCall,
    state: &AppState,
    msg: SubscribeMessage,
) -> Result<(Subscription, Required), ApiError> {
    let mut body = msg.body;
    body.insert(
        "client_name".into(),
        serde_json::Value::String(msg.client_name),
    );
    let request = crate::http::cdc::parse_subscription(&body, &state.dialect())?;
    stats::note_operation(
        call,
        "subscribe",
        Some(label(&request.table.0, &request.table.1)),
    );
    let required = crate::http::cdc::required(&request);
    let subscription = crate::http::cdc::subscribe(call, state, request).await?;
    Ok((subscription, required))
}

/// Opens a subscription for a `cdc.subscribe` message and records the request. The error is the
/// error frame to write.
pub async fn open(
    state: web::Data<AppState>,
    msg: SubscribeMessage,
    socket_key: Option<Arc<str>>,
    peer: Arc<Peer>,
) -> Result<Opened, String> {
    let started = Instant::now();
    let at = SystemTime::now();
    let trace_id = RequestId::next();
    let request_id = msg.request_id.clone();
    let call = WsCall::new(
        &msg.client_name,
        msg.headers.clone(),
        socket_key,
        peer.clone(),
    );
    let (status, error, answer) = match admit(&call, &state, msg).await {
        Ok((subscription, required)) => (
            200,
            None,
            Ok(Opened {
                request_id,
                subscription,
                key: call.key(),
                required,
            }),
        ),
        Err(e) => (
            e.code.status().as_u16(),
            Some(e.code.as_str()),
            Err(protocol::error_frame(Some(&request_id), &e, trace_id)),
        ),
    };
    let (facts, headers) = call.into_parts();
    let outcome = Outcome {
        path: CdcAction::Subscribe.stats_path(),
        trace_id,
        at,
        started,
        status,
        error,
        headers,
    };
    record(&state, &peer, outcome, facts);
    answer
}

/// A message answered at once by the session (a subscription over the socket's bound, an
/// unsubscribe): its frame, recorded like the others.
pub fn answer_now(
    state: &AppState,
    peer: &Peer,
    action: CdcAction,
    request_id: &str,
    facts: RequestFacts,
    result: Result<String, ApiError>,
) -> String {
    let trace_id = RequestId::next();
    let (frame, status, error) = match result {
        Ok(frame) => (frame, 200, None),
        Err(e) => (
            protocol::error_frame(Some(request_id), &e, trace_id),
            e.code.status().as_u16(),
            Some(e.code.as_str()),
        ),
    };
    let outcome = Outcome {
        path: action.stats_path(),
        trace_id,
        at: SystemTime::now(),
        started: Instant::now(),
        status,
        error,
        headers: MessageHeaders::default(),
    };
    record(state, peer, outcome, facts);
    frame
}

/// The statistics facts of a subscribe message refused before it was admitted.
pub fn refused_facts(state: &AppState, msg: &SubscribeMessage) -> RequestFacts {
    let client = {
        let snapshot = state.actors.snapshot.load();
        snapshot.get(msg.client_name.trim()).map(|c| c.name.clone())
    };
    let table = ["table", "table_name"]
        .iter()
        .find_map(|f| msg.body.get(*f).and_then(|v| v.as_str()))
        .map(str::to_string);
    RequestFacts {
        client,
        operation: Some(OperationRecord {
            operation: "subscribe".into(),
            table,
            row_count: None,
            message: None,
        }),
        ..RequestFacts::default()
    }
}

/// One open subscription of a socket.
pub struct Open {
    /// The stream's place in the session's context, to cancel it.
    pub handle: SpawnHandle,
    pub client: String,
    /// The key it was admitted with (the message's, else the socket's then).
    pub key: Option<Arc<str>>,
    /// `<table>.read`.
    pub required: Required,
    /// The seq of the last change written (or the start): where to resume.
    pub last_seq: i64,
}

/// The book of a socket's subscriptions.
#[derive(Default)]
pub struct Subscriptions {
    open: HashMap<String, Open>,
    /// Subscriptions being opened: they count against the bound until answered.
    pub pending: usize,
    /// The number of the last id given.
    last_id: u64,
}

impl Subscriptions {
    /// Open and pending subscriptions.
    pub fn count(&self) -> usize {
        self.open.len() + self.pending
    }

    /// A new id, unique within the socket.
    pub fn next_id(&mut self) -> String {
        self.last_id += 1;
        format!("s{}", self.last_id)
    }

    pub fn insert(&mut self, id: String, open: Open) {
        self.open.insert(id, open);
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Open> {
        self.open.get_mut(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<Open> {
        self.open.remove(id)
    }

    /// The ids of the open subscriptions `keep` refuses, with why.
    pub fn refused(&self, keep: impl Fn(&Open) -> Result<(), ApiError>) -> Vec<(String, String)> {
        self.open
            .iter()
            .filter_map(|(id, open)| keep(open).err().map(|e| (id.clone(), e.detail)))
            .collect()
    }
}
