//! One gateway request over a socket: a [`Call`] made from the message and the socket, run by the
//! same core as the HTTP routes, rendered as a frame and recorded in the statistics like an HTTP
//! gateway request (method `WS`, path `/wss/gateway/<action>`).
//!
//! It runs as a task of its own on the worker that holds the socket, not as a future of the
//! session actor: a request whose socket closes still finishes, so a write still invalidates the
//! cache and is still recorded; only its answer is dropped.

use std::cell::{RefCell, RefMut};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix_web::web;
use athena_actors::stats::{RequestId, RequestRecord};

use super::protocol::{self, GatewayRequest};
use crate::http::call::Call;
use crate::http::error::ApiError;
use crate::http::stats::RequestFacts;
use crate::http::{gateway, query, AppState};

/// What a socket knows of its caller beyond each message: what the upgrade request said.
#[derive(Debug, Default)]
pub struct Peer {
    pub remote_addr: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub user_id: Option<String>,
    pub company_id: Option<String>,
    pub organization_id: Option<String>,
}

/// A request as the core reads it (a gateway request's, or a subscription's).
pub(super) struct WsCall {
    client_name: String,
    /// The message's own key, else the socket's.
    key: Option<Arc<str>>,
    /// The message's headers; its audit ids, when absent, are the upgrade request's (`peer`).
    headers: protocol::MessageHeaders,
    peer: Arc<Peer>,
    facts: RefCell<RequestFacts>,
}

impl WsCall {
    /// The call of a message naming `client_name` with `headers`; `socket_key` is the socket's
    /// key, used when the message carries none.
    pub(super) fn new(
        client_name: &str,
        headers: protocol::MessageHeaders,
        socket_key: Option<Arc<str>>,
        peer: Arc<Peer>,
    ) -> WsCall {
        WsCall {
            client_name: client_name.to_string(),
            key: headers.key.as_deref().map(Arc::from).or(socket_key),
            headers,
            peer,
            facts: RefCell::default(),
        }
    }

    /// The key the call presents: the message's own, else the socket's.
    pub(super) fn key(&self) -> Option<Arc<str>> {
        self.key.clone()
    }

    /// What the handlers learned and the message's headers, for the statistics record.
    pub(super) fn into_parts(self) -> (RequestFacts, protocol::MessageHeaders) {
        (self.facts.into_inner(), self.headers)
    }
}

impl Call for WsCall {
    fn client_name(&self) -> Result<Option<&str>, ApiError> {
        Ok(Some(&self.client_name))
    }

    fn presented_key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn strip_nulls(&self) -> bool {
        self.headers.strip_nulls
    }

    fn publish_event(&self) -> bool {
        self.headers.publish_event
    }

    fn bypass_cache(&self) -> bool {
        self.headers.no_cache
    }

    fn connection_target(&self) -> Option<&'static str> {
        // Refused when the message was read (`protocol::parse`).
        None
    }

    fn audit_ids(&self) -> [Option<&str>; 3] {
        let (h, p) = (&self.headers, &self.peer);
        [
            (&h.user_id, &p.user_id),
            (&h.company_id, &p.company_id),
            (&h.organization_id, &p.organization_id),
        ]
        .map(|(own, upgrade)| {
            own.as_deref()
                .or(upgrade.as_deref())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        })
    }

    fn facts(&self) -> RefMut<'_, RequestFacts> {
        self.facts.borrow_mut()
    }
}

async fn serve(call: &WsCall, state: &AppState, req: GatewayRequest) -> Result<String, ApiError> {
    let answer = match req.action.kind() {
        Some(kind) => {
            let begun = gateway::begin(kind, call, state)?;
            gateway::finish(begun, call, state, req.body).await?
        }
        None => {
            let handle = query::begin_gateway_query(call, state)?;
            query::finish_gateway_query(call, state, &handle, req.body).await?
        }
    };
    protocol::success_frame(&req.request_id, &answer.body, answer.cache)
}

/// Runs one request and returns its frame; records it in the statistics.
pub async fn run(
    state: web::Data<AppState>,
    req: GatewayRequest,
    socket_key: Option<Arc<str>>,
    peer: Arc<Peer>,
) -> String {
    let started = Instant::now();
    let at = SystemTime::now();
    let trace_id = RequestId::next();
    let action = req.action;
    let request_id = req.request_id.clone();
    let call = WsCall::new(
        &req.client_name,
        req.headers.clone(),
        socket_key,
        peer.clone(),
    );
    let (frame, status, error) = match serve(&call, &state, req).await {
        Ok(frame) => (frame, 200, None),
        Err(e) => (
            protocol::error_frame(Some(&request_id), &e, trace_id),
            e.code.status().as_u16(),
            Some(e.code.as_str()),
        ),
    };
    let (facts, headers) = call.into_parts();
    let outcome = Outcome {
        path: action.stats_path(),
        trace_id,
        at,
        started,
        status,
        error,
        headers,
    };
    record(&state, &peer, outcome, facts);
    frame
}

/// A request refused before it ran (too many in flight): its frame, recorded like the others.
pub fn refuse(state: &AppState, req: &GatewayRequest, peer: &Peer, err: &ApiError) -> String {
    let trace_id = RequestId::next();
    let client = {
        let snapshot = state.actors.snapshot.load();
        snapshot.get(req.client_name.trim()).map(|c| c.name.clone())
    };
    let frame = protocol::error_frame(Some(&req.request_id), err, trace_id);
    let facts = RequestFacts {
        client,
        operation: Some(athena_actors::stats::OperationRecord {
            operation: req.action.operation_name().into(),
            table: crate::dialect::table(&req.body).ok().map(|t| t.to_string()),
            row_count: None,
            message: None,
        }),
        ..RequestFacts::default()
    };
    let outcome = Outcome {
        path: req.action.stats_path(),
        trace_id,
        at: SystemTime::now(),
        started: Instant::now(),
        status: err.code.status().as_u16(),
        error: Some(err.code.as_str()),
        headers: req.headers.clone(),
    };
    record(state, peer, outcome, facts);
    frame
}

/// How a request ended, for its statistics record.
pub(super) struct Outcome {
    /// `/wss/gateway/<action>`.
    pub path: &'static str,
    pub trace_id: RequestId,
    pub at: SystemTime,
    pub started: Instant,
    /// The HTTP status the same request would have been answered with.
    pub status: u16,
    pub error: Option<&'static str>,
    pub headers: protocol::MessageHeaders,
}

pub(super) fn record(state: &AppState, peer: &Peer, o: Outcome, facts: RequestFacts) {
    if !state.settings.stats_enabled {
        return;
    }
    let mut operation = facts.operation;
    if let (Some(op), Some(code)) = (operation.as_mut(), o.error) {
        op.message.get_or_insert_with(|| code.to_string());
    }
    let path = o.path;
    state.actors.stats.record(RequestRecord {
        request_id: o.trace_id,
        at: o.at,
        client: facts.client,
        method: "WS".into(),
        path: path.into(),
        route: path.into(),
        status: o.status,
        duration_ms: o.started.elapsed().as_secs_f64() * 1000.0,
        key_public_id: facts.key_public_id,
        user_id: o.headers.user_id.or_else(|| peer.user_id.clone()),
        company_id: o.headers.company_id.or_else(|| peer.company_id.clone()),
        organization_id: o
            .headers
            .organization_id
            .or_else(|| peer.organization_id.clone()),
        remote_addr: peer.remote_addr,
        user_agent: peer.user_agent.clone(),
        cached: facts.cached,
        operation,
        auth: facts.auth,
    });
}
