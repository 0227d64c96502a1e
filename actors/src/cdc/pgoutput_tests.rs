//! Tests of the pgoutput decoder.

use serde_json::json;

use super::*;

fn begin() -> Vec<u8> {
    let mut b = vec![b'B'];
    b.extend(0x2346_81F8u64.to_be_bytes());
    b.extend(1_000_000i64.to_be_bytes());
    b.extend(1572u32.to_be_bytes());
    b
}

fn commit(end: u64) -> Vec<u8> {
    let mut b = vec![b'C', 0];
    b.extend((end - 0x30).to_be_bytes());
    b.extend(end.to_be_bytes());
    b.extend(1_000_000i64.to_be_bytes());
    b
}

fn relation() -> Vec<u8> {
    let mut b = vec![b'R'];
    b.extend(16_384u32.to_be_bytes());
    b.extend(b"public\0t\0");
    b.push(b'd');
    b.extend(3u16.to_be_bytes());
    for (flags, name, oid) in [(1u8, "id", 23u32), (0, "v", 25), (0, "j", 3802)] {
        b.push(flags);
        b.extend(name.as_bytes());
        b.push(0);
        b.extend(oid.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
    }
    b
}

fn tuple(values: &[Option<&str>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend((values.len() as u16).to_be_bytes());
    for v in values {
        match v {
            None => b.push(b'n'),
            Some("<u>") => b.push(b'u'),
            Some(t) => {
                b.push(b't');
                b.extend((t.len() as u32).to_be_bytes());
                b.extend(t.as_bytes());
            }
        }
    }
    b
}

fn change(kind: u8, parts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend(16_384u32.to_be_bytes());
    for (marker, t) in parts {
        b.push(*marker);
        b.extend(t);
    }
    b
}

#[test]
fn a_transaction_of_three_changes_is_assembled_at_its_commit() {
    let mut d = Decoder::default();
    assert_eq!(d.feed(&begin()).unwrap(), None);
    assert_eq!(d.feed(&relation()).unwrap(), None);
    let ins = change(
        b'I',
        &[(b'N', tuple(&[Some("1"), Some("a"), Some(r#"{"x": 1}"#)]))],
    );
    assert_eq!(d.feed(&ins).unwrap(), None);
    // REPLICA IDENTITY FULL: the old row is whole; the big json value did not change.
    let upd = change(
        b'U',
        &[
            (b'O', tuple(&[Some("1"), Some("a"), Some(r#"{"x": 1}"#)])),
            (b'N', tuple(&[Some("1"), Some("b"), Some("<u>")])),
        ],
    );
    assert_eq!(d.feed(&upd).unwrap(), None);
    // Default identity: the key only, other columns sent as nulls meaning "not logged".
    let del = change(b'D', &[(b'K', tuple(&[Some("1"), None, None]))]);
    assert_eq!(d.feed(&del).unwrap(), None);
    let txn = d
        .feed(&commit(0x2346_8228))
        .unwrap()
        .expect("a transaction");
    assert_eq!(txn.end_lsn, 0x2346_8228);
    assert_eq!(txn.committed_at_micros, 1_000_000 + PG_EPOCH_OFFSET_MICROS);
    let c = &txn.changes;
    assert_eq!(c.len(), 3);
    assert_eq!(
        (c[0].op, c[0].schema.as_str(), c[0].table.as_str()),
        (ChangeOp::Insert, "public", "t")
    );
    assert_eq!(
        Value::Object(c[0].row.clone()),
        json!({"id": 1, "v": "a", "j": {"x": 1}})
    );
    assert_eq!(c[0].old, None);
    assert_eq!(
        Value::Object(c[1].row.clone()),
        json!({"id": 1, "v": "b", "j": {"x": 1}})
    );
    assert_eq!(
        c[1].old.clone().map(Value::Object),
        Some(json!({"id": 1, "v": "a", "j": {"x": 1}}))
    );
    assert_eq!(Value::Object(c[2].row.clone()), json!({"id": 1}));
    assert_eq!(c[2].old.clone().map(Value::Object), Some(json!({"id": 1})));
}

#[test]
fn an_unchanged_value_without_the_old_row_is_left_out() {
    let mut d = Decoder::default();
    d.feed(&begin()).unwrap();
    d.feed(&relation()).unwrap();
    let upd = change(b'U', &[(b'N', tuple(&[Some("1"), None, Some("<u>")]))]);
    d.feed(&upd).unwrap();
    let txn = d.feed(&commit(0x100)).unwrap().unwrap();
    assert_eq!(
        Value::Object(txn.changes[0].row.clone()),
        json!({"id": 1, "v": null})
    );
    assert_eq!(txn.changes[0].old, None);
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let mut d = Decoder::default();
    assert_eq!(d.feed(b""), Err(DecodeError::Truncated));
    assert_eq!(d.feed(b"B\0\0"), Err(DecodeError::Truncated));
    assert_eq!(d.feed(b"Z"), Err(DecodeError::UnknownMessage('Z')));
    d.feed(&begin()).unwrap();
    let ins = change(b'I', &[(b'N', tuple(&[Some("1")]))]);
    assert_eq!(d.feed(&ins), Err(DecodeError::UnknownRelation(16_384)));
    let mut bad = relation();
    bad.truncate(bad.len() - 3);
    assert_eq!(d.feed(&bad), Err(DecodeError::Truncated));
    let mut long = change(b'I', &[(b'N', Vec::new())]);
    long.extend(1u16.to_be_bytes());
    long.push(b't');
    long.extend(u32::MAX.to_be_bytes());
    d.feed(&relation()).unwrap();
    assert_eq!(d.feed(&long), Err(DecodeError::Truncated));
    assert_eq!(
        Decoder::default().feed(&commit(0x80)),
        Err(DecodeError::OutsideTransaction)
    );
    assert_eq!(d.feed(&[b'T', 0, 0, 0, 0]).unwrap(), None);
}

fn message(transactional: bool, prefix: &str, content: &[u8]) -> Vec<u8> {
    let mut b = vec![b'M', u8::from(transactional)];
    b.extend(0x2346_8200u64.to_be_bytes());
    b.extend(prefix.as_bytes());
    b.push(0);
    b.extend((content.len() as u32).to_be_bytes());
    b.extend(content);
    b
}

#[test]
fn published_events_become_event_changes_and_other_messages_are_skipped() {
    let mut d = Decoder::default();
    assert_eq!(d.feed(&begin()).unwrap(), None);
    let event =
        br#"{"schema": "public", "table": "t", "event": {"operation": "insert", "row_count": 2}}"#;
    for m in [
        message(true, EVENT_PREFIX, event),
        message(true, "someone.else", event),
        message(false, EVENT_PREFIX, event),
        message(true, EVENT_PREFIX, b"not json"),
        message(
            true,
            EVENT_PREFIX,
            br#"{"schema": "public", "table": "t", "event": 3}"#,
        ),
    ] {
        assert_eq!(d.feed(&m).unwrap(), None);
    }
    let txn = d
        .feed(&commit(0x9000))
        .unwrap()
        .expect("a committed transaction");
    assert_eq!(txn.changes.len(), 1, "{:?}", txn.changes);
    let c = &txn.changes[0];
    assert_eq!(
        (c.schema.as_str(), c.table.as_str(), c.op),
        ("public", "t", ChangeOp::Event)
    );
    assert_eq!(
        Value::Object(c.row.clone()),
        json!({"operation": "insert", "row_count": 2})
    );
    assert_eq!(c.old, None);
    // A message cut short is an error, like any other.
    let mut short = message(true, EVENT_PREFIX, event);
    short.truncate(short.len() - 3);
    assert_eq!(parse(&short), Err(DecodeError::Truncated));
}
