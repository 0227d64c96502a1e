//! Where the remote commands (`fetch`, `pipeline`) send their request: the server URL, the key
//! and the `X-Athena-Client`, from the flags first, then the clients catalog
//! (`athena_rs clients`), then the environment.

use std::path::PathBuf;

use super::clients::{self, Catalog};

/// A resolved destination.
pub struct Remote {
    /// Base URL without a trailing slash.
    pub url: Option<String>,
    pub key: Option<String>,
    /// The `X-Athena-Client` to send.
    pub athena_client: Option<String>,
}

/// `--client` names a catalog target (or, when it names none, is sent as `X-Athena-Client`);
/// without it the catalog's default target is used. `--url` and `--key` override the target's;
/// a key otherwise comes from `$ATHENA_API_KEY`.
pub fn resolve(
    client: Option<&str>,
    url: Option<&str>,
    key: Option<&str>,
    clients_path: Option<PathBuf>,
) -> anyhow::Result<Remote> {
    let catalog = Catalog::load(&clients::path(clients_path))?;
    let target = catalog.target(client);
    let (athena_client, target_url, target_key) = match &target {
        Some((name, t)) => (
            Some(t.athena_client.clone().unwrap_or_else(|| name.clone())),
            Some(t.url.clone()),
            if key.is_some() {
                None
            } else {
                t.resolve_key()?
            },
        ),
        None => (client.map(str::to_string), None, None),
    };
    let url = url
        .map(str::to_string)
        .or(target_url)
        .map(|u| u.trim_end_matches('/').to_string());
    let key = key
        .map(str::to_string)
        .or(target_key)
        .or_else(|| std::env::var("ATHENA_API_KEY").ok())
        .filter(|k| !k.trim().is_empty());
    Ok(Remote {
        url,
        key,
        athena_client,
    })
}
