//! Messages a [`RegistryActor`](super::RegistryActor) accepts. The edges send them through
//! [`RegistryHandle`](super::RegistryHandle).

use actix::Message;

use super::admin::{CatalogChange, CatalogEntry, CatalogError};

/// Freezes or unfreezes a client in this instance only (the catalog is not written). Returns
/// false when the client does not exist.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct SetFrozen {
    pub name: String,
    pub frozen: bool,
    pub reason: String,
}

/// Reads the client catalog again and applies it; answers once it is applied.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct ReloadCatalog;

/// Reads the API keys and enforcement settings again; answers once they are published.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct ReloadKeys;

/// The catalog's live rows.
#[derive(Message)]
#[rtype(result = "Result<Vec<CatalogEntry>, CatalogError>")]
pub struct ListCatalog;

/// Writes a change to the client catalog, announces it to the other instances and applies it
/// here; answers the row written once the change is served.
#[derive(Message)]
#[rtype(result = "Result<CatalogEntry, CatalogError>")]
pub struct ChangeCatalog(pub CatalogChange);
