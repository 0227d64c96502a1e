//! Where the remote commands (`fetch`, `pipeline`, `backup`) send their requests: the server URL,
//! the key and the Athena client, from the flags first, then the clients catalog
//! (`athena_rs clients`), then the environment. Each command says which environment variables
//! hold its default key, and whether they come before or after a saved target's key.

use std::path::PathBuf;

use super::clients::{self, Catalog};

/// A resolved destination.
pub struct Remote {
    /// Base URL without a trailing slash.
    pub url: Option<String>,
    pub key: Option<String>,
    /// The Athena client: what `fetch` and `pipeline` send as `X-Athena-Client`, the client
    /// `backup` backs up or restores into.
    pub athena_client: Option<String>,
}

/// Where a command's key comes from when `--key` is not given.
#[derive(Debug, Clone, Copy)]
pub enum KeyDefault<'a> {
    /// The saved target's key, then these environment variables in order (`fetch`, `pipeline`).
    TargetThenEnv(&'a [&'a str]),
    /// These environment variables in order, then the saved target's key (`backup`: the admin
    /// key lives in `$ATHENA_KEY_12`, a target's key is usually an API key).
    EnvThenTarget(&'a [&'a str]),
}

/// `--client` names a catalog target (or, when it names none, is the Athena client itself);
/// without it the catalog's default target is used. `--url` and `--key` override the target's;
/// a key otherwise comes from `$ATHENA_API_KEY`.
pub fn resolve(
    client: Option<&str>,
    url: Option<&str>,
    key: Option<&str>,
    clients_path: Option<PathBuf>,
) -> anyhow::Result<Remote> {
    resolve_with(
        client,
        url,
        key,
        clients_path,
        KeyDefault::TargetThenEnv(&["ATHENA_API_KEY"]),
    )
}

/// [`resolve`], with the command's own default key.
pub fn resolve_with(
    client: Option<&str>,
    url: Option<&str>,
    key: Option<&str>,
    clients_path: Option<PathBuf>,
    default_key: KeyDefault<'_>,
) -> anyhow::Result<Remote> {
    let catalog = Catalog::load(&clients::path(clients_path))?;
    let target = catalog.target(client);
    let (athena_client, target_url) = match &target {
        Some((name, t)) => (
            Some(t.athena_client.clone().unwrap_or_else(|| name.clone())),
            t.url.clone(),
        ),
        None => (client.map(str::to_string), None),
    };
    let url = url
        .map(str::to_string)
        .or(target_url)
        .map(|u| u.trim().trim_end_matches('/').to_string());
    let usable = |k: &String| !k.trim().is_empty();
    let from_env = |vars: &[&str]| {
        vars.iter()
            .find_map(|v| std::env::var(v).ok().filter(usable))
    };
    // A target's key is read only when it is the one used: its variable may be unset otherwise.
    let from_target = || match &target {
        Some((_, t)) => t.resolve_key(),
        None => Ok(None),
    };
    let key = match (key, default_key) {
        (Some(k), _) => Some(k.to_string()),
        (None, KeyDefault::TargetThenEnv(vars)) => {
            from_target()?.filter(usable).or_else(|| from_env(vars))
        }
        (None, KeyDefault::EnvThenTarget(vars)) => match from_env(vars) {
            Some(k) => Some(k),
            None => from_target()?,
        },
    }
    .filter(usable);
    Ok(Remote {
        url,
        key,
        athena_client,
    })
}
