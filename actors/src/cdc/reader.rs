//! One client's WAL reader: a task the hub starts on every instance, of which exactly one at a
//! time reads the slot.
//!
//! 1. It inspects the client database (wal_level, replication rights, free slots, publication
//!    rights) and resolves the captured tables; a problem is reported (and logged once, with the
//!    fix) and inspected again every `setup_retry`.
//! 2. It tries an advisory lock in the logging database every `lock_retry`, on a connection of
//!    its own. PostgreSQL releases the lock when that connection ends, so when the instance
//!    holding it dies another one takes over within a `lock_retry` or so.
//! 3. Holding the lock, it brings the publication to the captured tables (under a second lock
//!    that the admin API takes as well), makes sure the slot exists, and polls every
//!    `poll_interval`: peek the slot's changes up to the flushed WAL position, append them to
//!    `cdc_events` with the checkpoint in one transaction (on the lock's connection, so no one
//!    else can be writing), hand them to the hub, then advance the slot. Changes at or below the
//!    checkpoint were appended before a crash and are skipped.
//!
//! Any failure drops both connections (releasing the lock) and starts over after a pause.

use std::convert::Infallible;
use std::time::Duration;

use actix::Addr;
use tokio::sync::watch;
use tokio_postgres::Client;

use crate::pg::PgConfig as Config;

use super::messages::{Appended, ReaderReport, Report};
use super::pgoutput::{Decoder, Txn};
use super::setup::{self, Problem};
use super::subs::TableKey;
use super::{store, CdcHub, TableStatus};

/// Everything one reader needs.
#[derive(Clone)]
pub struct ReaderSpec {
    pub client: String,
    /// The slot's and the publication's name.
    pub slot: String,
    /// The client database. Holds the password: never log it.
    pub source: Config,
    /// The logging database. Holds the password: never log it.
    pub logging: Config,
    /// Tables config.yaml captures, with their REPLICA IDENTITY FULL wish.
    pub config_tables: Vec<(TableKey, bool)>,
    pub poll_interval: Duration,
    pub max_changes: i32,
    pub lock_retry: Duration,
    pub setup_retry: Duration,
    pub generation: u64,
}

/// Why a session ended.
enum Stop {
    Problem(Problem),
    Error(String),
    HubGone,
}

impl From<tokio_postgres::Error> for Stop {
    fn from(e: tokio_postgres::Error) -> Self {
        Stop::Error(match e.as_db_error() {
            Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
            None => e.to_string(),
        })
    }
}

impl From<store::ReadError> for Stop {
    fn from(e: store::ReadError) -> Self {
        Stop::Error(e.to_string())
    }
}

/// Runs until the hub stops it (by aborting the task) or goes away.
pub async fn run(spec: ReaderSpec, hub: Addr<CdcHub>, mut changed: watch::Receiver<u64>) {
    let mut last_problem: Option<Problem> = None;
    loop {
        let stop = session(&spec, &hub, &mut changed).await;
        let pause = match stop {
            Stop::HubGone => return,
            Stop::Problem(p) => {
                if last_problem.as_ref() != Some(&p) {
                    tracing::warn!(client = %spec.client, slot = %spec.slot, problem = %p.what, fix = %p.fix,
                        "change data capture cannot start for this client; everything else is served");
                }
                if !tell(&hub, &spec, Report::Problem(p.clone())).await {
                    return;
                }
                last_problem = Some(p);
                spec.setup_retry
            }
            Stop::Error(e) => {
                tracing::warn!(client = %spec.client, error = %e, "change data capture reader stopped; starting over");
                if !tell(&hub, &spec, Report::Error(e)).await {
                    return;
                }
                spec.lock_retry
            }
        };
        // A change of the captured tables is worth looking at before the pause is over.
        let _ = tokio::time::timeout(pause, changed.changed()).await;
    }
}

async fn tell(hub: &Addr<CdcHub>, spec: &ReaderSpec, report: Report) -> bool {
    hub.send(ReaderReport {
        client: spec.client.clone(),
        generation: spec.generation,
        report,
    })
    .await
    .is_ok()
}

/// Brings the slot's publication in line with the captured tables and tells the hub about them.
async fn publish_tables(
    spec: &ReaderSpec,
    hub: &Addr<CdcHub>,
    log: &mut Client,
    src: &Client,
) -> Result<(), Stop> {
    let tables = sync_tables(log, src, &spec.slot, &spec.client, &spec.config_tables).await?;
    let report = Report::Inspected {
        problem: None,
        tables,
    };
    if tell(hub, spec, report).await {
        Ok(())
    } else {
        Err(Stop::HubGone)
    }
}

