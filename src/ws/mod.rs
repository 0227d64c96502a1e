//! The WebSocket gateway: `GET /wss/gateway` upgrades to a socket that carries the HTTP gateway's
//! operations (`gateway.fetch|insert|update|delete|query`) as JSON messages, several in flight at
//! once, each answered with its `request_id` and the envelope the matching HTTP route answers,
//! and change subscriptions (`cdc.subscribe`, `cdc.unsubscribe`) whose events are written as
//! frames as the hub delivers them; `GET /wss/info` describes the protocol.
//!
//! The socket is an edge like HTTP, not a proxy to it: each request runs the HTTP routes' own
//! code (`crate::http::gateway` and `crate::http::query`, through [`crate::http::call::Call`])
//! with the same keys, rights, enforcement, rate limits, cache and statistics. The key comes from
//! the upgrade's headers (as over HTTP) or from an `auth` message, for browsers that cannot set
//! headers; a message may also carry a key of its own in its `headers`.
//!
//! What it deliberately does not do: forward to URLs (the reference proxy's `path` is ignored),
//! accept connection targets, or take keys from the query string.

mod protocol;
mod request;
mod session;
mod subscribe;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde_json::json;

use crate::http::auth::presented_key;
use crate::http::call::Call;
use crate::http::error::{ApiError, Code};
use crate::http::headers::{text, USER_AGENT};
use crate::http::{keys, AppState};
pub use protocol::PROTOCOL;
use protocol::{limits, Action, CdcAction};
use request::Peer;
use session::Session;

/// `GET /wss/gateway`: the upgrade. A key in the headers must be one that can be valid (else 401
/// `invalid_api_key` and no socket); whether it may do what each request asks is decided per
/// request, as over HTTP.
pub async fn upgrade(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    ws::handshake(&req).map_err(|e| {
        ApiError::new(
            Code::UpgradeRequired,
            format!("this route speaks WebSocket only: {e}"),
        )
        .hint("connect with a WebSocket client; GET /wss/info describes the protocol")
    })?;
    let key = presented_key(&req).map(str::to_string);
    if let Some(k) = &key {
        if let Some(failure) = keys::key_failure(&state, k) {
            return Err(ApiError::new(
                Code::InvalidApiKey,
                keys::failure_message(failure),
            ));
        }
    }
    let info = req.connection_info().clone();
    let api_base = format!("{}://{}", info.scheme(), info.host());
    let [user_id, company_id, organization_id] = req.audit_ids().map(|v| v.map(str::to_string));
    let peer = Peer {
        remote_addr: req.peer_addr().map(|a| a.ip()),
        user_agent: text(&req, &USER_AGENT),
        user_id,
        company_id,
        organization_id,
    };
    let max_frame = state.settings.websocket.max_frame_bytes;
    let session = Session::new(state, key.map(Arc::from), peer, api_base);
    ws::WsResponseBuilder::new(session, &req, stream)
        .protocols(&[PROTOCOL])
        .frame_size(max_frame)
        .start()
        .map_err(|e| ApiError::new(Code::Internal, format!("the upgrade failed: {e}")))
}

/// `GET /wss/info`: the protocol in brief, with the limits in force. `/openapi-wss.yaml` is the
/// full contract.
pub async fn info(state: web::Data<AppState>) -> HttpResponse {
    let actions: Vec<_> =
        Action::ALL
            .iter()
            .map(|a| json!({"action": a.as_str(), "http_route": a.http_route()}))
            .chain(CdcAction::ALL.iter().map(
                |a| json!({"action": a.as_str(), "http_route": null, "message": a.describe()}),
            ))
            .collect();
    let body = json!({
        "status": "success",
        "message": "WebSocket gateway",
        "data": {
            "endpoint": "/wss/gateway",
            "protocol": PROTOCOL,
            "version": env!("CARGO_PKG_VERSION"),
            "contract": "/openapi-wss.yaml",
            "actions": actions,
            "auth": {
                "headers": ["Authorization: Bearer <key>", "apikey", "x-api-key", "x-athena-key"],
                "message": {"action": "auth", "key": "<key>", "request_id": "optional"},
                "per_request": "a request's headers object may carry a key of its own",
            },
            "messages": {
                "connect_ack": "{status:\"success\", message:\"connected\", data:{started_at, api_base, protocol, limits}}",
                "request": "{request_id, action, client_name, body, headers?}",
                "response": "{request_id, cache?, status:\"success\", message, data}",
                "error": "{request_id|null, status:\"error\", message, error, code, hint?, trace_id, retry_after?}",
                "auth_ack": "{request_id|null, status:\"success\", message:\"authenticated\", data:{admin, public_id}}",
                "subscribed": "{request_id, status:\"success\", message, data:{subscription_id, client, table, start_seq}}",
                "unsubscribed": "{request_id, status:\"success\", message:\"Unsubscribed\", data:{subscription_id, last_seq}}",
                "change": "{type:\"change\", subscription_id, seq, client, table, op, row, old?, committed_at}",
                "lagged": "{type:\"lagged\", subscription_id, last_seq}: the subscription ended; resubscribe with since_seq: last_seq",
                "closed": "{type:\"closed\", subscription_id, reason, last_seq}: the subscription ended",
            },
            "headers": ["x-strip-nulls", "cache-control", "x-user-id", "x-company-id",
                        "x-organization-id", "x-athena-client", "authorization", "apikey",
                        "x-api-key", "x-athena-key"],
            "limits": limits(&state.settings.websocket),
            "close_codes": {
                "1000": "normal closure, answering the caller's close",
                "1001": "going away: idle timeout (nothing heard for idle_timeout_ms with no request running), or the server is shutting down (after answering the requests running)",
                "1002": "WebSocket protocol error",
                "1007": "a fragmented text message that is not UTF-8",
                "1009": "a message larger than max_frame_bytes",
            },
        }
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string())
}
