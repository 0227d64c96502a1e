//! Actor glue for [`RegistryActor`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;

use super::admin::{self, CatalogEntry, CatalogError};
use super::messages::{ChangeCatalog, ListCatalog, ReloadCatalog, ReloadKeys, SetFrozen};
use super::{LoggingState, RegistryActor};
use crate::{keys, provision};

/// A connection from the registry's pool to the logging database.
async fn connection(
    pool: Option<deadpool_postgres::Pool>,
) -> Result<deadpool_postgres::Object, CatalogError> {
    let pool = pool.ok_or_else(|| CatalogError::Unavailable("none is configured".to_string()))?;
    pool.get()
        .await
        .map_err(|e| CatalogError::Unavailable(e.to_string()))
}

/// Pause between attempts to migrate an unreachable logging database.
const LOGGING_RETRY: Duration = Duration::from_secs(2);

/// The catalog is re-read this often even without notifications.
const CATALOG_RESYNC: Duration = Duration::from_secs(10);

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        for spec in std::mem::take(&mut self.initial) {
            self.add_client(spec);
        }
        self.loaded = true;
        match self.logging_spec.as_ref().map(|l| l.migrate) {
            Some(true) => {
                self.logging = LoggingState::Pending {
                    attempts: 0,
                    last_error: None,
                };
                self.migrate_logging(ctx);
            }
            // Provisioned by the operator: follow the catalog as it is.
            Some(false) => {
                self.load_catalog(ctx);
                self.follow_catalog(ctx);
            }
            None => {}
        }
        self.publish();
    }
}

impl RegistryActor {
    /// Reads the catalog (recording config clients it has never seen) and applies it, then the
    /// keys (which name catalog clients).
    pub(super) fn load_catalog(&mut self, ctx: &mut Context<Self>) {
        // Waited for: no change of the catalog is applied while it is read (see the module).
        ctx.wait(self.catalog_future().map(|res, act, ctx| {
            if let Err(e) = res {
                tracing::warn!(error = %e, "could not read the client catalog");
            }
            act.load_keys(ctx);
        }));
    }

    fn load_keys(&mut self, ctx: &mut Context<Self>) {
        // Waited for, like every read of the logging database here: a future paused while
        // another is waited for must not hold one of the pool's connections.
        ctx.wait(self.keys_future().map(|res, _, _| {
            if let Err(e) = res {
                tracing::warn!(error = %e, "could not read the API keys");
            }
        }));
    }

    /// The read of the keys as a future whose result the caller can await.
    fn keys_future(&mut self) -> ResponseActFuture<Self, Result<(), String>> {
        let settings = self.key_settings;
        let pool = self.catalog_db.clone();
        let fut = async move {
            let client = connection(pool).await.map_err(|e| e.to_string())?;
            keys::load::load(&client, settings.enforce_default)
                .await
                .map_err(|e| e.to_string())
        };
        Box::pin(fut.into_actor(self).map(|res, act, _| {
            let mut store = res?;
            store.carry_buckets(&act.keys, act.key_settings.default_rate);
            if !act.keys.loaded {
                tracing::info!(keys = store.keys.len(), "API keys loaded");
            }
            act.keys = Arc::new(store);
            act.publish();
            Ok(())
        }))
    }

    /// Starts following catalog changes: the LISTEN connection and the periodic resync.
    fn follow_catalog(&mut self, ctx: &mut Context<Self>) {
        let Some(spec) = self.logging_spec.clone() else {
            return;
        };
        let addr = ctx.address();
        ctx.spawn(super::listener::run(spec.config, addr).into_actor(self));
        ctx.run_interval(CATALOG_RESYNC, |act, ctx| act.load_catalog(ctx));
    }

    /// The read-and-apply of the catalog as a future whose result the caller can await.
    fn catalog_future(&mut self) -> ResponseActFuture<Self, Result<(), String>> {
        let names = self.config_names.clone();
        let pool = self.catalog_db.clone();
        let fut = async move {
            let client = connection(pool).await.map_err(|e| e.to_string())?;
            super::catalog::reconcile(&client, &names)
                .await
                .map_err(|e| e.to_string())
        };
        Box::pin(fut.into_actor(self).map(|res, act, _| {
            act.apply_catalog(res?);
            Ok(())
        }))
    }

