//! [`RegistryHandle`]: how the edges reach the registry, with a mailbox failure (the actor
//! restarting) mapped in one place.

use actix::prelude::*;

use super::admin::{CatalogChange, CatalogEntry, CatalogError};
use super::messages::{ChangeCatalog, ListCatalog, ReloadKeys, SetFrozen};
use super::RegistryActor;

#[derive(Clone)]
pub struct RegistryHandle {
    addr: Addr<RegistryActor>,
}

const RESTARTING: &str = "the registry is restarting";

impl RegistryHandle {
    pub fn new(addr: Addr<RegistryActor>) -> Self {
        RegistryHandle { addr }
    }

    /// The catalog's live rows.
    pub async fn list_catalog(&self) -> Result<Vec<CatalogEntry>, CatalogError> {
        self.addr
            .send(ListCatalog)
            .await
            .map_err(|_| CatalogError::Unavailable(RESTARTING.into()))?
    }

    /// Writes, announces and applies a change to the catalog.
    pub async fn change_catalog(
        &self,
        change: CatalogChange,
    ) -> Result<CatalogEntry, CatalogError> {
        self.addr
            .send(ChangeCatalog(change))
            .await
            .map_err(|_| CatalogError::Unavailable(RESTARTING.into()))?
    }

    /// Reads the API keys again and publishes them.
    pub async fn reload_keys(&self) -> Result<(), String> {
        self.addr
            .send(ReloadKeys)
            .await
            .map_err(|_| RESTARTING.to_string())?
    }

    /// Freezes or unfreezes a client in this instance only; false when there is no such client.
    pub async fn set_frozen(&self, name: &str, frozen: bool, reason: &str) -> bool {
        self.addr
            .send(SetFrozen {
                name: name.to_string(),
                frozen,
                reason: reason.to_string(),
            })
            .await
            .unwrap_or(false)
    }
}
