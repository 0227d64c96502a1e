//! The bucket: an S3 client (aws-sdk-s3 on rustls) and the operations backups need. Listing
//! follows continuation tokens to the end; objects are read as streams, never whole.
//!
//! A backup is complete when its manifest (`<key>.manifest.json`: size, SHA-256, client, label…)
//! exists. The manifest is written only after the multipart upload of the dump completed, so a
//! listing shows a dump without one as incomplete, and a restore refuses it.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::keys::{self, DUMP_SUFFIX, MANIFEST_SUFFIX};
use super::{BackupError, S3Spec};

/// What a complete backup's manifest records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub key: String,
    pub id: String,
    pub client: String,
    pub label: Option<String>,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// RFC 3339.
    pub created_at: String,
    /// Seconds since the epoch (what the key's stamp says).
    pub created_unix: i64,
    pub size: u64,
    pub sha256: String,
    pub parts: u32,
}

/// One backup as a listing shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BackupEntry {
    pub key: String,
    pub client: String,
    pub id: Option<String>,
    pub size: u64,
    pub last_modified: Option<String>,
    /// Its manifest exists: it was uploaded whole and can be verified and restored.
    pub complete: bool,
    pub created_at: Option<String>,
    #[serde(skip)]
    pub created_unix: Option<i64>,
    pub label: Option<String>,
    pub trigger: Option<String>,
    pub sha256: Option<String>,
}

