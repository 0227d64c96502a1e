//! Request shapes: what a log row shares with many others (the client, method, path, operation and
//! table, the API key and its decision, the peer address and user agent), stored once in
//! `gateway_request_shapes` and named by each `gateway_requests` row with its id. The
//! `gateway_request_log` view joins them back.
//!
//! A shape's id is the first 63 bits of a SHA-256 of its values (after [`clean`]), so every
//! instance names the same shape the same way and may insert it again without harm (`ON CONFLICT
//! DO NOTHING`); distinct shapes would share an id only by a hash collision. The actor remembers
//! the ids it has written (at most [`KNOWN_SHAPES`]; beyond, it starts over, and it forgets them
//! whenever it opens a new connection), so a flush inserts only shapes it has not seen.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::batch::{clean, clean_opt};
use super::chunk::Chunk;
use super::record::RequestRecord;

/// The most shape ids the actor remembers; when full it forgets them all and learns again (each
/// forgotten shape costs one more `ON CONFLICT DO NOTHING` row).
pub const KNOWN_SHAPES: usize = 65_536;

/// A shape named by a flush that the actor has not written before, with its values.
pub type NewShape = (i64, Arc<Shape<'static>>);

/// The shape ids already in the logging database.
#[derive(Debug, Default)]
pub struct Shapes {
    known: HashSet<i64>,
}

impl Shapes {
    /// The shapes `chunks` name that are not known to be written, once each, in id order: every
    /// writer inserts them in that order, so that two instances inserting the same new shapes at
    /// once wait for each other instead of deadlocking.
    pub fn unknown(&self, chunks: &[Chunk]) -> Vec<NewShape> {
        let mut seen = HashSet::new();
        let mut new: Vec<NewShape> = chunks
            .iter()
            .flat_map(|c| &c.shapes)
            .filter(|s| !self.known.contains(&s.id) && seen.insert(s.id))
            .map(|s| (s.id, s.shape.clone()))
            .collect();
        new.sort_unstable_by_key(|(id, _)| *id);
        new
    }

    /// The flush that carried `new` was committed: its shapes are in the database.
    pub fn learn(&mut self, new: &[NewShape]) {
        if self.known.len() + new.len() > KNOWN_SHAPES {
            self.known.clear();
        }
        self.known.extend(new.iter().map(|(id, _)| *id));
    }

    /// Forgets every shape: each is written again the next time a flush names it.
    pub fn forget(&mut self) {
        self.known.clear();
    }

    pub fn known(&self) -> usize {
        self.known.len()
    }
}

/// A record's shape id: positive, stable across instances and restarts.
pub fn id(r: &RequestRecord) -> i64 {
    Shape::of(r).id()
}

/// What a record shares with other requests: the values of its `gateway_request_shapes` row,
/// cleaned ([`clean`]) and borrowed from the record. Equal shapes have equal ids.
#[derive(Debug, PartialEq)]
pub struct Shape<'a> {
    pub client: Option<Cow<'a, str>>,
    pub method: Cow<'a, str>,
    pub path: Cow<'a, str>,
    pub operation: Option<Cow<'a, str>>,
    pub table: Option<Cow<'a, str>>,
    pub cached: bool,
    pub public_id: Option<Cow<'a, str>>,
    pub key_id: Option<i64>,
    pub enforced: Option<bool>,
    pub authenticated: Option<bool>,
    pub authorized: Option<bool>,
    pub reason: Option<Cow<'a, str>>,
    /// Borrowed as they are; each right is cleaned where it is hashed or written.
    pub required_rights: Option<Cow<'a, [String]>>,
    pub granted_rights: Option<Cow<'a, [String]>>,
    pub remote_addr: Option<IpAddr>,
    pub user_agent: Option<Cow<'a, str>>,
}

impl<'a> Shape<'a> {
    pub fn of(r: &'a RequestRecord) -> Shape<'a> {
        let op = r.operation.as_ref();
        let a = r.auth.as_ref();
        Shape {
            client: clean_opt(&r.client),
            method: clean(&r.method),
            path: clean(&r.path),
            operation: op.map(|o| clean(&o.operation)),
            table: op.and_then(|o| clean_opt(&o.table)),
            cached: r.cached,
            public_id: clean_opt(&r.key_public_id),
            key_id: a.and_then(|a| a.api_key_id),
            enforced: a.map(|a| a.enforced),
            authenticated: a.map(|a| a.authenticated),
            authorized: a.map(|a| a.authorized),
            reason: a.and_then(|a| clean_opt(&a.failure_reason)),
            required_rights: a.map(|a| Cow::Borrowed(&a.required_rights[..])),
            granted_rights: a.and_then(|a| a.granted_rights.as_deref().map(Cow::Borrowed)),
            remote_addr: r.remote_addr,
            user_agent: clean_opt(&r.user_agent),
        }
    }

    /// The same shape, owning its values (kept by a sending thread across requests).
    pub fn into_owned(self) -> Shape<'static> {
        fn own(s: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(s.into_owned())
        }
        Shape {
            client: self.client.map(own),
            method: own(self.method),
            path: own(self.path),
            operation: self.operation.map(own),
            table: self.table.map(own),
            cached: self.cached,
            public_id: self.public_id.map(own),
            key_id: self.key_id,
            enforced: self.enforced,
            authenticated: self.authenticated,
            authorized: self.authorized,
            reason: self.reason.map(own),
            required_rights: self.required_rights.map(|r| Cow::Owned(r.into_owned())),
            granted_rights: self.granted_rights.map(|r| Cow::Owned(r.into_owned())),
            remote_addr: self.remote_addr,
            user_agent: self.user_agent.map(own),
        }
    }

