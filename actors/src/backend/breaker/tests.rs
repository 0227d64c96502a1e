use std::time::{Duration, Instant};

use super::*;

fn config() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 3,
        window: Duration::from_secs(10),
        cooldown: Duration::from_secs(5),
    }
}

fn refused(detail: &str) -> Cause {
    Cause {
        kind: FailureKind::Connection,
        detail: detail.into(),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn opens_at_the_threshold_within_the_window_only() {
    let t0 = Instant::now();
    let mut b = Breaker::new(config());
    assert_eq!(b.failure(refused("a"), t0), None);
    assert_eq!(b.failure(refused("b"), t0 + ms(1_000)), None);
    // The first failure leaves the window before the third arrives.
    assert_eq!(b.failure(refused("c"), t0 + ms(10_500)), None);
    assert_eq!(b.recent_failures(t0 + ms(10_500)), 2);
    let t = b
        .failure(refused("d"), t0 + ms(10_600))
        .expect("third in window opens");
    assert_eq!((t.from, t.to), (StateKind::Closed, StateKind::Open));
    assert!(
        t.cause.contains("3 failures within 10000 ms"),
        "{}",
        t.cause
    );
    assert!(t.cause.contains("connection: d"), "{}", t.cause);
    assert_eq!(
        b.state(),
        &BreakerState::Open {
            until: t0 + ms(15_600),
            cause: refused("d")
        }
    );
    assert_eq!(b.opened(), 1);
}

#[test]
fn open_waits_for_its_cooldown_then_offers_a_trial() {
    let t0 = Instant::now();
    let mut b = Breaker::new(config());
    b.trip(refused("probe"), t0).unwrap();
    assert_eq!(b.retry_after(t0 + ms(1_000)), Some(ms(4_000)));
    // Late failures and successes of requests admitted earlier change nothing.
    assert_eq!(b.failure(refused("late"), t0 + ms(1_000)), None);
    assert_eq!(b.success(t0 + ms(1_000)), None);
    assert_eq!(b.tick(t0 + ms(4_999)), None);
    let t = b.tick(t0 + ms(5_000)).unwrap();
    assert_eq!((t.from, t.to), (StateKind::Open, StateKind::HalfOpen));
    assert_eq!(b.retry_after(t0 + ms(5_000)), None);
}

#[test]
fn the_trial_closes_on_success_and_reopens_on_failure() {
    let t0 = Instant::now();
    let mut b = Breaker::new(config());
    b.trip(refused("down"), t0).unwrap();
    b.tick(t0 + ms(5_000)).unwrap();
    let t = b
        .apply(
            &BreakerEvent::Failed {
                cause: refused("still down"),
                trial: true,
            },
            t0 + ms(5_100),
        )
        .unwrap();
    assert_eq!((t.from, t.to), (StateKind::HalfOpen, StateKind::Open));
    assert!(t.cause.contains("trial failed"));
    assert_eq!(b.retry_after(t0 + ms(5_100)), Some(ms(5_000)));
    b.tick(t0 + ms(10_100)).unwrap();
    assert_eq!(
        b.apply(&BreakerEvent::TrialAbandoned, t0 + ms(10_200)),
        None
    );
    let t = b
        .apply(&BreakerEvent::TrialSucceeded, t0 + ms(10_300))
        .unwrap();
    assert_eq!((t.from, t.to), (StateKind::HalfOpen, StateKind::Closed));
    // Closed again with a clean window.
    assert_eq!(b.recent_failures(t0 + ms(10_300)), 0);
    assert_eq!(b.opened(), 2);
}

#[test]
fn a_storm_of_failures_keeps_no_more_than_the_threshold() {
    let t0 = Instant::now();
    let mut b = Breaker::new(BreakerConfig {
        failure_threshold: 1_000_000,
        ..config()
    });
    for i in 0..10_000 {
        b.failure(refused("x"), t0 + ms(i));
    }
    assert_eq!(b.recent.len(), 10_000);
    let mut b = Breaker::new(config());
    for i in 0..10_000 {
        b.failure(refused("x"), t0 + ms(i));
        assert!(b.recent.len() <= 3);
    }
}

#[test]
fn only_backend_failures_count() {
    let unavailable = OpError::Unavailable("refused".into());
    assert_eq!(classify(&unavailable), Some(FailureKind::Connection));
    assert_eq!(
        classify(&OpError::NoAnswer { after_ms: 1 }),
        Some(FailureKind::Timeout)
    );
    // The database answered: the statement was too slow, the backend is not down.
    assert_eq!(classify(&OpError::StatementTimeout), None);
    let unique = OpError::Db(Box::new(crate::ops::DbFailure {
        sqlstate: "23505".into(),
        message: "duplicate".into(),
        detail: None,
        hint: None,
        constraint: None,
        column: None,
    }));
    assert_eq!(classify(&unique), None);
    assert_eq!(classify(&OpError::InvalidRequest("syntax".into())), None);
    let open = OpError::CircuitOpen {
        cause: "x".into(),
        retry_after: ms(1),
    };
    assert_eq!(classify(&open), None);
    // An ordinary success says nothing; a trial's result is always reported, and a statement
    // error on the trial still proves the backend answers.
    assert_eq!(outcome(Admission::Pass, &Ok::<(), _>(())), None);
    assert_eq!(outcome::<()>(Admission::Pass, &Err(unique.clone())), None);
    assert_eq!(
        outcome::<()>(Admission::Trial, &Err(unique)),
        Some(BreakerEvent::TrialSucceeded)
    );
    assert!(matches!(
        outcome::<()>(Admission::Pass, &Err(unavailable)),
        Some(BreakerEvent::Failed { trial: false, .. })
    ));
}

#[test]
fn the_cell_refuses_while_open_and_grants_one_trial() {
    let t0 = Instant::now();
    let cell = BreakerCell::default();
    let mut b = Breaker::new(config());
    assert_eq!(cell.admit(t0).unwrap(), Admission::Pass);
    assert_eq!(cell.health(), HealthState::Unknown);
    cell.mark_reached();
    assert_eq!(cell.health(), HealthState::Online);

    b.trip(refused("down"), t0).unwrap();
    cell.publish(&b, t0);
    let r = cell.admit(t0 + ms(1_200)).unwrap_err();
    assert_eq!(r.state, StateKind::Open);
    // The remaining cooldown, not rounded below a second.
    assert!(
        r.retry_after > ms(3_700) && r.retry_after <= ms(3_800),
        "{r:?}"
    );
    assert_eq!(
        cell.admit(t0 + ms(4_900)).unwrap_err().retry_after,
        ms(1_000)
    );
    assert_eq!(
        r.cause.as_deref().map(String::as_str),
        Some("connection: down")
    );
    assert_eq!(cell.health(), HealthState::Offline);
    match OpError::from(r) {
        OpError::CircuitOpen { retry_after, .. } => assert!(retry_after >= ms(1_000)),
        other => panic!("{other:?}"),
    }

    b.tick(t0 + ms(5_000)).unwrap();
    cell.publish(&b, t0 + ms(5_000));
    assert_eq!(cell.admit(t0 + ms(5_001)).unwrap(), Admission::Trial);
    let r = cell.admit(t0 + ms(5_002)).unwrap_err();
    assert_eq!(r.state, StateKind::HalfOpen);
    assert!(cell.trial_taken());
    // Republishing half-open does not offer a second trial; releasing an abandoned one does.
    cell.publish(&b, t0 + ms(5_003));
    assert!(cell.admit(t0 + ms(5_004)).is_err());
    assert!(!cell.claim_trial());
    assert!(cell.release_trial());
    assert!(cell.claim_trial());

    b.success(t0 + ms(5_100)).unwrap();
    cell.publish(&b, t0 + ms(5_100));
    assert_eq!(cell.admit(t0 + ms(5_101)).unwrap(), Admission::Pass);
    assert_eq!(cell.state(), StateKind::Closed);
    assert_eq!(cell.opened(), 1);
}

#[test]
fn concurrent_requests_claim_the_trial_once() {
    let t0 = Instant::now();
    let cell = std::sync::Arc::new(BreakerCell::default());
    let mut b = Breaker::new(config());
    b.trip(refused("down"), t0).unwrap();
    b.tick(t0 + ms(5_000)).unwrap();
    cell.publish(&b, t0 + ms(5_000));
    let trials: usize = (0..8)
        .map(|_| {
            let cell = cell.clone();
            std::thread::spawn(move || {
                (0..1_000)
                    .filter(|_| matches!(cell.admit(Instant::now()), Ok(Admission::Trial)))
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(trials, 1);
}

#[test]
fn an_admission_reports_failures_and_a_dropped_trial() {
    let t0 = Instant::now();
    let cell = BreakerCell::default();
    let sent = std::cell::RefCell::new(Vec::new());
    let send = |e: BreakerEvent| sent.borrow_mut().push(e);
    // Closed: a success says nothing; a connection failure is reported.
    cell.enter(t0, send).unwrap().report(&Ok::<(), OpError>(()));
    cell.enter(t0, send)
        .unwrap()
        .report(&Err::<(), _>(OpError::Unavailable("reset".into())));
    assert!(matches!(
        sent.borrow().as_slice(),
        [BreakerEvent::Failed { trial: false, .. }]
    ));
    sent.borrow_mut().clear();
    // Half-open: the trial's holder drops it without a result.
    let mut b = Breaker::new(config());
    b.trip(refused("down"), t0).unwrap();
    b.tick(t0 + ms(5_000)).unwrap();
    cell.publish(&b, t0 + ms(5_000));
    let trial = cell.enter(t0 + ms(5_001), send).unwrap();
    assert_eq!(trial.admission(), Admission::Trial);
    assert!(cell.enter(t0 + ms(5_002), send).is_err());
    drop(trial);
    assert_eq!(sent.borrow().as_slice(), [BreakerEvent::TrialAbandoned]);
    // The owner frees it; the next trial reports its success once.
    assert!(cell.release_trial());
    sent.borrow_mut().clear();
    let mut trial = cell.enter(t0 + ms(5_003), send).unwrap();
    trial.report(&Ok::<(), OpError>(()));
    drop(trial);
    assert_eq!(sent.borrow().as_slice(), [BreakerEvent::TrialSucceeded]);
}