/// An upload in progress.
pub struct Multipart {
    pub key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl Multipart {
    pub fn parts(&self) -> u32 {
        self.parts.len() as u32
    }
}

/// The bucket and the prefix backups live under.
pub struct Store {
    client: Client,
    pub bucket: String,
    /// Normalised (no leading or trailing `/`).
    pub prefix: String,
}

fn storage<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> BackupError {
    BackupError::Storage(DisplayErrorContext(&e).to_string())
}

impl Store {
    pub fn new(spec: &S3Spec) -> Store {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(120))
            .build();
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(spec.region.clone()))
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(3))
            // Checksums only where S3 requires them: S3-compatible servers differ in the rest.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .force_path_style(spec.path_style);
        if let Some((access, secret, token)) = &spec.credentials {
            b = b.credentials_provider(Credentials::new(
                access,
                secret,
                token.clone(),
                None,
                "athena",
            ));
        }
        if let Some(endpoint) = &spec.endpoint {
            b = b.endpoint_url(endpoint);
        }
        Store {
            client: Client::from_conf(b.build()),
            bucket: spec.bucket.clone(),
            prefix: keys::normalize_prefix(&spec.prefix),
        }
    }

    /// The raw client, for tests and tools that write to the bucket directly.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every object under `prefix`: (key, size, last modified), following continuation tokens.
    pub async fn list_objects(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, u64, Option<String>)>, BackupError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(storage)?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    let modified = o
                        .last_modified()
                        .and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok());
                    out.push((k.to_string(), o.size().unwrap_or(0).max(0) as u64, modified));
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// Every backup (of one client, or all), newest first, with what the manifests say.
    pub async fn list(&self, client: Option<&str>) -> Result<Vec<BackupEntry>, BackupError> {
        use futures_util::{StreamExt, TryStreamExt};
        let root = keys::root(&self.prefix);
        let prefix = match client {
            Some(c) => format!("{root}{c}/"),
            None => root,
        };
        let objects = self.list_objects(&prefix).await?;
        let manifests: std::collections::HashSet<&str> = objects
            .iter()
            .filter_map(|(k, _, _)| k.strip_suffix(MANIFEST_SUFFIX))
            .collect();
        let mut entries: Vec<BackupEntry> = objects
            .iter()
            .filter(|(k, _, _)| k.ends_with(DUMP_SUFFIX))
            .filter_map(|(k, size, modified)| {
                let parsed = keys::check_key(&self.prefix, k).ok()?;
                Some(BackupEntry {
                    key: k.clone(),
                    client: parsed.client,
                    id: parsed.id,
                    size: *size,
                    last_modified: modified.clone(),
                    complete: manifests.contains(k.as_str()),
                    created_at: parsed.created.map(rfc3339),
                    created_unix: parsed.created,
                    label: None,
                    trigger: None,
                    sha256: None,
                })
            })
            .collect();
        // The manifests of complete backups, a few at a time.
        let read: Vec<(usize, Option<Manifest>)> = futures_util::stream::iter(
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.complete)
                .map(|(i, e)| (i, e.key.clone())),
        )
        .map(|(i, key)| async move { self.manifest(&key).await.map(|m| (i, m)) })
        .buffer_unordered(16)
        .try_collect()
        .await?;
        for (i, m) in read {
            let e = &mut entries[i];
            match m {
                Some(m) if m.key == e.key && m.size == e.size => {
                    e.label = m.label;
                    e.trigger = Some(m.trigger);
                    e.sha256 = Some(m.sha256);
                    e.created_at = Some(m.created_at);
                    e.created_unix = Some(m.created_unix);
                }
                // Gone meanwhile, or not describing this object: not complete.
                _ => e.complete = false,
            }
        }
        entries.sort_by(|a, b| {
            b.created_unix
                .cmp(&a.created_unix)
                .then_with(|| b.key.cmp(&a.key))
        });
        Ok(entries)
    }

    /// The manifest of a dump key, if it has one.
    pub async fn manifest(&self, key: &str) -> Result<Option<Manifest>, BackupError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(keys::manifest_key(key))
            .send()
            .await;
        let out = match got {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| BackupError::Storage(format!("reading the manifest of {key}: {e}")))?
            .into_bytes();
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| BackupError::Corrupt {
                key: key.to_string(),
                reason: format!("its manifest is not readable: {e}"),
            })
    }

    pub async fn put_manifest(&self, m: &Manifest) -> Result<(), BackupError> {
        let body = serde_json::to_vec(m).map_err(|e| BackupError::Internal(e.to_string()))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(keys::manifest_key(&m.key))
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// The object's bytes as a stream, and its length.
    pub async fn open(&self, key: &str) -> Result<(ByteStream, Option<u64>), BackupError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok((o.body, o.content_length.map(|l| l.max(0) as u64))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(BackupError::NotFound(key.to_string()))
            }
            Err(e) => Err(storage(e)),
        }
    }

    /// Whether the object exists.
    pub async fn exists(&self, key: &str) -> Result<bool, BackupError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(e) => Err(storage(e)),
        }
    }

    /// Deletes a backup: its manifest first (so it stops being complete), then the dump.
    pub async fn delete(&self, key: &str) -> Result<(), BackupError> {
        for k in [keys::manifest_key(key), key.to_string()] {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(k)
                .send()
                .await
                .map_err(storage)?;
        }
        Ok(())
    }

    /// Starts a multipart upload; `metadata` becomes the object's user metadata.
    pub async fn begin(
        &self,
        key: &str,
        metadata: HashMap<String, String>,
    ) -> Result<Multipart, BackupError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .set_metadata(Some(metadata))
            .send()
            .await
            .map_err(storage)?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| BackupError::Storage("the server returned no upload id".into()))?
            .to_string();
        Ok(Multipart {
            key: key.to_string(),
            upload_id,
            parts: Vec::new(),
        })
    }

    pub async fn upload_part(&self, mp: &mut Multipart, data: Bytes) -> Result<(), BackupError> {
        let number = mp.parts.len() as i32 + 1;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&mp.key)
            .upload_id(&mp.upload_id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(storage)?;
        mp.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    pub async fn complete(&self, mp: Multipart) -> Result<(), BackupError> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&mp.key)
            .upload_id(&mp.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(mp.parts))
                    .build(),
            )
            .send()
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Abandons an upload so that none of its parts stay behind (best effort: logged on failure).
    pub async fn abort(&self, mp: Multipart) {
        if let Err(e) = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&mp.key)
            .upload_id(&mp.upload_id)
            .send()
            .await
        {
            tracing::warn!(key = %mp.key, error = %DisplayErrorContext(&e), "backup: aborting the upload failed");
        }
    }
}

/// `2024-05-01T12:00:00Z` from seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = crate::cdc::event::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}
