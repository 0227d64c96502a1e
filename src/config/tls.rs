//! Certificate files named by the configuration (Redis, S3; PostgreSQL's are read by
//! `athena_actors::pg`): read and checked to hold PEM certificates or a key when the settings
//! are loaded, so a wrong file is refused at start, with its key, rather than at the first
//! connection.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::types::RedisConfig;
use super::ConfigError;

/// What a PEM file must hold.
#[derive(Clone, Copy)]
pub(super) enum Pem {
    Certificates,
    PrivateKey,
}

/// The contents of `file`, named by config key `key`, checked to hold `what`.
pub(super) fn read_pem(
    path: &Path,
    key: &str,
    file: &str,
    what: Pem,
) -> Result<Vec<u8>, ConfigError> {
    let bytes =
        std::fs::read(file).map_err(|e| ConfigError::new(path, key, format!("{file}: {e}")))?;
    let (valid, wanted) = match what {
        Pem::Certificates => (
            CertificateDer::pem_slice_iter(&bytes)
                .next()
                .is_some_and(|c| c.is_ok()),
            "PEM certificate",
        ),
        Pem::PrivateKey => (
            PrivateKeyDer::from_pem_slice(&bytes).is_ok(),
            "a PEM private key",
        ),
    };
    if !valid {
        return Err(ConfigError::new(
            path,
            key,
            format!("{file} holds no {wanted}"),
        ));
    }
    Ok(bytes)
}

/// The certificate files of a `rediss://` URL (`cache.redis.ca_file`, `cert_file`, `key_file`).
pub(super) fn redis(
    r: &RedisConfig,
    url: &str,
    path: &Path,
) -> Result<Option<athena_actors::cache::RedisTls>, ConfigError> {
    if r.ca_file.is_none() && r.cert_file.is_none() && r.key_file.is_none() {
        return Ok(None);
    }
    if !url.starts_with("rediss://") {
        return Err(ConfigError::new(
            path,
            "cache.redis.url",
            "ca_file, cert_file and key_file need a rediss:// URL",
        ));
    }
    let ca = r
        .ca_file
        .as_deref()
        .map(|f| read_pem(path, "cache.redis.ca_file", f, Pem::Certificates))
        .transpose()?;
    let client = match (&r.cert_file, &r.key_file) {
        (Some(c), Some(k)) => Some((
            read_pem(path, "cache.redis.cert_file", c, Pem::Certificates)?,
            read_pem(path, "cache.redis.key_file", k, Pem::PrivateKey)?,
        )),
        (None, None) => None,
        _ => {
            return Err(ConfigError::new(
                path,
                "cache.redis",
                "cert_file and key_file go together",
            ))
        }
    };
    Ok(Some(athena_actors::cache::RedisTls { ca, client }))
}
