//! Decoding pgoutput, PostgreSQL's built-in logical decoding output plugin (protocol version 1),
//! as `pg_logical_slot_peek_binary_changes` returns it: one message per row. [`Decoder`] keeps
//! the relations it was told about and assembles each transaction's row changes, handing back a
//! whole [`Txn`] at its commit.
//!
//! Logical decoding messages (`pg_logical_emit_message`, sent when the reader asks for them) are
//! read too: a transactional one with the prefix [`EVENT_PREFIX`] is a published event (a write
//! made with `X-Publish-Event`), which becomes a change of its table with the op `event`.
//!
//! What it deliberately leaves out: truncations, origins, type announcements and other logical
//! messages (read and skipped), and streamed or two-phase transactions (protocol versions 2 and
//! up, which the reader never asks for).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::event::ChangeOp;
use super::values;

/// The prefix of the logical decoding messages that carry published events. Their content is
/// JSON: `{"schema", "table", "event": {…}}`.
pub const EVENT_PREFIX: &str = "athena.event";

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("pgoutput message ended early")]
    Truncated,
    #[error("pgoutput message of unknown type {0:?}")]
    UnknownMessage(char),
    #[error("pgoutput tuple column of unknown kind {0:?}")]
    UnknownColumnKind(char),
    #[error("pgoutput change for relation {0} before its description")]
    UnknownRelation(u32),
    #[error("pgoutput change outside a transaction")]
    OutsideTransaction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    /// Part of the replica identity (the key sent for deletes and key-changing updates).
    pub key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    Null,
    /// An unchanged TOASTed value that the update did not log.
    Unchanged,
    Text(String),
}

/// An old tuple: the replica identity key only, or the whole row (REPLICA IDENTITY FULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Old {
    Key(Vec<Datum>),
    Full(Vec<Datum>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Begin {
        commit_ts: i64,
    },
    Commit {
        /// The end of the commit record: the position a slot is confirmed to.
        end_lsn: u64,
        commit_ts: i64,
    },
    Relation(Relation),
    Insert {
        rel: u32,
        new: Vec<Datum>,
    },
    Update {
        rel: u32,
        old: Option<Old>,
        new: Vec<Datum>,
    },
    Delete {
        rel: u32,
        old: Old,
    },
    /// A logical decoding message; a transactional one arrives inside its transaction.
    Logical {
        transactional: bool,
        prefix: String,
        content: Vec<u8>,
    },
    /// Truncate, origin, type: nothing a change stream carries.
    Skipped,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }

    fn cstring(&mut self) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos..];
        let len = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(DecodeError::Truncated)?;
        let s = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.pos += len + 1;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Vec<Datum>, DecodeError> {
        let n = self.u16()?;
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' => {
                    let len = self.u32()? as usize;
                    Datum::Text(String::from_utf8_lossy(self.take(len)?).into_owned())
                }
                other => return Err(DecodeError::UnknownColumnKind(other as char)),
            });
        }
        Ok(out)
    }

    fn old(&mut self, marker: u8) -> Result<Old, DecodeError> {
        Ok(match marker {
            b'K' => Old::Key(self.tuple()?),
            _ => Old::Full(self.tuple()?),
        })
    }
}

/// Parses one pgoutput message.
pub fn parse(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    Ok(match r.u8()? {
        b'B' => {
            let _final_lsn = r.u64()?;
            let commit_ts = r.i64()?;
            let _xid = r.u32()?;
            Message::Begin { commit_ts }
        }
        b'C' => {
            let _flags = r.u8()?;
            let _commit_lsn = r.u64()?;
            let end_lsn = r.u64()?;
            let commit_ts = r.i64()?;
            Message::Commit { end_lsn, commit_ts }
        }
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstring()?;
            let name = r.cstring()?;
            let _replica_identity = r.u8()?;
            let n = r.u16()?;
            let mut columns = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let flags = r.u8()?;
                let name = r.cstring()?;
                let type_oid = r.u32()?;
                let _typmod = r.u32()?;
                columns.push(Column {
                    name,
                    type_oid,
                    key: flags & 1 == 1,
                });
            }
            Message::Relation(Relation {
                id,
                schema,
                name,
                columns,
            })
        }
        b'I' => {
            let rel = r.u32()?;
            let _n = r.u8()?;
            Message::Insert {
                rel,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let rel = r.u32()?;
            let mut marker = r.u8()?;
            let mut old = None;
            if marker == b'K' || marker == b'O' {
                old = Some(r.old(marker)?);
                marker = r.u8()?;
            }
            if marker != b'N' {
                return Err(DecodeError::UnknownColumnKind(marker as char));
            }
            Message::Update {
                rel,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let rel = r.u32()?;
            let marker = r.u8()?;
            Message::Delete {
                rel,
                old: r.old(marker)?,
            }
        }
        b'M' => {
            let flags = r.u8()?;
            let _lsn = r.u64()?;
            let prefix = r.cstring()?;
            let len = r.u32()? as usize;
            Message::Logical {
                transactional: flags & 1 == 1,
                prefix,
                content: r.take(len)?.to_vec(),
            }
        }
        b'T' | b'O' | b'Y' => Message::Skipped,
        other => return Err(DecodeError::UnknownMessage(other as char)),
    })
}

