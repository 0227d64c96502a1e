//! API keys, held in memory. The registry loads every key with its rights and the enforcement
//! settings from the logging database into a [`KeyStore`] and publishes it in its snapshot; a
//! request is authenticated and authorised against that snapshot with no database round trip.
//! Changes reach it through the registry (`ReloadKeys`, sent by the admin API, by `NOTIFY
//! athena_api_keys` from any instance, and by a periodic resync). Expiry is checked against the
//! clock at each request, so an expired key stops working at once.
//!
//! This module decides; it does not log, and it does not know about HTTP.

pub mod admin;
pub mod load;
pub mod rights;
pub mod secret;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use rights::{Action, Required, Right};

use crate::backend::postgres::{RateLimit, TokenBucket};

/// The channel key and enforcement changes are announced on.
pub const CHANNEL: &str = "athena_api_keys";

/// Key settings from config.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeySettings {
    /// Whether keys are required until (and unless) the database says otherwise; also the value
    /// the global setting is seeded with.
    pub enforce_default: bool,
    /// The bucket of keys without a limit of their own.
    pub default_rate: Option<RateLimit>,
}

/// One key as the gateway checks it.
#[derive(Debug)]
pub struct ApiKey {
    /// The row id (`api_keys.id`), for the auth log.
    pub id: i64,
    pub public_id: String,
    pub name: String,
    /// The one client this key may be used with, if bound.
    pub client_name: Option<String>,
    salt: String,
    hash: [u8; 32],
    pub is_active: bool,
    pub expires_at: Option<SystemTime>,
    pub rights: Vec<Right>,
    /// The rights as granted, for the auth log (shared, so logging a decision copies nothing).
    pub right_names: Arc<[String]>,
    /// Its own limit (`rate_limit_per_minute`), if it has one.
    pub limit: Option<RateLimit>,
    /// The bucket it draws from: its own limit, else the default; kept across reloads while that
    /// limit is unchanged.
    pub bucket: Option<Arc<TokenBucket>>,
}

impl ApiKey {
    /// Whether one of its rights allows `required`.
    pub fn allows(&self, required: &Required) -> bool {
        self.rights.iter().any(|r| r.grants(required))
    }
}

/// Why a presented key was not accepted. `reason()` is what the auth log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFailure {
    Malformed,
    Unknown,
    WrongSecret,
    Inactive,
    Expired,
}

impl KeyFailure {
    pub fn reason(self) -> &'static str {
        match self {
            KeyFailure::Malformed => "invalid_api_key_format",
            KeyFailure::Unknown => "unknown_api_key",
            KeyFailure::WrongSecret => "invalid_api_key_secret",
            KeyFailure::Inactive => "inactive_api_key",
            KeyFailure::Expired => "expired_api_key",
        }
    }
}

/// Every key and the enforcement settings, as last loaded.
#[derive(Debug, Default)]
pub struct KeyStore {
    /// The keys were read from the logging database at least once.
    pub loaded: bool,
    /// Enforcement from config, used until the database's setting is known.
    pub enforce_default: bool,
    /// The global setting (`api_key_config`).
    pub enforce_global: Option<bool>,
    /// Per-client overrides (`api_key_client_config`), by lower-case client name.
    pub client_enforce: HashMap<String, bool>,
    /// Active and inactive keys by public id; revoked keys are not here.
    pub keys: HashMap<String, Arc<ApiKey>>,
}

impl KeyStore {
    /// An empty store that enforces (or not) as config says.
    pub fn unloaded(enforce_default: bool) -> KeyStore {
        KeyStore {
            enforce_default,
            ..KeyStore::default()
        }
    }

    /// Whether requests to `client` need a key: its override, else the global setting.
    pub fn enforced(&self, client: &str) -> bool {
        self.client_enforce
            .get(&client.to_ascii_lowercase())
            .copied()
            .or(self.enforce_global)
            .unwrap_or(self.enforce_default)
    }