async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = config.connect().await?;
    tokio::spawn(conn);
    Ok(client)
}

/// The client database as the reader connects to it: values rendered as JSON expects them, a
/// bound on every statement, a name in pg_stat_activity.
pub fn source_config(base: &Config) -> Config {
    let mut cfg = base.clone();
    let mut options = cfg.get_options().map(str::to_string).unwrap_or_default();
    for o in [
        "-c DateStyle=ISO",
        "-c TimeZone=UTC",
        "-c IntervalStyle=postgres",
        "-c extra_float_digits=1",
        "-c statement_timeout=60000",
    ] {
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(o);
    }
    cfg.options(&options);
    cfg.application_name("athena_cdc");
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(5));
    }
    cfg
}

/// Lock keys: one reader per slot, one publication change at a time per slot.
fn reader_lock(slot: &str) -> String {
    format!("athena_cdc_reader:{slot}")
}

pub fn publication_lock(slot: &str) -> String {
    format!("athena_cdc_publication:{slot}")
}

/// Resolves every wanted table in the client database.
async fn resolve_all(
    src: &Client,
    wanted: &[(TableKey, bool, &'static str)],
) -> Result<Vec<TableStatus>, tokio_postgres::Error> {
    let mut out = Vec::with_capacity(wanted.len());
    for (t, full, source) in wanted {
        let resolved = setup::resolve(src, t).await?;
        out.push(TableStatus::new(t.clone(), source, *full, resolved));
    }
    Ok(out)
}

async fn inspect(
    spec: &ReaderSpec,
    hub: &Addr<CdcHub>,
    log: &Client,
    src: &Client,
) -> Result<(), Stop> {
    let facts = setup::facts(src, &spec.slot).await?;
    let problem = setup::diagnose(&facts, &spec.slot);
    let wanted = wanted_tables(log, &spec.client, &spec.config_tables).await?;
    let tables = resolve_all(src, &wanted).await?;
    if !tell(
        hub,
        spec,
        Report::Inspected {
            problem: problem.clone(),
            tables,
        },
    )
    .await
    {
        return Err(Stop::HubGone);
    }
    problem.map_or(Ok(()), |p| Err(Stop::Problem(p)))
}

/// Brings the publication to the wanted tables, under the publication lock, and reports them.
pub async fn sync_tables(
    log: &mut Client,
    src: &Client,
    slot: &str,
    client: &str,
    config_tables: &[(TableKey, bool)],
) -> Result<Vec<TableStatus>, tokio_postgres::Error> {
    let tx = log.transaction().await?;
    tx.query_one(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&publication_lock(slot)],
    )
    .await?;
    let wanted = wanted_tables(&tx, client, config_tables).await?;
    let mut tables = resolve_all(src, &wanted).await?;
    let publish: Vec<(TableKey, bool)> = tables
        .iter()
        .filter(|t| t.state == "capturing")
        .map(|t| (t.key(), t.replica_identity_full))
        .collect();
    let failed = setup::sync_publication(src, slot, &publish).await?;
    for (key, why) in failed {
        if let Some(t) = tables.iter_mut().find(|t| t.key() == key) {
            t.state = "failed";
            t.detail = Some(why);
        }
    }
    tx.commit().await?;
    Ok(tables)
}

async fn session(
    spec: &ReaderSpec,
    hub: &Addr<CdcHub>,
    changed: &mut watch::Receiver<u64>,
) -> Stop {
    match lead(spec, hub, changed).await {
        Ok(never) => match never {},
        Err(stop) => stop,
    }
}

async fn lead(
    spec: &ReaderSpec,
    hub: &Addr<CdcHub>,
    changed: &mut watch::Receiver<u64>,
) -> Result<Infallible, Stop> {
    let mut log = connect(&spec.logging).await?;
    let src = connect(&source_config(&spec.source)).await.map_err(|e| {
        Stop::Problem(setup::problem_from_error(
            &e,
            "connecting to the client database",
        ))
    })?;
    changed.mark_unchanged();
    inspect(spec, hub, &log, &src).await?;

    // Wait for the lock, following table changes meanwhile.
    let mut said_follower = false;
    loop {
        let got: bool = log
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&reader_lock(&spec.slot)],
            )
            .await?
            .get(0);
        if got {
            break;
        }
        if !said_follower {
            said_follower = true;
            if !tell(hub, spec, Report::Follower).await {
                return Err(Stop::HubGone);
            }
        }
        if let Ok(Ok(())) = tokio::time::timeout(spec.lock_retry, changed.changed()).await {
            changed.mark_unchanged();
            inspect(spec, hub, &log, &src).await?;
        }
        if src.is_closed() {
            return Err(Stop::Error("the client database connection closed".into()));
        }
    }

    // Leader from here on.
    publish_tables(spec, hub, &mut log, &src).await?;
    let (mut confirmed, created) = setup::ensure_slot(&src, &spec.slot).await.map_err(|e| {
        Stop::Problem(setup::problem_from_error(
            &e,
            "creating the replication slot",
        ))
    })?;
    if created {
        tracing::info!(client = %spec.client, slot = %spec.slot, "replication slot created");
        store::reset_checkpoint(&log, &spec.slot, &spec.client, confirmed).await?;
    }
    let mut checkpoint = store::checkpoint(&log, &spec.slot).await?.unwrap_or(0);
    let mut after = store::head(&log, &spec.client).await?;
    if !tell(hub, spec, Report::Leader).await {
        return Err(Stop::HubGone);
    }
    tracing::info!(client = %spec.client, slot = %spec.slot, "reading the replication slot");
    let mut decoder = Decoder::default();
    let messages = setup::has_messages(&src).await?;
    // Polls start every `poll_interval` (or as soon as the last one is done, when it took
    // longer): a poll's own work is not added to the wait.
    let mut tick = tokio::time::interval(spec.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if log.is_closed() || src.is_closed() {
            return Err(Stop::Error("a connection closed".into()));
        }
        if changed.has_changed().unwrap_or(false) {
            changed.mark_unchanged();
            publish_tables(spec, hub, &mut log, &src).await?;
        }
        let upto = setup::flushed(&src).await?;
        if upto <= confirmed {
            tick.tick().await;
            continue;
        }
        let rows = setup::peek(&src, &spec.slot, upto, spec.max_changes, messages).await?;
        let truncated = rows.len() >= spec.max_changes as usize;
        let mut txns: Vec<Txn> = Vec::new();
        for (_, data) in &rows {
            if let Some(t) = decoder
                .feed(data)
                .map_err(|e| Stop::Error(format!("decoding the slot's changes: {e}")))?
            {
                txns.push(t);
            }
        }
        let last_end = txns.last().map_or(confirmed, |t| t.end_lsn);
        // Appended before a crash, not yet confirmed to the slot.
        txns.retain(|t| t.end_lsn > checkpoint && !t.changes.is_empty());
        if let Some(last) = txns.last() {
            let end = last.end_lsn;
            let events = store::append(&mut log, &spec.slot, &spec.client, &txns).await?;
            checkpoint = end;
            if let Some(head) = events.last().map(|e| e.seq) {
                let msg = Appended {
                    client: spec.client.clone(),
                    generation: spec.generation,
                    after,
                    events,
                };
                if hub.send(msg).await.is_err() {
                    return Err(Stop::HubGone);
                }
                after = head;
            }
        }
        let target = if truncated {
            last_end
        } else {
            last_end.max(upto)
        };
        if target > confirmed {
            setup::advance(&src, &spec.slot, target).await?;
            confirmed = target;
        }
        if !truncated {
            tick.tick().await;
        }
    }
}

/// The tables a client captures: config.yaml's, then the admin API's (a table in both counts
/// as config's), each with its REPLICA IDENTITY FULL wish and where it comes from.
pub async fn wanted_tables(
    log: &impl tokio_postgres::GenericClient,
    client: &str,
    config_tables: &[(TableKey, bool)],
) -> Result<Vec<(TableKey, bool, &'static str)>, tokio_postgres::Error> {
    let mut out: Vec<(TableKey, bool, &'static str)> = config_tables
        .iter()
        .map(|(t, f)| (t.clone(), *f, "config"))
        .collect();
    for s in store::stored_tables(log, Some(client)).await? {
        if !out.iter().any(|(t, ..)| *t == s.table) {
            out.push((s.table, s.replica_identity_full, "admin"));
        }
    }
    Ok(out)
}
