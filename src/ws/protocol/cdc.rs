//! The change-stream messages of the socket, as pure functions like the rest of `protocol`:
//! `cdc.subscribe` and `cdc.unsubscribe` read into an [`Incoming`], and the frames a subscription
//! writes (its answer, its events, its last word).
//!
//! A subscribe message has the shape of a gateway request, so one socket speaks one message
//! shape: `{request_id, action: "cdc.subscribe", client_name, body: {table, filter?, since_seq?},
//! headers?}`; the body is read by `http::cdc::parse_subscription` when the subscription is
//! opened. `{request_id, action: "cdc.unsubscribe", subscription_id}` ends one.

use athena_actors::cdc::CdcMessage;
use serde_json::{json, Map, Value};

use super::{headers, invalid, missing, string, Incoming, MessageHeaders, Refused};
use crate::http::error::ApiError;

/// A change-stream action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdcAction {
    Subscribe,
    Unsubscribe,
}

impl CdcAction {
    pub const ALL: [CdcAction; 2] = [CdcAction::Subscribe, CdcAction::Unsubscribe];

    pub fn as_str(self) -> &'static str {
        match self {
            CdcAction::Subscribe => "cdc.subscribe",
            CdcAction::Unsubscribe => "cdc.unsubscribe",
        }
    }

    pub(super) fn parse(s: &str) -> Option<CdcAction> {
        CdcAction::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// What it does, for `/wss/info` (these actions have no HTTP route).
    pub fn describe(self) -> &'static str {
        match self {
            CdcAction::Subscribe => {
                "{request_id, action, client_name, body:{table, filter?, since_seq?}, headers?}: \
                 stream one captured table's changes; answered with a subscription_id, then \
                 change frames"
            }
            CdcAction::Unsubscribe => "{request_id, action, subscription_id}: end a subscription",
        }
    }

    /// The path (and metrics route) the statistics record a message of this action under.
    pub fn stats_path(self) -> &'static str {
        match self {
            CdcAction::Subscribe => "/wss/gateway/cdc.subscribe",
            CdcAction::Unsubscribe => "/wss/gateway/cdc.unsubscribe",
        }
    }
}

/// A `cdc.subscribe` message. Its `body` is checked when the subscription is opened, as a gateway
/// request's body is checked when it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeMessage {
    pub request_id: String,
    pub client_name: String,
    pub body: Map<String, Value>,
    pub headers: MessageHeaders,
}

/// Reads a change-stream message whose `action` and `request_id` were read already.
pub(super) fn parse(
    action: CdcAction,
    id: Option<String>,
    m: &Map<String, Value>,
) -> Result<Incoming, Refused> {
    let refuse = |error: ApiError| Refused {
        request_id: id.clone(),
        error,
    };
    let request_id = id.clone().ok_or_else(|| Refused {
        request_id: None,
        error: missing("request_id").hint("every request names a request_id its answer repeats"),
    })?;
    match action {
        CdcAction::Subscribe => {
            let client_name = string(m, "client_name").map_err(refuse)?;
            let body = match m.get("body") {
                None | Some(Value::Null) => return Err(refuse(missing("body"))),
                Some(Value::Object(b)) => b.clone(),
                Some(other) => return Err(refuse(invalid("body", "an object", other))),
            };
            let headers = headers(m.get("headers"), &client_name).map_err(refuse)?;
            Ok(Incoming::Subscribe(SubscribeMessage {
                request_id,
                client_name,
                body,
                headers,
            }))
        }
        CdcAction::Unsubscribe => Ok(Incoming::Unsubscribe {
            request_id,
            subscription_id: string(m, "subscription_id").map_err(refuse)?,
        }),
    }
}

/// The answer to an accepted subscription: events after `start_seq` follow, each carrying
/// `subscription_id`.
pub fn subscribed_frame(
    request_id: &str,
    subscription_id: &str,
    client: &str,
    table: &str,
    start_seq: i64,
) -> String {
    json!({
        "request_id": request_id,
        "status": "success",
        "message": format!("Subscribed to {table} of client {client}"),
        "data": {
            "subscription_id": subscription_id,
            "client": client,
            "table": table,
            "start_seq": start_seq,
        },
    })
    .to_string()
}

/// The answer to `cdc.unsubscribe`: nothing of that subscription follows it. `last_seq` is the
/// seq of the last event sent (or the start), to resume from with `since_seq`.
pub fn unsubscribed_frame(request_id: &str, subscription_id: &str, last_seq: i64) -> String {
    json!({
        "request_id": request_id,
        "status": "success",
        "message": "Unsubscribed",
        "data": {"subscription_id": subscription_id, "last_seq": last_seq},
    })
    .to_string()
}