/// One row change, its values already JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub schema: String,
    pub table: String,
    pub op: ChangeOp,
    /// The row after the change; for a delete, the row as it was (its key columns only unless
    /// the table has REPLICA IDENTITY FULL).
    pub row: Map<String, Value>,
    /// The row before an update or delete, as far as PostgreSQL logged it.
    pub old: Option<Map<String, Value>>,
}

/// A committed transaction's changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    /// End of the commit record; transactions commit in this order.
    pub end_lsn: u64,
    /// Microseconds since the Unix epoch.
    pub committed_at_micros: i64,
    pub changes: Vec<Change>,
}

/// Assembles transactions from a stream of messages.
#[derive(Debug, Default)]
pub struct Decoder {
    relations: HashMap<u32, Relation>,
    open: Option<Vec<Change>>,
}

impl Decoder {
    /// Feeds one message; returns the transaction it completes, if any.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Txn>, DecodeError> {
        match parse(data)? {
            Message::Begin { .. } => self.open = Some(Vec::new()),
            Message::Commit { end_lsn, commit_ts } => {
                let changes = self.open.take().ok_or(DecodeError::OutsideTransaction)?;
                return Ok(Some(Txn {
                    end_lsn,
                    committed_at_micros: commit_ts.saturating_add(PG_EPOCH_OFFSET_MICROS),
                    changes,
                }));
            }
            Message::Relation(r) => {
                self.relations.insert(r.id, r);
            }
            Message::Insert { rel, new } => {
                let rel = self.relation(rel)?;
                let row = full_row(rel, &new, None);
                self.push(rel_change(rel, ChangeOp::Insert, row, None))?;
            }
            Message::Update { rel, old, new } => {
                let rel = self.relation(rel)?;
                let old_row = old.as_ref().map(|o| old_row(rel, o));
                let full_old = match &old {
                    Some(Old::Full(d)) => Some(d.as_slice()),
                    _ => None,
                };
                let row = full_row(rel, &new, full_old);
                self.push(rel_change(rel, ChangeOp::Update, row, old_row))?;
            }
            Message::Delete { rel, old } => {
                let rel = self.relation(rel)?;
                let row = old_row(rel, &old);
                self.push(rel_change(rel, ChangeOp::Delete, row.clone(), Some(row)))?;
            }
            Message::Logical {
                transactional: true,
                prefix,
                content,
            } if prefix == EVENT_PREFIX => {
                // Anyone with the right to call pg_logical_emit_message can send one: content
                // that is not a well-formed event is skipped, never fatal to the reader.
                if let Some(change) = published(&content) {
                    self.push(change)?;
                }
            }
            Message::Logical { .. } | Message::Skipped => {}
        }
        Ok(None)
    }

    fn relation(&self, id: u32) -> Result<&Relation, DecodeError> {
        self.relations
            .get(&id)
            .ok_or(DecodeError::UnknownRelation(id))
    }

    fn push(&mut self, change: Change) -> Result<(), DecodeError> {
        self.open
            .as_mut()
            .ok_or(DecodeError::OutsideTransaction)?
            .push(change);
        Ok(())
    }
}

/// A published event's change: `{"schema", "table", "event": {…}}`.
fn published(content: &[u8]) -> Option<Change> {
    let v: Value = serde_json::from_slice(content).ok()?;
    let schema = v.get("schema")?.as_str()?.to_string();
    let table = v.get("table")?.as_str()?.to_string();
    let Value::Object(event) = v.get("event")?.clone() else {
        return None;
    };
    Some(Change {
        schema,
        table,
        op: ChangeOp::Event,
        row: event,
        old: None,
    })
}

fn rel_change(
    rel: &Relation,
    op: ChangeOp,
    row: Map<String, Value>,
    old: Option<Map<String, Value>>,
) -> Change {
    Change {
        schema: rel.schema.clone(),
        table: rel.name.clone(),
        op,
        row,
        old,
    }
}

/// Every column of a new tuple. An unchanged TOASTed value is taken from the full old tuple when
/// there is one, and otherwise left out: its value was not logged.
fn full_row(rel: &Relation, datums: &[Datum], old: Option<&[Datum]>) -> Map<String, Value> {
    let mut row = Map::with_capacity(rel.columns.len());
    for (i, (col, d)) in rel.columns.iter().zip(datums).enumerate() {
        let d = match (d, old.and_then(|o| o.get(i))) {
            (Datum::Unchanged, Some(prev)) => prev,
            (d, _) => d,
        };
        match d {
            Datum::Null => {
                row.insert(col.name.clone(), Value::Null);
            }
            Datum::Text(t) => {
                row.insert(col.name.clone(), values::to_json(col.type_oid, t));
            }
            Datum::Unchanged => {}
        }
    }
    row
}

/// An old tuple: a key tuple carries the identity columns only (the others are sent as nulls
/// that mean "not logged", so they are left out).
fn old_row(rel: &Relation, old: &Old) -> Map<String, Value> {
    match old {
        Old::Full(d) => full_row(rel, d, None),
        Old::Key(d) => {
            let mut row = Map::new();
            for (col, d) in rel.columns.iter().zip(d) {
                if !col.key {
                    continue;
                }
                match d {
                    Datum::Null => row.insert(col.name.clone(), Value::Null),
                    Datum::Text(t) => {
                        row.insert(col.name.clone(), values::to_json(col.type_oid, t))
                    }
                    Datum::Unchanged => None,
                };
            }
            row
        }
    }
}

#[cfg(test)]
#[path = "pgoutput_tests.rs"]
mod tests;