    /// The first 63 bits of a SHA-256 of the values, each with its presence and length, so that
    /// no two distinct shapes hash the same input.
    pub fn id(&self) -> i64 {
        let mut h = Sha256::new();
        h.update(b"athena request shape 1");
        text(&mut h, self.client.as_deref());
        text(&mut h, Some(&self.method));
        text(&mut h, Some(&self.path));
        text(&mut h, self.operation.as_deref());
        text(&mut h, self.table.as_deref());
        flag(&mut h, Some(self.cached));
        text(&mut h, self.public_id.as_deref());
        match self.key_id {
            None => h.update([0]),
            Some(id) => {
                h.update([1]);
                h.update(id.to_le_bytes());
            }
        }
        flag(&mut h, self.enforced);
        flag(&mut h, self.authenticated);
        flag(&mut h, self.authorized);
        text(&mut h, self.reason.as_deref());
        list(&mut h, self.required_rights.as_deref());
        list(&mut h, self.granted_rights.as_deref());
        match self.remote_addr {
            None => h.update([0]),
            Some(IpAddr::V4(ip)) => {
                h.update([4]);
                h.update(ip.octets());
            }
            Some(IpAddr::V6(ip)) => {
                h.update([6]);
                h.update(ip.octets());
            }
        }
        text(&mut h, self.user_agent.as_deref());
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first) & i64::MAX
    }
}

fn text(h: &mut Sha256, v: Option<&str>) {
    match v {
        None => h.update([0]),
        Some(s) => {
            h.update([1]);
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
    }
}

fn flag(h: &mut Sha256, v: Option<bool>) {
    h.update([match v {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }]);
}

fn list(h: &mut Sha256, v: Option<&[String]>) {
    match v {
        None => h.update([0]),
        Some(items) => {
            h.update([1]);
            h.update((items.len() as u64).to_le_bytes());
            for s in items {
                text(h, Some(&clean(s)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::chunk;

    fn rec(path: &str, agent: Option<&str>) -> RequestRecord {
        let mut r = chunk::tests::rec(path, 200, 0);
        r.user_agent = agent.map(str::to_string);
        r
    }

    #[test]
    fn requests_differing_only_per_request_share_a_shape() {
        let a = rec("/gateway/fetch", Some("curl"));
        let mut b = rec("/gateway/fetch", Some("curl"));
        b.status = 500;
        b.duration_ms = 9.0;
        b.user_id = Some("someone else".into());
        b.operation.as_mut().unwrap().row_count = Some(0);
        assert_ne!(a.request_id, b.request_id);
        assert_eq!(id(&a), id(&b));
        assert!(id(&a) >= 0);
    }

    #[test]
    fn every_shape_value_and_absence_counts() {
        let base = rec("/gateway/fetch", Some("curl"));
        let mut others = vec![
            rec("/gateway/fetchx", Some("curl")),
            rec("/gateway/fetch", None),
            rec("/gateway/fetch", Some("")),
            rec("/gateway/fetch", Some("curl2")),
        ];
        let mut c = base.clone();
        c.cached = true;
        others.push(c);
        let mut c = base.clone();
        c.auth.as_mut().unwrap().granted_rights = Some(vec!["*".to_string()].into());
        others.push(c);
        let mut c = base.clone();
        c.auth.as_mut().unwrap().required_rights = vec!["users.rea".into(), "d".into()];
        others.push(c);
        let mut c = base.clone();
        c.remote_addr = Some("::1".parse().unwrap());
        others.push(c);
        let mut c = base.clone();
        c.auth = None;
        others.push(c);
        let mut ids: Vec<i64> = others.iter().map(id).collect();
        ids.push(id(&base));
        let distinct: HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    }

    #[test]
    fn a_flush_writes_each_unknown_shape_once_and_learns_it_after() {
        let records = vec![
            rec("/a", None),
            rec("/b", None),
            rec("/a", None),
            rec("/b", None),
        ];
        let chunks = chunk::tests::chunks(&records);
        let ids = |new: &[NewShape]| new.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let mut both = vec![id(&records[0]), id(&records[1])];
        both.sort_unstable();
        let mut shapes = Shapes::default();
        let new = shapes.unknown(&chunks);
        assert_eq!(ids(&new), both, "each once, in id order");
        // Not committed yet: the next flush would write them again.
        assert_eq!(ids(&shapes.unknown(&chunks)), both);
        shapes.learn(&new);
        assert_eq!(shapes.known(), 2);
        assert!(shapes.unknown(&chunks).is_empty());
        let more = chunk::tests::chunks(&[rec("/c", None), rec("/a", None)]);
        assert_eq!(ids(&shapes.unknown(&more)), vec![id(&rec("/c", None))]);
        shapes.forget();
        assert_eq!(ids(&shapes.unknown(&chunks)), both);
    }

    #[test]
    fn an_owned_shape_equals_the_borrowed_one_and_has_its_id() {
        let r = rec("/gateway/fetch", Some("curl"));
        let borrowed = Shape::of(&r);
        let owned = Shape::of(&r).into_owned();
        assert_eq!(owned, borrowed);
        assert_eq!(owned.id(), id(&r));
    }
}