/// A subscription's message as a frame: the hub's own serialisation (`{"type":…,` first) with
/// `subscription_id` put second, so the event shape has one definition.
pub fn event_frame(subscription_id: &str, msg: &CdcMessage) -> String {
    let body = serde_json::to_string(msg).unwrap_or_default();
    let id = Value::String(subscription_id.to_string()).to_string();
    // `{"type":"change",…`: the type names hold no comma, so the first comma ends the first entry.
    match body.find(',') {
        Some(at) => {
            let mut out = String::with_capacity(body.len() + id.len() + 20);
            out.push_str(&body[..=at]);
            out.push_str("\"subscription_id\":");
            out.push_str(&id);
            out.push(',');
            out.push_str(&body[at + 1..]);
            out
        }
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    use athena_actors::cdc::{ChangeEvent, ChangeOp};

    use super::super::parse as parse_message;
    use super::*;

    #[test]
    fn subscribe_messages_take_the_request_shape() {
        let m = parse_message(
            r#"{"request_id":"s","action":"cdc.subscribe","client_name":"default",
                "body":{"table":"items","since_seq":3},"headers":{"x-api-key":"k"}}"#,
        )
        .unwrap();
        let Incoming::Subscribe(s) = m else {
            panic!("not a subscription: {m:?}")
        };
        assert_eq!(
            (s.request_id.as_str(), s.client_name.as_str()),
            ("s", "default")
        );
        assert_eq!(s.body["table"], "items");
        assert_eq!(s.headers.key.as_deref(), Some("k"));
        assert_eq!(
            parse_message(
                r#"{"request_id":"u","action":"cdc.unsubscribe","subscription_id":"s1"}"#
            )
            .unwrap(),
            Incoming::Unsubscribe {
                request_id: "u".into(),
                subscription_id: "s1".into()
            }
        );
    }

    #[test]
    fn malformed_change_stream_messages_are_refused_naming_the_field() {
        for (text, id, code) in [
            (
                r#"{"action":"cdc.subscribe","client_name":"d","body":{}}"#,
                None,
                "missing_field",
            ),
            (
                r#"{"request_id":"1","action":"cdc.subscribe","body":{"table":"t"}}"#,
                Some("1"),
                "missing_field",
            ),
            (
                r#"{"request_id":"1","action":"cdc.subscribe","client_name":"d"}"#,
                Some("1"),
                "missing_field",
            ),
            (
                r#"{"request_id":"1","action":"cdc.subscribe","client_name":"d","body":"items"}"#,
                Some("1"),
                "invalid_field",
            ),
            (
                r#"{"request_id":"1","action":"cdc.subscribe","client_name":"d","body":{},"headers":{"x-jdbc-url":"x"}}"#,
                Some("1"),
                "connection_target_not_allowed",
            ),
            (
                r#"{"request_id":"2","action":"cdc.unsubscribe"}"#,
                Some("2"),
                "missing_field",
            ),
            (
                r#"{"request_id":"2","action":"cdc.unsubscribe","subscription_id":7}"#,
                Some("2"),
                "invalid_field",
            ),
        ] {
            let r = parse_message(text).expect_err(text);
            assert_eq!(
                (r.request_id.as_deref(), r.error.code.as_str()),
                (id, code),
                "{text}"
            );
        }
    }

    #[test]
    fn event_frames_carry_the_subscription_second() {
        let ev = ChangeEvent {
            seq: 4,
            client: "c".into(),
            schema: "public".into(),
            table: "t".into(),
            op: ChangeOp::Insert,
            row: json!({"id": 1, "a,b": "x,y"}).as_object().unwrap().clone(),
            old: None,
            committed_at: UNIX_EPOCH,
        };
        let f = event_frame("s\"1", &CdcMessage::Change(Arc::new(ev)));
        assert!(
            f.starts_with(r#"{"type":"change","subscription_id":"s\"1","seq":4,"#),
            "{f}"
        );
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["row"]["a,b"], "x,y");
        let lagged = event_frame("s2", &CdcMessage::Lagged { last_seq: 9 });
        assert_eq!(
            lagged,
            r#"{"type":"lagged","subscription_id":"s2","last_seq":9}"#
        );
        let closed: Value = serde_json::from_str(&event_frame(
            "s3",
            &CdcMessage::Closed {
                reason: "stopping".into(),
                last_seq: 2,
            },
        ))
        .unwrap();
        assert_eq!(
            closed,
            json!({"type": "closed", "subscription_id": "s3", "reason": "stopping", "last_seq": 2})
        );
    }
}
