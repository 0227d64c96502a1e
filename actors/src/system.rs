//! Starting the actor system: one call, [`spawn_all`], used by the server and by tests.

use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;

use crate::backup::{BackupActor, BackupHandle, BackupSpec};
use crate::cache::{CacheActor, CacheHandle, CacheSpec};
use crate::cdc::{CdcHandle, CdcHub, CdcSpec};
use crate::keys::KeySettings;
use crate::registry::{
    ClientSpec, LoggingSpec, RegistryActor, RegistryHandle, RegistrySnapshot, SnapshotCell,
};
use crate::stats::{StatsActor, StatsHandle, StatsSpec};

/// Addresses and published state of the running actors.
#[derive(Clone)]
pub struct ActorHandles {
    pub registry: RegistryHandle,
    /// The registry's published snapshot; read it with `.load()`.
    pub snapshot: SnapshotCell,
    /// Where the edges report every served request.
    pub stats: StatsHandle,
    /// Cached fetch responses and their invalidation.
    pub cache: CacheHandle,
    /// Change data capture: subscriptions and the captured tables.
    pub cdc: CdcHandle,
    /// Backups to S3, restores and the backup schedules.
    pub backups: BackupHandle,
}

/// Starts every actor under supervision. Must be called inside a running actix system. With a
/// logging database, the registry migrates it in the background and the statistics actor writes
/// to it; the statistics actor and the change data capture hub run on arbiters of their own, away
/// from the request threads.
pub fn spawn_all(
    clients: Vec<ClientSpec>,
    logging: Option<LoggingSpec>,
    keys: KeySettings,
    stats: StatsSpec,
    cache: CacheSpec,
    cdc: CdcSpec,
    backups: BackupSpec,
) -> ActorHandles {
    let snapshot: SnapshotCell = Arc::new(ArcSwap::from_pointee(RegistrySnapshot::default()));
    let (stats_actor, counters, shards) =
        StatsActor::new(stats.clone(), logging.as_ref().map(|l| l.config.clone()));
    let stats_logged = logging.is_some();
    let arbiter = Arbiter::new();
    let stats_addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| stats_actor);
    let (hub, cdc_shared) = CdcHub::new(
        cdc,
        logging.as_ref().map(|l| l.config.clone()),
        snapshot.clone(),
    );
    let cdc_addr = Supervisor::start_in_arbiter(&Arbiter::new().handle(), move |_| hub);
    let unavailable = backups.unavailable.clone();
    let (backup_actor, store) = BackupActor::new(
        backups,
        snapshot.clone(),
        logging.as_ref().map(|l| l.config.clone()),
    );
    // Its own arbiter: dumps and uploads stream through it, away from the request threads.
    let backup_addr = Supervisor::start_in_arbiter(&Arbiter::new().handle(), move |_| backup_actor);
    let cell = snapshot.clone();
    let registry = Supervisor::start(move |_| RegistryActor::new(cell, clients, logging, keys));
    let (cache_actor, cache_shared) = CacheActor::new(cache);
    let cache_addr = Supervisor::start(move |_| cache_actor);
    ActorHandles {
        registry: RegistryHandle::new(registry),
        snapshot,
        stats: StatsHandle::new(stats_addr, counters, shards, &stats, stats_logged),
        cache: CacheHandle {
            shared: cache_shared,
            addr: cache_addr,
        },
        cdc: CdcHandle {
            addr: cdc_addr,
            shared: cdc_shared,
        },
        backups: BackupHandle::new(backup_addr, store, &unavailable),
    }
}
