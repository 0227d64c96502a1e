//! Reads every key, its rights and the enforcement settings from the logging database into a
//! [`KeyStore`]. The global setting is seeded from config the first time (when no row exists), so
//! an admin's later change survives restarts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio_postgres::Client;

use super::{secret, ApiKey, KeyStore, Right};
use crate::backend::postgres::RateLimit;

const KEYS: &str = "\
SELECT k.id, k.public_id, k.name, k.client_name, k.key_salt, k.key_hash, k.is_active, \
       extract(epoch FROM k.expires_at)::float8, k.rate_limit_per_minute, \
       coalesce(array_agg(r.name ORDER BY r.name) FILTER (WHERE r.name IS NOT NULL), '{}') \
FROM api_keys k \
LEFT JOIN api_key_right_grants g ON g.api_key_id = k.id \
LEFT JOIN api_key_rights r ON r.id = g.right_id \
WHERE k.revoked_at IS NULL \
GROUP BY k.id";

/// The token bucket a per-minute limit stands for: that many requests at once, refilled evenly.
pub fn per_minute(n: i32) -> Option<RateLimit> {
    let n = u32::try_from(n).ok().filter(|n| *n > 0)?;
    Some(RateLimit {
        per_second: f64::from(n) / 60.0,
        burst: n,
    })
}

/// Loads the store, without buckets: [`KeyStore::carry_buckets`] gives them out. Keys whose stored
/// hash or rights cannot be parsed are left out, with a warning.
pub async fn load(db: &Client, enforce_default: bool) -> Result<KeyStore, tokio_postgres::Error> {
    db.execute(
        "INSERT INTO api_key_config (id, enforce_api_keys) VALUES (true, $1) ON CONFLICT (id) DO NOTHING",
        &[&enforce_default],
    )
    .await?;
    let global: bool = db
        .query_one("SELECT enforce_api_keys FROM api_key_config", &[])
        .await?
        .get(0);
    let client_enforce: HashMap<String, bool> = db
        .query(
            "SELECT lower(client_name), enforce_api_keys FROM api_key_client_config",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut keys = HashMap::new();
    for row in db.query(KEYS, &[]).await? {
        let public_id: String = row.get(1);
        let Some(hash) = secret::parse_hash(row.get(5)) else {
            tracing::warn!(key = %public_id, "stored key hash is malformed; key ignored");
            continue;
        };
        let right_names: Vec<String> = row.get(9);
        let rights: Result<Vec<Right>, String> =
            right_names.iter().map(|n| Right::parse(n)).collect();
        let Ok(rights) = rights else {
            tracing::warn!(key = %public_id, "key holds a malformed right; key ignored");
            continue;
        };
        let expires_at = row
            .get::<_, Option<f64>>(7)
            .map(|s| UNIX_EPOCH + Duration::from_secs_f64(s.max(0.0)));
        let limit = row.get::<_, Option<i32>>(8).and_then(per_minute);
        let key = ApiKey {
            id: row.get(0),
            public_id: public_id.clone(),
            name: row.get(2),
            client_name: row
                .get::<_, Option<String>>(3)
                .map(|c| c.to_ascii_lowercase()),
            salt: row.get(4),
            hash,
            is_active: row.get(6),
            expires_at,
            rights,
            right_names: right_names.into(),
            limit,
            bucket: None,
        };
        keys.insert(public_id, Arc::new(key));
    }
    Ok(KeyStore {
        loaded: true,
        enforce_default,
        enforce_global: Some(global),
        client_enforce,
        keys,
    })
}
