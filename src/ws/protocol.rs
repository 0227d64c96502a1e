//! The messages of the WebSocket gateway, as pure functions: reading a caller's text message into
//! an [`Incoming`] (or a [`Refused`] naming the error code and, when it could be read, the
//! request id), and rendering the server's frames. Nothing here touches a socket or an actor.
//!
//! The contract is `openapi-wss.yaml`; `GET /wss/info` summarises it.

mod cdc;

use std::time::SystemTime;

use athena_actors::stats::RequestId;
use serde_json::{json, Map, Value};

use crate::config::WebsocketConfig;
use crate::dialect::{Body, Kind};
use crate::http::body::{kind, storable_fields};
use crate::http::cache::Outcome;
use crate::http::call::{no_cache, truthy};
use crate::http::error::{ApiError, Code};
pub use cdc::{event_frame, subscribed_frame, unsubscribed_frame, CdcAction, SubscribeMessage};

/// The message protocol spoken on a socket, sent in the connect acknowledgement and accepted as
/// the `Sec-WebSocket-Protocol`.
pub const PROTOCOL: &str = "athena-gateway/1";

/// The longest `request_id` accepted.
pub const MAX_REQUEST_ID: usize = 256;

/// A gateway operation; each one is an HTTP gateway route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Fetch,
    Insert,
    Update,
    Delete,
    Query,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Fetch,
        Action::Insert,
        Action::Update,
        Action::Delete,
        Action::Query,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Fetch => "gateway.fetch",
            Action::Insert => "gateway.insert",
            Action::Update => "gateway.update",
            Action::Delete => "gateway.delete",
            Action::Query => "gateway.query",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The HTTP route that answers the same request.
    pub fn http_route(self) -> &'static str {
        match self {
            Action::Fetch => "POST /gateway/fetch",
            Action::Insert => "PUT /gateway/insert",
            Action::Update => "POST /gateway/update",
            Action::Delete => "DELETE /gateway/delete",
            Action::Query => "POST /gateway/query",
        }
    }

    /// The structured operation, or `None` for raw SQL.
    pub fn kind(self) -> Option<Kind> {
        match self {
            Action::Fetch => Some(Kind::Fetch),
            Action::Insert => Some(Kind::Insert),
            Action::Update => Some(Kind::Update),
            Action::Delete => Some(Kind::Delete),
            Action::Query => None,
        }
    }

    /// The operation name of the statistics (`fetch`, …, `query`).
    pub fn operation_name(self) -> &'static str {
        match self.kind() {
            Some(k) => k.operation_name(),
            None => "query",
        }
    }

    /// The path (and metrics route) the statistics record a request of this action under.
    pub fn stats_path(self) -> &'static str {
        match self {
            Action::Fetch => "/wss/gateway/gateway.fetch",
            Action::Insert => "/wss/gateway/gateway.insert",
            Action::Update => "/wss/gateway/gateway.update",
            Action::Delete => "/wss/gateway/gateway.delete",
            Action::Query => "/wss/gateway/gateway.query",
        }
    }
}

/// What the per-message `headers` object may say; the HTTP headers of the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageHeaders {
    /// A key for this request only (`Authorization: Bearer`, `apikey`, `x-api-key`,
    /// `x-athena-key`), in place of the socket's.
    pub key: Option<String>,
    pub strip_nulls: bool,
    /// `X-Publish-Event`: a write publishes an event to the table's change subscribers.
    pub publish_event: bool,
    /// `Cache-Control: no-cache` or `no-store`.
    pub no_cache: bool,
    pub user_id: Option<String>,
    pub company_id: Option<String>,
    pub organization_id: Option<String>,
}

/// One gateway request.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRequest {
    pub request_id: String,
    pub action: Action,
    pub client_name: String,
    pub body: Body,
    pub headers: MessageHeaders,
}

/// A caller's message, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `{"action":"auth","key":"…","request_id"?}`: the key of the socket's later requests.
    Auth {
        request_id: Option<String>,
        key: String,
    },
    Request(GatewayRequest),
    /// `cdc.subscribe`: open a change subscription.
    Subscribe(SubscribeMessage),
    /// `cdc.unsubscribe`: end one.
    Unsubscribe {
        request_id: String,
        subscription_id: String,
    },
}

/// A message that cannot be served, with the request id when it could be read.
#[derive(Debug, Clone)]
pub struct Refused {
    pub request_id: Option<String>,
    pub error: ApiError,
}

