//! What the HTTP edge reports about each request. Built once, at the end of the request, and sent
//! to the [`StatsActor`](super::StatsActor) without waiting. Nothing here holds a request body,
//! a query string or key material.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::SystemTime;

/// A request's id, shown as 32 hex digits: a random half drawn once per process and a counter, so
/// ids are unique across instances and restarts without a system call per request. It is kept as
/// two numbers and formatted only where it is shown (an error envelope, a log row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    prefix: u64,
    seq: u64,
}

impl RequestId {
    /// A fresh id.
    pub fn next() -> RequestId {
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        RequestId {
            prefix: *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0),
            seq: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The 32 lower-case hex digits the id is shown as.
    pub fn hex(&self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (half, n) in [self.prefix, self.seq].into_iter().enumerate() {
            for (i, byte) in n.to_be_bytes().into_iter().enumerate() {
                let at = half * 16 + i * 2;
                out[at] = DIGITS[usize::from(byte >> 4)];
                out[at + 1] = DIGITS[usize::from(byte & 0xf)];
            }
        }
        out
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

/// One served request of a logged route (requests of other routes are only counted in the
/// metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// The same id as the error envelope's `trace_id`.
    pub request_id: RequestId,
    /// When the request arrived.
    pub at: SystemTime,
    /// The client as the registry resolved it (lower-case), if any.
    pub client: Option<String>,
    /// Borrowed for the standard methods, so that most records carry no copy of it.
    pub method: Cow<'static, str>,
    /// The concrete path, without the query string; borrowed when it is the route's pattern.
    pub path: Cow<'static, str>,
    /// The matched route pattern (`/gateway/fetch`), or `unmatched`; a metrics label. The edges
    /// intern patterns, so records share them.
    pub route: Cow<'static, str>,
    pub status: u16,
    pub duration_ms: f64,
    pub key_public_id: Option<String>,
    pub user_id: Option<String>,
    pub company_id: Option<String>,
    pub organization_id: Option<String>,
    /// The TCP peer address; forwarding headers are never trusted for it. Written as text by the
    /// statistics actor.
    pub remote_addr: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// Answered from a cache.
    pub cached: bool,
    pub operation: Option<OperationRecord>,
    pub auth: Option<AuthRecord>,
}

/// The data operation a request ran (or tried to run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRecord {
    /// `fetch`, `insert`, `update`, `delete`, `query`, … (borrowed: the edges name operations
    /// with constants).
    pub operation: Cow<'static, str>,
    pub table: Option<String>,
    pub row_count: Option<u64>,
    /// The error code (or message) when the request failed.
    pub message: Option<String>,
}

/// One API-key decision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthRecord {
    pub api_key_id: Option<i64>,
    /// The presented key's public id; the edge moves it to the request's `key_public_id`.
    pub public_id: Option<String>,
    pub required_rights: Vec<String>,
    /// The presented key's rights, recorded only when a known key was refused: an allowed
    /// request held what `required_rights` names, and leaving the key's whole list out of
    /// every other row keeps log rows small.
    pub granted_rights: Option<std::sync::Arc<[String]>>,
    pub authenticated: bool,
    pub authorized: bool,
    pub enforced: bool,
    pub failure_reason: Option<String>,
}

impl RequestRecord {
    /// A 2xx or 3xx answer.
    pub fn succeeded(&self) -> bool {
        (200..400).contains(&self.status)
    }

    /// An answer of 400 or above.
    pub fn failed(&self) -> bool {
        self.status >= 400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_shown_as_two_zero_padded_hex_numbers() {
        let id = RequestId {
            prefix: 0x0123_4567_89ab_cdef,
            seq: 0xa,
        };
        assert_eq!(id.to_string(), "0123456789abcdef000000000000000a");
        let id = RequestId {
            prefix: u64::MAX,
            seq: 0,
        };
        assert_eq!(id.to_string(), format!("{:016x}{:016x}", u64::MAX, 0));
    }
}