    /// Creates (when missing) and migrates the logging database, retrying until it succeeds.
    fn migrate_logging(&mut self, ctx: &mut Context<Self>) {
        let Some(spec) = self.logging_spec.clone() else {
            return;
        };
        let fut = async move {
            let report = provision::provision(&spec.config, spec.create_database).await?;
            // athena_rs 2.0.2's keys and clients, once: when this start created Athena's tables.
            let fresh = report
                .applied
                .first()
                .is_some_and(|m| m.starts_with("0001_"));
            if let Some(old) = spec.import_2_0_2.as_ref().filter(|_| fresh) {
                let imported = async {
                    let old = provision::connect(old).await?;
                    let mut new = provision::connect(&spec.config).await?;
                    provision::import_2_0_2(&old, &mut new).await
                }
                .await;
                match imported {
                    Ok(r) => tracing::info!(
                        keys = r.keys_imported,
                        grants = r.grants,
                        clients = r.clients_imported,
                        enforce = ?r.enforce_api_keys,
                        notes = ?r.notes,
                        "imported athena_rs 2.0.2's API keys and clients into the logging database"
                    ),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "athena_rs 2.0.2's API keys and clients were not imported; run athena_rs provision --import-from with its logging database"
                    ),
                }
            }
            Ok::<_, provision::ProvisionError>(report)
        };
        // A task of its own: the migration holds locks in the logging database, and a future of
        // this actor is paused while the actor waits for a change of the catalog, which could
        // then wait for those locks.
        let task = actix_rt::spawn(fut);
        let fut = async move {
            task.await.unwrap_or_else(|e| {
                Err(provision::ProvisionError::Connect(format!(
                    "the migration stopped: {e}"
                )))
            })
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            match res {
                Ok(report) => {
                    tracing::info!(applied = ?report.applied, created = report.created_database, "logging database is up to date");
                    act.logging = LoggingState::Ready {
                        applied: report.applied,
                    };
                    act.load_catalog(ctx);
                    act.follow_catalog(ctx);
                }
                Err(e) => {
                    let attempts = match &act.logging {
                        LoggingState::Pending { attempts, .. } => attempts + 1,
                        _ => 1,
                    };
                    if attempts == 1 {
                        tracing::warn!(error = %e, "logging database not ready; retrying in the background");
                    }
                    act.logging = LoggingState::Pending {
                        attempts,
                        last_error: Some(e.to_string()),
                    };
                    ctx.run_later(LOGGING_RETRY, |act, ctx| act.migrate_logging(ctx));
                }
            }
            act.publish();
        }));
    }
}

impl Supervised for RegistryActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!("registry actor restarting; keeping its clients");
        self.publish();
    }
}

impl Handler<SetFrozen> for RegistryActor {
    type Result = bool;

    fn handle(&mut self, msg: SetFrozen, _: &mut Context<Self>) -> bool {
        let Some(entry) = self.clients.get_mut(&msg.name) else {
            return false;
        };
        let mut handle = (*entry.handle).clone();
        let changed = if msg.frozen {
            handle.lifecycle.freeze(msg.reason, SystemTime::now())
        } else {
            handle.lifecycle.unfreeze()
        };
        if changed {
            entry.handle = Arc::new(handle);
            self.publish();
        }
        true
    }
}

impl Handler<ReloadCatalog> for RegistryActor {
    type Result = AtomicResponse<Self, Result<(), String>>;

    fn handle(&mut self, _: ReloadCatalog, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.catalog_future())
    }
}

impl Handler<ListCatalog> for RegistryActor {
    type Result = ResponseFuture<Result<Vec<CatalogEntry>, CatalogError>>;

    fn handle(&mut self, _: ListCatalog, _: &mut Context<Self>) -> Self::Result {
        let pool = self.catalog_db.clone();
        Box::pin(async move { admin::list(&*connection(pool).await?).await })
    }
}

impl Handler<ChangeCatalog> for RegistryActor {
    type Result = AtomicResponse<Self, Result<CatalogEntry, CatalogError>>;

    /// Writes the change, then reads the whole catalog back and applies it, all before the next
    /// message: the answer means the change is served.
    fn handle(&mut self, msg: ChangeCatalog, _: &mut Context<Self>) -> Self::Result {
        let pool = self.catalog_db.clone();
        let names = self.config_names.clone();
        let fut = async move {
            let db = connection(pool).await?;
            let written = admin::write(&db, &msg.0, &names).await?;
            let rows = super::catalog::reconcile(&db, &names)
                .await
                .map_err(|e| CatalogError::NotApplied(e.to_string()))?;
            Ok::<_, CatalogError>((written, rows))
        };
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|res, act, _| {
            let (written, rows) = res?;
            act.apply_catalog(rows);
            Ok(written)
        })))
    }
}

impl Handler<ReloadKeys> for RegistryActor {
    type Result = AtomicResponse<Self, Result<(), String>>;

    fn handle(&mut self, _: ReloadKeys, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.keys_future())
    }
}
