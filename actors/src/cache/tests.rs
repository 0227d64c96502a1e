use std::time::Duration;

use actix::Actor;
use bytes::Bytes;

use super::*;

fn table(name: &str) -> TableKey {
    TableKey {
        client: "default".into(),
        schema: "public".into(),
        table: name.into(),
    }
}

fn cached(body: &str) -> Cached {
    Cached {
        body: Bytes::copy_from_slice(body.as_bytes()),
        rows: 1,
        total: None,
    }
}

fn handle(spec: CacheSpec) -> CacheHandle {
    let (actor, shared) = CacheActor::new(spec);
    CacheHandle {
        shared,
        addr: actor.start(),
    }
}

fn key(t: &str, request: &str) -> CacheKey {
    CacheKey::new(table(t), Duration::from_secs(60), &["scope", request])
}

#[test]
fn time_to_live_comes_from_the_table_then_the_client_then_the_default() {
    let mut spec = CacheSpec::default();
    let mut c = ClientTtl {
        ttl: Some(Duration::from_secs(10)),
        ..ClientTtl::default()
    };
    c.tables.insert("events".into(), Duration::from_secs(5));
    c.tables.insert("audit.log".into(), Duration::ZERO);
    spec.clients.insert("default".into(), c);
    assert_eq!(spec.ttl_for(&table("events")), Duration::from_secs(5));
    assert_eq!(spec.ttl_for(&table("users")), Duration::from_secs(10));
    let audit = TableKey {
        schema: "audit".into(),
        ..table("log")
    };
    assert_eq!(spec.ttl_for(&audit), Duration::ZERO);
    let other = TableKey {
        client: "other".into(),
        ..table("events")
    };
    assert_eq!(spec.ttl_for(&other), Duration::from_secs(30));
    assert_eq!(spec.max_ttl(), Duration::from_secs(30));
    spec.enabled = false;
    assert_eq!(spec.ttl_for(&table("events")), Duration::ZERO);
}

#[test]
fn keys_differ_by_every_part_and_by_where_parts_end() {
    let a = CacheKey::new(table("t"), Duration::ZERO, &["ab", "c"]);
    let b = CacheKey::new(table("t"), Duration::ZERO, &["a", "bc"]);
    let c = CacheKey::new(table("t"), Duration::ZERO, &["ab", "c"]);
    let other = CacheKey::new(
        TableKey {
            client: "x".into(),
            ..table("t")
        },
        Duration::ZERO,
        &["ab", "c"],
    );
    assert_ne!(a.hash, b.hash);
    assert_eq!(a.hash, c.hash);
    assert_ne!(a.hash, other.hash);
    assert!(a.redis_key("p").starts_with("p:entry:") && a.redis_key("p").len() == 8 + 64);
}

#[test]
fn redis_entries_count_only_at_the_generation_they_were_written_at() {
    let c = cached("{\"rows\":[]}");
    let at = Gens { table: 7, all: 2 };
    let counted = Cached {
        total: Some(42),
        ..c.clone()
    };
    assert_eq!(decode(&encode(at, &counted), at), Some(counted));
    let v = encode(at, &c);
    assert_eq!(decode(&v, at), Some(c));
    assert_eq!(decode(&v, Gens { table: 8, all: 2 }), None);
    assert_eq!(decode(&v, Gens { table: 7, all: 3 }), None);
    assert_eq!(decode(&v[..28], at), None, "truncated");
}

#[test]
fn announcements_round_trip_any_name() {
    let t = TableKey {
        client: "a\tb".into(),
        schema: "s\"x".into(),
        table: "t,1".into(),
    };
    let (origin, back) =
        parse_announcement(&announcement("me", &Announced::Table(t.clone()))).unwrap();
    assert_eq!((origin.as_str(), back), ("me", Announced::Table(t)));
    let (origin, back) = parse_announcement(&announcement("you", &Announced::All)).unwrap();
    assert_eq!((origin.as_str(), back), ("you", Announced::All));
    assert!(parse_announcement("[1,2]").is_none());
    assert!(parse_announcement("[\"a\",\"b\"]").is_none());
    assert!(parse_announcement("not json").is_none());
}

#[actix_rt::test]
async fn a_fill_then_hits_until_its_table_is_written() {
    let cache = handle(CacheSpec::default());
    let Lookup::Miss(ticket) = cache.lookup(key("events", "q1")).await else {
        panic!("empty cache hit");
    };
    cache.fill(ticket, cached("one"));
    let Lookup::Hit(hit) = cache.lookup(key("events", "q1")).await else {
        panic!("filled entry missed");
    };
    assert_eq!(hit.body, Bytes::from_static(b"one"));
    assert!(matches!(
        cache.lookup(key("events", "q2")).await,
        Lookup::Miss(_)
    ));
    // A write to another table leaves it alone; a write to its table drops it.
    cache.invalidate(vec![table("users")]).await;
    assert!(matches!(
        cache.lookup(key("events", "q1")).await,
        Lookup::Hit(_)
    ));
    cache.invalidate(vec![table("events")]).await;
    assert!(matches!(
        cache.lookup(key("events", "q1")).await,
        Lookup::Miss(_)
    ));
    let s = &cache.shared.counters;
    assert_eq!(s.hits_local.load(Ordering::Relaxed), 2);
    assert_eq!(s.misses.load(Ordering::Relaxed), 3);
    assert_eq!(s.invalidations.load(Ordering::Relaxed), 2);
}

#[actix_rt::test]
async fn a_result_read_before_a_write_is_not_cached_after_it() {
    let cache = handle(CacheSpec::default());
    let Lookup::Miss(ticket) = cache.lookup(key("events", "q")).await else {
        panic!("empty cache hit");
    };
    // The write lands while the fetch is still reading.
    cache.invalidate(vec![table("events")]).await;
    cache.fill(ticket, cached("stale"));
    assert!(matches!(
        cache.lookup(key("events", "q")).await,
        Lookup::Miss(_)
    ));
}

#[actix_rt::test]
async fn zero_ttl_is_never_cached_and_a_new_epoch_drops_everything() {
    let cache = handle(CacheSpec::default());
    let none = CacheKey::new(table("t"), Duration::ZERO, &["q"]);
    let Lookup::Miss(ticket) = cache.lookup(none.clone()).await else {
        panic!()
    };
    cache.fill(ticket, cached("x"));
    assert!(matches!(cache.lookup(none).await, Lookup::Miss(_)));

    let Lookup::Miss(ticket) = cache.lookup(key("t", "q")).await else {
        panic!()
    };
    cache.fill(ticket, cached("x"));
    cache.shared.new_epoch();
    assert!(matches!(cache.lookup(key("t", "q")).await, Lookup::Miss(_)));
}

#[test]
fn too_many_tracked_tables_resets_with_a_new_epoch() {
    let shared = Shared::new(CacheSpec::default());
    let many: Vec<TableKey> = (0..MAX_TRACKED_TABLES)
        .map(|i| table(&i.to_string()))
        .collect();
    shared.bump(&many);
    assert_eq!(shared.tag(&table("0")), Tag { epoch: 0, gen: 1 });
    shared.bump(&[table("one more")]);
    assert_eq!(shared.tag(&table("0")), Tag { epoch: 1, gen: 0 });
}
