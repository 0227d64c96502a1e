//! What subscribers receive: [`CdcMessage`]s through a [`Subscription`].
//!
//! On the wire (the WebSocket layer serialises these with serde):
//! `{"type":"change","seq","client","table","op","row","old"?,"committed_at"}`,
//! `{"type":"lagged","last_seq"}` and `{"type":"closed","reason"}`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// What a change did to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Insert,
    Update,
    Delete,
    /// An event a write published (`X-Publish-Event`): `row` is the event, not a row.
    Event,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
            ChangeOp::Event => "event",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeOp> {
        Some(match s {
            "insert" => ChangeOp::Insert,
            "update" => ChangeOp::Update,
            "delete" => ChangeOp::Delete,
            "event" => ChangeOp::Event,
            _ => return None,
        })
    }
}

/// One captured row change, as stored in `cdc_events` and delivered to subscribers. Shared
/// (`Arc`) by every subscriber it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// Position in the event log: increases with commit order within a client.
    pub seq: i64,
    pub client: String,
    pub schema: String,
    pub table: String,
    pub op: ChangeOp,
    /// The row after the change; for a delete, the row as it was (its key columns only unless
    /// the table has REPLICA IDENTITY FULL).
    pub row: Map<String, Value>,
    /// The row before an update or delete, as far as PostgreSQL logged it.
    pub old: Option<Map<String, Value>>,
    pub committed_at: SystemTime,
}

impl ChangeEvent {
    /// The table as subscribers name it: `name` in `public`, `schema.name` elsewhere.
    pub fn table_label(&self) -> String {
        label(&self.schema, &self.table)
    }
}

/// `name` for tables in `public`, `schema.name` otherwise.
pub fn label(schema: &str, table: &str) -> String {
    if schema == "public" {
        table.to_string()
    } else {
        format!("{schema}.{table}")
    }
}

impl Serialize for ChangeEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "change")?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("client", &self.client)?;
        m.serialize_entry("table", &self.table_label())?;
        m.serialize_entry("op", self.op.as_str())?;
        m.serialize_entry("row", &self.row)?;
        if let Some(old) = &self.old {
            m.serialize_entry("old", old)?;
        }
        m.serialize_entry(
            "committed_at",
            &crate::civil::rfc3339(self.committed_at, crate::civil::Fraction::Micros),
        )?;
        m.end()
    }
}

/// One message of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum CdcMessage {
    Change(Arc<ChangeEvent>),
    /// The subscriber fell behind by more than its buffer and was dropped from the live stream.
    /// Every event up to `last_seq` was delivered (or did not match its filter); subscribing
    /// again with `since_seq: last_seq` continues without a gap.
    Lagged {
        last_seq: i64,
    },
    /// The stream ended for another reason (the table is no longer captured, the server is
    /// stopping). `last_seq` as for `Lagged`.
    Closed {
        reason: String,
        last_seq: i64,
    },
}

impl Serialize for CdcMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CdcMessage::Change(ev) => ev.serialize(s),
            CdcMessage::Lagged { last_seq } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "lagged")?;
                m.serialize_entry("last_seq", last_seq)?;
                m.end()
            }
            CdcMessage::Closed { reason, last_seq } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "closed")?;
                m.serialize_entry("reason", reason)?;
                m.serialize_entry("last_seq", last_seq)?;
                m.end()
            }
        }
    }
}

/// Where the hub leaves the last word of a subscription before it drops the sender: the
/// receiver drains what was buffered, then finds it.
pub type EndSlot = Arc<Mutex<Option<CdcMessage>>>;

/// A live subscription: the events of one table of one client, in `seq` order, with no gap and
/// no duplicate, from the starting point it was created with. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    pub id: u64,
    pub client: String,
    /// The table as events name it (`name` or `schema.name`).
    pub table: String,
    /// Events after this seq follow (the `since_seq` asked for, else the head of the log when
    /// the subscription was made).
    pub start_seq: i64,
    rx: mpsc::Receiver<Arc<ChangeEvent>>,
    end: EndSlot,
}

impl Subscription {
    pub(crate) fn new(
        id: u64,
        client: String,
        table: String,
        start_seq: i64,
        rx: mpsc::Receiver<Arc<ChangeEvent>>,
        end: EndSlot,
    ) -> Self {
        Subscription {
            id,
            client,
            table,
            start_seq,
            rx,
            end,
        }
    }

    /// The next message; `None` after the final `Lagged` or `Closed` (or if the hub went away).
    pub async fn recv(&mut self) -> Option<CdcMessage> {
        match self.rx.recv().await {
            Some(ev) => Some(CdcMessage::Change(ev)),
            None => self.take_end(),
        }
    }

    /// Like [`recv`](Self::recv) without waiting: `Ok(None)` when nothing is buffered yet,
    /// `Err(())` once the stream has ended and its last word was taken.
    #[allow(clippy::result_unit_err)]
    pub fn try_recv(&mut self) -> Result<Option<CdcMessage>, ()> {
        match self.rx.try_recv() {
            Ok(ev) => Ok(Some(CdcMessage::Change(ev))),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => self.take_end().map(Some).ok_or(()),
        }
    }

    fn take_end(&mut self) -> Option<CdcMessage> {
        self.end.lock().ok().and_then(|mut e| e.take())
    }

    /// The subscription as a stream (for `ctx.add_stream` in an actor).
    pub fn into_stream(self) -> impl futures_util::Stream<Item = CdcMessage> + Send + 'static {
        futures_util::stream::unfold(self, |mut sub| async move {
            let msg = sub.recv().await?;
            Some((msg, sub))
        })
    }
}

/// Microseconds since the Unix epoch → `SystemTime`.
pub fn from_unix_micros(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc_with_microseconds() {
        let rfc3339 = |t| crate::civil::rfc3339(t, crate::civil::Fraction::Micros);
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(from_unix_micros(1_714_564_800_123_456)),
            "2024-05-01T12:00:00.123456Z"
        );
        assert_eq!(
            rfc3339(from_unix_micros(951_782_400_000_000)),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(rfc3339(from_unix_micros(-1)), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            rfc3339(from_unix_micros(-86_400_000_000)),
            "1969-12-31T00:00:00.000000Z"
        );
    }

    #[test]
    fn messages_have_the_documented_shapes() {
        let ev = ChangeEvent {
            seq: 7,
            client: "c".into(),
            schema: "other".into(),
            table: "t".into(),
            op: ChangeOp::Update,
            row: json!({"id": 1, "ok": true}).as_object().unwrap().clone(),
            old: Some(json!({"id": 1, "ok": false}).as_object().unwrap().clone()),
            committed_at: UNIX_EPOCH,
        };
        let v = serde_json::to_value(CdcMessage::Change(Arc::new(ev.clone()))).unwrap();
        assert_eq!(
            v,
            json!({"type": "change", "seq": 7, "client": "c", "table": "other.t", "op": "update",
                   "row": {"id": 1, "ok": true}, "old": {"id": 1, "ok": false},
                   "committed_at": "1970-01-01T00:00:00.000000Z"})
        );
        let insert = ChangeEvent {
            schema: "public".into(),
            op: ChangeOp::Insert,
            old: None,
            ..ev
        };
        let v = serde_json::to_value(&insert).unwrap();
        assert_eq!(v["table"], "t");
        assert!(v.get("old").is_none());
        assert_eq!(
            serde_json::to_value(CdcMessage::Lagged { last_seq: 9 }).unwrap(),
            json!({"type": "lagged", "last_seq": 9})
        );
    }
}
