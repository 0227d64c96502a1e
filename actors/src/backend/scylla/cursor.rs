//! Page cursors of Scylla fetches: `data.next_page` out, `page_state` / `next_page` in.
//!
//! A cursor is base64url (no padding) of `1 ‖ fingerprint(8) ‖ paging state`: a version byte,
//! the first eight bytes of SHA-256 over the statement and its bound values, and the driver's
//! paging state as the cluster returned it. The fingerprint ties a cursor to the query that made
//! it, so a cursor sent with a different filter, table or column list is refused (400
//! `invalid_value` on `page_state`) instead of being handed to the cluster, which would read an
//! unrelated position. The limit is not part of it: each page may ask for a different size.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scylla::value::CqlValue;
use sha2::{Digest, Sha256};

use crate::ops::OpError;

const VERSION: u8 = 1;
/// Longest cursor accepted, in characters; paging states are small.
const MAX_CURSOR_CHARS: usize = 8192;

/// The fingerprint of a statement and its values.
pub fn fingerprint(cql: &str, values: &[Option<CqlValue>]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(cql.as_bytes());
    h.update([0]);
    h.update(format!("{values:?}").as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// The cursor for the page after the one just read.
pub fn encode(fp: &[u8; 8], paging_state: &[u8]) -> String {
    let mut raw = Vec::with_capacity(9 + paging_state.len());
    raw.push(VERSION);
    raw.extend_from_slice(fp);
    raw.extend_from_slice(paging_state);
    URL_SAFE_NO_PAD.encode(raw)
}

fn invalid(reason: &str) -> OpError {
    OpError::InvalidValue {
        column: "page_state".into(),
        reason: reason.into(),
    }
}

/// The paging state a cursor carries, if it was made by this same query.
pub fn decode(cursor: &str, fp: &[u8; 8]) -> Result<Vec<u8>, OpError> {
    let c = cursor.trim();
    if c.len() > MAX_CURSOR_CHARS {
        return Err(invalid("the cursor is too long"));
    }
    let raw = URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .map_err(|_| invalid("not a cursor returned as data.next_page"))?;
    if raw.len() < 9 || raw[0] != VERSION {
        return Err(invalid("not a cursor returned as data.next_page"));
    }
    if &raw[1..9] != fp {
        return Err(invalid(
            "the cursor belongs to a different query; send the same table, columns, conditions \
             and order as the request that returned it",
        ));
    }
    Ok(raw[9..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_with_its_own_query_only() {
        let fp = fingerprint("SELECT 1", &[Some(CqlValue::Int(1))]);
        let c = encode(&fp, b"\x00\x01state");
        assert!(!c.contains(['+', '/', '=']));
        assert_eq!(decode(&c, &fp).unwrap(), b"\x00\x01state");
        let other = fingerprint("SELECT 1", &[Some(CqlValue::Int(2))]);
        assert!(
            matches!(decode(&c, &other), Err(OpError::InvalidValue { column, .. }) if column == "page_state")
        );
    }

    #[test]
    fn garbage_cursors_are_invalid_values() {
        let fp = [0u8; 8];
        for bad in ["", "!!!", "AA", &"A".repeat(9000), "AgAAAAAAAAAAAA"] {
            assert!(decode(bad, &fp).is_err(), "{bad}");
        }
    }
}
