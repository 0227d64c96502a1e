//! The bucket: an S3 client (aws-sdk-s3 on rustls) and the operations backups need. Listing
//! follows continuation tokens to the end; objects are read as streams, never whole.
//!
//! A dump carries its size and SHA-256 in its own user metadata ([`META_SIZE`], [`META_SHA256`]).
//! Metadata is fixed when an upload starts, before the hash is known, so once the upload completed
//! the object is copied onto itself with the full metadata ([`Store::set_metadata`]: CopyObject
//! up to 5 GiB, a multipart copy above). A backup is complete when its manifest
//! (`<key>.manifest.json`: size, SHA-256, client, label…) exists. The manifest is written only
//! after the upload and the metadata copy succeeded, so a listing shows a dump without one as
//! incomplete, and a restore refuses it. Listings read the manifests, not each object's metadata
//! (one request per backup either way, and the manifest keeps labels S3 metadata cannot carry).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use aws_sdk_s3::Client;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::keys::{self, DUMP_SUFFIX, MANIFEST_SUFFIX};
use super::{BackupError, S3Spec};

/// The user metadata key of a dump's size in bytes (decimal).
pub const META_SIZE: &str = "athena-size";
/// The user metadata key of a dump's SHA-256 (lowercase hex).
pub const META_SHA256: &str = "athena-sha256";

/// The largest object one CopyObject may copy (S3's limit); larger dumps get their metadata
/// through a multipart copy.
pub const COPY_OBJECT_MAX: u64 = 5 * 1024 * 1024 * 1024;
const _: () = assert!(COPY_PART_SIZE >= 5 * 1024 * 1024 && COPY_PART_SIZE <= COPY_OBJECT_MAX);
/// The part size of a multipart copy (grown when 10,000 parts would not cover the object).
pub const COPY_PART_SIZE: u64 = 512 * 1024 * 1024;
/// S3's most parts in one upload.
const MAX_PARTS: u64 = 10_000;
/// S3's largest part.
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

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

/// When a metadata copy turns multipart, and its part size. Always [`COPY_OBJECT_MAX`] and
/// [`COPY_PART_SIZE`] in the server; tests lower them to reach the multipart path with small
/// objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyLimits {
    /// Objects up to this size are copied with one CopyObject.
    pub single_max: u64,
    /// Part size of a multipart copy (at least 5 MiB, S3's smallest part but the last).
    pub part_size: u64,
}

impl Default for CopyLimits {
    fn default() -> Self {
        CopyLimits {
            single_max: COPY_OBJECT_MAX,
            part_size: COPY_PART_SIZE,
        }
    }
}

/// The inclusive byte ranges a multipart copy of `size` bytes copies, in order: parts of
/// `part_size` (grown so that no more than 10,000 are needed, at most 5 GiB), the last shorter.
pub fn copy_ranges(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    let part = part_size
        .max(size.div_ceil(MAX_PARTS))
        .clamp(1, MAX_PART_SIZE);
    (0..size)
        .step_by(part as usize)
        .map(|start| (start, (start + part).min(size) - 1))
        .collect()
}

/// A dump's size and SHA-256 as its own metadata records them: `Ok(None)` when it carries
/// neither (a dump written before dumps carried them), an error when it carries one without the
/// other or an unreadable value.
pub fn recorded(metadata: &HashMap<String, String>) -> Result<Option<(u64, String)>, String> {
    let get = |k: &str| {
        metadata
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.trim())
    };
    match (get(META_SIZE), get(META_SHA256)) {
        (None, None) => Ok(None),
        (Some(size), Some(sha)) => {
            let size = size
                .parse::<u64>()
                .map_err(|_| format!("its metadata has an unreadable size {size:?}"))?;
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("its metadata has an unreadable SHA-256 {sha:?}"));
            }
            Ok(Some((size, sha.to_ascii_lowercase())))
        }
        (Some(_), None) => Err(format!("its metadata has a size but no {META_SHA256}")),
        (None, Some(_)) => Err(format!("its metadata has a SHA-256 but no {META_SIZE}")),
    }
}

/// A dump opened for reading.
pub struct Opened {
    pub body: ByteStream,
    pub length: Option<u64>,
    /// Its user metadata (keys as S3 sends them: lowercase).
    pub metadata: HashMap<String, String>,
}

/// The bucket and the prefix backups live under.
pub struct Store {
    client: Client,
    pub bucket: String,
    /// Normalised (no leading or trailing `/`).
    pub prefix: String,
    /// When setting a dump's metadata needs a multipart copy.
    copy: CopyLimits,
}

fn storage<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> BackupError {
    BackupError::Storage(DisplayErrorContext(&e).to_string())
}