    /// Finds and verifies a presented `ath_…` key at `now`.
    pub fn authenticate(
        &self,
        presented: &str,
        now: SystemTime,
    ) -> Result<Arc<ApiKey>, KeyFailure> {
        let (public_id, secret) = secret::split(presented).ok_or(KeyFailure::Malformed)?;
        let key = self.keys.get(public_id).ok_or(KeyFailure::Unknown)?;
        if !secret::constant_time_eq(&secret::hash(&key.salt, secret), &key.hash) {
            return Err(KeyFailure::WrongSecret);
        }
        if !key.is_active {
            return Err(KeyFailure::Inactive);
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyFailure::Expired);
        }
        Ok(key.clone())
    }

    /// Gives each key of `self` the bucket it had in `previous` when its limit is unchanged, and a
    /// fresh one otherwise, so reloading keys does not refill anyone's bucket.
    pub fn carry_buckets(&mut self, previous: &KeyStore, default: Option<RateLimit>) {
        let now = Instant::now();
        for key in self.keys.values_mut() {
            let Some(k) = Arc::get_mut(key) else { continue };
            let limit = k.limit.or(default);
            k.bucket = limit.map(|limit| {
                previous
                    .keys
                    .get(&k.public_id)
                    .and_then(|p| p.bucket.clone())
                    .filter(|b| b.limit() == limit)
                    .unwrap_or_else(|| Arc::new(TokenBucket::new(limit, now)))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store_with(minted: &secret::Minted, f: impl FnOnce(&mut ApiKey)) -> KeyStore {
        let mut key = ApiKey {
            id: 1,
            public_id: minted.public_id.clone(),
            name: "k".into(),
            client_name: None,
            salt: minted.salt.clone(),
            hash: secret::parse_hash(&minted.hash_hex).unwrap(),
            is_active: true,
            expires_at: None,
            rights: vec![],
            right_names: Arc::from([]),
            limit: None,
            bucket: None,
        };
        f(&mut key);
        let mut store = KeyStore::unloaded(true);
        store.loaded = true;
        store.keys.insert(key.public_id.clone(), Arc::new(key));
        store
    }

    #[test]
    fn keys_are_refused_for_each_reason() {
        let now = SystemTime::now();
        let m = secret::mint();
        let store = store_with(&m, |_| {});
        assert!(store.authenticate(&m.full, now).is_ok());
        let cases = [
            ("nonsense".to_string(), KeyFailure::Malformed),
            (
                format!("ath_{}.{}", "0000000000000000", "x"),
                KeyFailure::Unknown,
            ),
            (
                format!("ath_{}.wrong", m.public_id),
                KeyFailure::WrongSecret,
            ),
        ];
        for (key, failure) in cases {
            assert_eq!(store.authenticate(&key, now).unwrap_err(), failure);
        }
        let inactive = store_with(&m, |k| k.is_active = false);
        assert_eq!(
            inactive.authenticate(&m.full, now).unwrap_err(),
            KeyFailure::Inactive
        );
        let expiring = store_with(&m, |k| k.expires_at = Some(now + Duration::from_secs(1)));
        assert!(expiring.authenticate(&m.full, now).is_ok());
        assert_eq!(
            expiring
                .authenticate(&m.full, now + Duration::from_secs(1))
                .unwrap_err(),
            KeyFailure::Expired
        );
    }

    #[test]
    fn client_overrides_beat_the_global_setting_which_beats_config() {
        let mut store = KeyStore::unloaded(true);
        assert!(store.enforced("a"));
        store.enforce_global = Some(false);
        assert!(!store.enforced("a"));
        store.client_enforce.insert("a".into(), true);
        assert!(store.enforced("A"));
        assert!(!store.enforced("b"));
    }

    #[test]
    fn reloading_keeps_a_bucket_whose_limit_is_unchanged() {
        let m = secret::mint();
        let limit = RateLimit {
            per_second: 1.0,
            burst: 1,
        };
        let mut old = store_with(&m, |_| {});
        old.carry_buckets(&KeyStore::default(), Some(limit));
        let bucket = old.keys[&m.public_id].bucket.clone().unwrap();
        assert!(bucket.try_take(Instant::now()).is_ok());
        let mut new = store_with(&m, |_| {});
        new.carry_buckets(&old, Some(limit));
        assert!(Arc::ptr_eq(
            new.keys[&m.public_id].bucket.as_ref().unwrap(),
            &bucket
        ));
        let mut unlimited = store_with(&m, |_| {});
        unlimited.carry_buckets(&old, None);
        assert!(unlimited.keys[&m.public_id].bucket.is_none());
    }
}