/// Headers naming a caller-supplied connection target: refused, as over HTTP.
const CONNECTION_TARGETS: [(&str, &str); 3] = [
    ("x-jdbc-url", "X-JDBC-URL"),
    ("x-supabase-url", "X-Supabase-Url"),
    ("x-supabase-key", "X-Supabase-Key"),
];

fn invalid(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::new(
        Code::InvalidField,
        format!("{field} must be {expected}, not {}", kind(got)),
    )
}

fn missing(field: &str) -> ApiError {
    ApiError::new(Code::MissingField, format!("the message has no {field}"))
        .hint("see GET /wss/info for the message shapes")
}

/// A required, non-empty string field.
fn string(m: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::new(
            Code::InvalidField,
            format!("{field} must not be empty"),
        )),
        Some(other) => Err(invalid(field, "a string", other)),
    }
}

/// The `request_id`: `Ok(None)` when absent, an error when present but unusable.
fn request_id(m: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match m.get("request_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_REQUEST_ID => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::new(
            Code::InvalidField,
            format!("request_id must be 1 to {MAX_REQUEST_ID} bytes long"),
        )),
        Some(other) => Err(invalid("request_id", "a string", other)),
    }
}

/// Reads the optional `headers` object. `client_name` is what an `x-athena-client` header must
/// repeat, if it is given.
fn headers(v: Option<&Value>, client_name: &str) -> Result<MessageHeaders, ApiError> {
    let mut out = MessageHeaders::default();
    let map = match v {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(invalid("headers", "an object", other)),
    };
    let mut keys: [Option<String>; 4] = Default::default();
    for (name, value) in map {
        let Value::String(value) = value else {
            return Err(invalid(&format!("headers.{name}"), "a string", value));
        };
        let value = value.trim();
        let text = || Some(value.to_string()).filter(|v| !v.is_empty());
        let lower = name.to_ascii_lowercase();
        if let Some((_, shown)) = CONNECTION_TARGETS.iter().find(|(n, _)| *n == lower) {
            return Err(ApiError::new(
                Code::ConnectionTargetNotAllowed,
                format!("caller-supplied connection targets ({shown}) are not allowed"),
            )
            .hint("register the database as a client and name it in client_name"));
        }
        match lower.as_str() {
            "authorization" => {
                keys[0] = (value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer "))
                    .then(|| value[7..].trim().to_string())
            }
            "apikey" => keys[1] = text(),
            "x-api-key" => keys[2] = text(),
            "x-athena-key" => keys[3] = text(),
            "x-strip-nulls" => out.strip_nulls = truthy(value),
            "x-publish-event" => out.publish_event = truthy(value),
            "cache-control" => out.no_cache = no_cache([value]),
            "x-user-id" => out.user_id = text(),
            "x-company-id" => out.company_id = text(),
            "x-organization-id" => out.organization_id = text(),
            "x-athena-client" if !value.eq_ignore_ascii_case(client_name.trim()) => {
                return Err(ApiError::new(
                    Code::InvalidField,
                    format!(
                        "headers.x-athena-client {value:?} and client_name {client_name:?} name different clients"
                    ),
                ))
            }
            // Other headers mean nothing here, as unknown headers mean nothing over HTTP.
            _ => {}
        }
    }
    // The first that carries a key, in the order HTTP reads them.
    out.key = keys.into_iter().flatten().find(|k| !k.is_empty());
    Ok(out)
}

/// Reads one text message.
pub fn parse(text: &str) -> Result<Incoming, Refused> {
    let refuse = |request_id: Option<String>| move |error: ApiError| Refused { request_id, error };
    let value: Value = serde_json::from_str(text).map_err(|e| Refused {
        request_id: None,
        error: ApiError::new(
            Code::InvalidJson,
            format!("the message is not valid JSON: {e}"),
        ),
    })?;
    let Value::Object(m) = value else {
        return Err(Refused {
            request_id: None,
            error: ApiError::new(
                Code::InvalidBody,
                format!("the message must be a JSON object, not {}", kind(&value)),
            ),
        });
    };
    let id = request_id(&m).map_err(refuse(None))?;
    // What PostgreSQL cannot store is refused here, for every action, as HTTP refuses it in the
    // body.
    storable_fields(&m).map_err(refuse(id.clone()))?;
    let action = string(&m, "action").map_err(refuse(id.clone()))?;
    if action == "auth" {
        let key = string(&m, "key").map_err(refuse(id.clone()))?;
        return Ok(Incoming::Auth {
            request_id: id,
            key: key.trim().to_string(),
        });
    }
    if let Some(cdc) = CdcAction::parse(&action) {
        return cdc::parse(cdc, id, &m);
    }
    let Some(action) = Action::parse(&action) else {
        let known: Vec<&str> = Action::ALL
            .iter()
            .map(|a| a.as_str())
            .chain(CdcAction::ALL.iter().map(|a| a.as_str()))
            .collect();
        return Err(Refused {
            request_id: id,
            error: ApiError::new(
                Code::UnknownAction,
                format!("unknown action {action:?}; use auth, {}", known.join(", ")),
            ),
        });
    };
    let request_id = id.clone().ok_or_else(|| Refused {
        request_id: None,
        error: missing("request_id").hint("every request names a request_id its answer repeats"),
    })?;
    let client_name = string(&m, "client_name").map_err(refuse(id.clone()))?;
    let body = match m.get("body") {
        None | Some(Value::Null) => return Err(refuse(id)(missing("body"))),
        Some(Value::Object(b)) => b.clone(),
        Some(other) => return Err(refuse(id)(invalid("body", "an object", other))),
    };
    let headers = headers(m.get("headers"), &client_name).map_err(refuse(id))?;
    Ok(Incoming::Request(GatewayRequest {
        request_id,
        action,
        client_name,
        body,
        headers,
    }))
}

/// `{"request_id": …,` then the rest of `envelope` (a JSON object), and the cache outcome of a
/// fetch. The envelope's bytes are spliced, not parsed: rows the database rendered stay as they
/// were.
pub fn success_frame(
    request_id: &str,
    envelope: &[u8],
    cache: Option<Outcome>,
) -> Result<String, ApiError> {
    let text = std::str::from_utf8(envelope)
        .ok()
        .and_then(|t| t.trim_start().strip_prefix('{'))
        .ok_or_else(|| ApiError::new(Code::Internal, "an envelope was not a JSON object"))?;
    let mut out = String::with_capacity(text.len() + request_id.len() + 40);
    out.push_str("{\"request_id\":");
    out.push_str(&Value::String(request_id.to_string()).to_string());
    if let Some(outcome) = cache {
        out.push_str(",\"cache\":\"");
        out.push_str(outcome.as_str());
        out.push('"');
    }
    out.push(',');
    out.push_str(text);
    Ok(out)
}

/// The error envelope of HTTP with the request's id first, and `retry_after` (seconds) where
/// HTTP would send `Retry-After`.
pub fn error_frame(request_id: Option<&str>, err: &ApiError, trace_id: RequestId) -> String {
    let mut out = Map::new();
    out.insert("request_id".into(), json!(request_id));
    if let Value::Object(envelope) = err.envelope(&trace_id.to_string()) {
        out.extend(envelope);
    }
    if let Some(secs) = err.retry_after {
        out.insert("retry_after".into(), json!(secs));
    }
    Value::Object(out).to_string()
}

/// The answer to an accepted `auth` message.
pub fn auth_frame(request_id: Option<&str>, admin: bool, public_id: Option<&str>) -> String {
    json!({
        "request_id": request_id,
        "status": "success",
        "message": "authenticated",
        "data": {"admin": admin, "public_id": public_id},
    })
    .to_string()
}

/// The limits a socket runs under, as the acknowledgement and `/wss/info` show them.
pub fn limits(w: &WebsocketConfig) -> Value {
    json!({
        "max_in_flight": w.max_in_flight,
        "max_frame_bytes": w.max_frame_bytes,
        "ping_interval_ms": w.ping_interval_ms,
        "idle_timeout_ms": w.idle_timeout_ms,
        "max_subscriptions": w.max_subscriptions,
    })
}

/// The first frame of every socket.
pub fn connect_ack(started_at: SystemTime, api_base: &str, w: &WebsocketConfig) -> String {
    json!({
        "status": "success",
        "message": "connected",
        "data": {
            "started_at": rfc3339(started_at),
            "api_base": api_base,
            "protocol": PROTOCOL,
            "limits": limits(w),
        },
    })
    .to_string()
}

/// `2026-01-02T03:04:05.678Z`: a UTC timestamp in RFC 3339, to the millisecond.
pub fn rfc3339(t: SystemTime) -> String {
    athena_actors::civil::rfc3339(t, athena_actors::civil::Fraction::Millis)
}

#[cfg(test)]
mod tests;