impl Store {
    pub fn new(spec: &S3Spec) -> Store {
        use aws_smithy_http_client::tls;
        let mut trust = tls::TrustStore::default();
        if let Some(pem) = &spec.ca_pem {
            trust.add_pem_certificate(pem.clone());
        }
        let context = tls::TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .expect("a trust store alone always builds");
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .tls_context(context)
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
            copy: CopyLimits::default(),
        }
    }

    /// The same store with other copy limits (tests reach the multipart copy with small objects).
    pub fn with_copy_limits(mut self, copy: CopyLimits) -> Store {
        self.copy = copy;
        self
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
                    created_at: parsed.created.map(crate::civil::rfc3339_secs),
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
        self.open_with_metadata(key)
            .await
            .map(|o| (o.body, o.length))
    }

    /// The object's bytes as a stream, its length and its user metadata.
    pub async fn open_with_metadata(&self, key: &str) -> Result<Opened, BackupError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Opened {
                length: o.content_length.map(|l| l.max(0) as u64),
                metadata: o.metadata.unwrap_or_default(),
                body: o.body,
            }),
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

    /// Completes an upload; answers the object's ETag (when the server sent one).
    pub async fn complete(&self, mp: Multipart) -> Result<Option<String>, BackupError> {
        let out = self
            .client
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
        Ok(out.e_tag().map(str::to_string))
    }

    /// Replaces the user metadata of the object at `key` (`size` bytes, last seen with `etag`)
    /// by copying it onto itself: one CopyObject up to [`CopyLimits::single_max`], a multipart
    /// copy above (aborted on failure, leaving the object as it was). With an ETag every copy
    /// names it, so an object replaced meanwhile is refused rather than given the wrong metadata.
    pub async fn set_metadata(
        &self,
        key: &str,
        size: u64,
        etag: Option<&str>,
        metadata: HashMap<String, String>,
    ) -> Result<(), BackupError> {
        let source = copy_source(&self.bucket, key);
        if size <= self.copy.single_max {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(key)
                .copy_source(source)
                .set_copy_source_if_match(etag.map(str::to_string))
                .metadata_directive(MetadataDirective::Replace)
                .content_type("application/octet-stream")
                .set_metadata(Some(metadata))
                .send()
                .await
                .map_err(storage)?;
            return Ok(());
        }
        let mp = self.begin(key, metadata).await?;
        let copied = self.copy_parts(&mp, &source, size, etag).await;
        match copied {
            Ok(parts) => {
                let mp = Multipart { parts, ..mp };
                self.complete(mp).await.map(|_| ())
            }
            Err(e) => {
                self.abort(mp).await;
                Err(e)
            }
        }
    }

    /// The parts of a multipart copy of `source` into `mp`, a few at a time, in order.
    async fn copy_parts(
        &self,
        mp: &Multipart,
        source: &str,
        size: u64,
        etag: Option<&str>,
    ) -> Result<Vec<CompletedPart>, BackupError> {
        use futures_util::{StreamExt, TryStreamExt};
        let ranges = copy_ranges(size, self.copy.part_size);
        futures_util::stream::iter(ranges.into_iter().enumerate())
            .map(|(i, (start, end))| async move {
                let number = i as i32 + 1;
                let out = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(&mp.key)
                    .upload_id(&mp.upload_id)
                    .part_number(number)
                    .copy_source(source)
                    .copy_source_range(format!("bytes={start}-{end}"))
                    .set_copy_source_if_match(etag.map(str::to_string))
                    .send()
                    .await
                    .map_err(storage)?;
                Ok::<_, BackupError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(
                            out.copy_part_result()
                                .and_then(|r| r.e_tag())
                                .map(str::to_string),
                        )
                        .build(),
                )
            })
            .buffered(4)
            .try_collect()
            .await
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

/// `bucket/key` as CopyObject's `x-amz-copy-source` wants it: percent-encoded, slashes kept.
fn copy_source(bucket: &str, key: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!("{bucket}/{}", utf8_percent_encode(key, KEEP))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn copy_ranges_cover_the_object_in_parts_and_a_shorter_last() {
        assert_eq!(
            copy_ranges(12 * MIB, 5 * MIB),
            vec![
                (0, 5 * MIB - 1),
                (5 * MIB, 10 * MIB - 1),
                (10 * MIB, 12 * MIB - 1)
            ]
        );
        assert_eq!(copy_ranges(10 * MIB, 5 * MIB).len(), 2);
        assert!(copy_ranges(0, 5 * MIB).is_empty());
    }

    #[test]
    fn copy_ranges_grow_the_part_size_to_stay_within_10000_parts() {
        let size = 6 * 1024 * 1024 * MIB; // 6 TiB: more than S3 stores, still well formed
        let ranges = copy_ranges(size, COPY_PART_SIZE);
        assert!(ranges.len() as u64 <= MAX_PARTS, "{}", ranges.len());
        assert_eq!(ranges.last().unwrap().1, size - 1);
        // A 6 GiB dump (beyond one CopyObject) with the default part size: 12 parts of 512 MiB.
        assert_eq!(copy_ranges(6 * 1024 * MIB, COPY_PART_SIZE).len(), 12);
    }

    #[test]
    fn recorded_metadata_needs_both_size_and_sha256() {
        let sha = "ab".repeat(32);
        let meta = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(recorded(&meta(&[("athena-client", "x")])), Ok(None));
        assert_eq!(
            recorded(&meta(&[(META_SIZE, "42"), (META_SHA256, &sha)])),
            Ok(Some((42, sha.clone())))
        );
        assert!(recorded(&meta(&[(META_SIZE, "42")])).is_err());
        assert!(recorded(&meta(&[(META_SHA256, &sha)])).is_err());
        assert!(recorded(&meta(&[(META_SIZE, "-1"), (META_SHA256, &sha)])).is_err());
        assert!(recorded(&meta(&[(META_SIZE, "1"), (META_SHA256, "xyz")])).is_err());
    }

    #[test]
    fn a_copy_source_keeps_slashes_and_escapes_the_rest() {
        assert_eq!(
            copy_source("b", "backups/default/20240501T030000Z-ab_c.dump"),
            "b/backups/default/20240501T030000Z-ab_c.dump"
        );
        assert_eq!(copy_source("b", "a b/c+d"), "b/a%20b/c%2Bd");
    }
}
