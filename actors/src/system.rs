//! Starting the actor system: one call, [`spawn_all`], used by the server and by tests.

use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;

use crate::cache::{CacheActor, CacheHandle, CacheSpec};
use crate::cdc::{CdcHandle, CdcHub, CdcSpec};
use crate::keys::KeySettings;
use crate::registry::{ClientSpec, LoggingSpec, RegistryActor, RegistrySnapshot, SnapshotCell};
use crate::stats::{StatsActor, StatsHandle, StatsSpec};

/// Addresses and published state of the running actors.
#[derive(Clone)]
pub struct ActorHandles {
    pub registry: Addr<RegistryActor>,
    /// The registry's published snapshot; read it with `.load()`.
    pub snapshot: SnapshotCell,
    /// Where the edges report every served request.
    pub stats: StatsHandle,
    /// Cached fetch responses and their invalidation.
    pub cache: CacheHandle,
    /// Change data capture: subscriptions and the captured tables.
    pub cdc: CdcHandle,
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
) -> ActorHandles {
    let snapshot: SnapshotCell = Arc::new(ArcSwap::from_pointee(RegistrySnapshot::default()));
    let (stats_actor, counters, queue) =
        StatsActor::new(stats.clone(), logging.as_ref().map(|l| l.config.clone()));
    let arbiter = Arbiter::new();
    let stats_addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| stats_actor);
    let (hub, cdc_shared) = CdcHub::new(
        cdc,
        logging.as_ref().map(|l| l.config.clone()),
        snapshot.clone(),
    );
    let cdc_addr = Supervisor::start_in_arbiter(&Arbiter::new().handle(), move |_| hub);
    let cell = snapshot.clone();
    let registry = Supervisor::start(move |_| RegistryActor::new(cell, clients, logging, keys));
    let (cache_actor, cache_shared) = CacheActor::new(cache);
    let cache_addr = Supervisor::start(move |_| cache_actor);
    ActorHandles {
        registry,
        snapshot,
        stats: StatsHandle::new(stats_addr, counters, queue, &stats),
        cache: CacheHandle {
            shared: cache_shared,
            addr: cache_addr,
        },
        cdc: CdcHandle {
            addr: cdc_addr,
            shared: cdc_shared,
        },
    }
}
