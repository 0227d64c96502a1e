//! `/admin/backups*`: start a backup job (202 with its id), follow it, list the bucket's backups,
//! download one as a stream, delete one, and restore one into a client's database after verifying
//! it. Admin key only. The work happens in the BackupActor; listing and downloading read the
//! bucket directly. Keys are checked against the configured prefix before anything is read.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::backup::BackupError;
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::{auth, body, respond, AppState};

/// The longest label accepted.
const MAX_LABEL: usize = 200;

impl From<BackupError> for ApiError {
    /// The code is the one the backup actor reports (also in job reports), read against the
    /// table of codes; the edge adds only the hints.
    fn from(e: BackupError) -> Self {
        let code = Code::parse(e.code()).unwrap_or(Code::Internal);
        let hint = match e {
            BackupError::NotConfigured(_) => Some(
                "set backups.bucket and its credentials in the config, or ATHENA_BACKUP_S3_BUCKET and friends",
            ),
            BackupError::InvalidKey(_) => Some("GET /admin/backups lists the keys of backups"),
            BackupError::Unsupported(_) => Some("backups are taken of PostgreSQL clients"),
            BackupError::UnknownJob(_) => Some("jobs are kept in memory by the instance that ran them"),
            BackupError::Corrupt { .. } => Some("nothing was restored; choose another backup"),
            BackupError::Overloaded => {
                Some("backups.max_jobs jobs run at once; retry when one has finished")
            }
            _ => None,
        };
        let err = ApiError::new(code, e.to_string());
        match hint {
            Some(h) => err.hint(h),
            None => err,
        }
    }
}

fn required_client(body: &serde_json::Map<String, Value>) -> Result<String, ApiError> {
    let name = crate::dialect::opt_str(body, "client_name")?
        .ok_or_else(|| ApiError::new(Code::MissingField, "client_name is required"))?
        .trim()
        .to_string();
    if name.is_empty() {
        return Err(ApiError::new(
            Code::InvalidField,
            "client_name must not be empty",
        ));
    }
    Ok(name)
}

/// The `{key}` of the path, percent-decoded (callers may send its slashes as `%2F`).
fn path_key(req: &HttpRequest) -> Result<String, ApiError> {
    let raw = req.match_info().get("key").unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| ApiError::new(Code::InvalidBackupKey, "the key is not valid UTF-8"))
}

fn job_json(job: &athena_actors::backup::JobView) -> Value {
    serde_json::to_value(job).unwrap_or(Value::Null)
}

/// `POST /admin/backups {client_name, label?}` → 202 with the job.
pub async fn create(
    _admin: auth::Admin,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let backups = &state.actors.backups;
    backups.store()?;
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    let client = required_client(&body)?;
    let label = crate::dialect::opt_str(&body, "label")?.map(str::to_string);
    if let Some(l) = &label {
        if l.chars().count() > MAX_LABEL || l.chars().any(char::is_control) {
            return Err(ApiError::new(
                Code::InvalidField,
                format!("label has at most {MAX_LABEL} characters and no control characters"),
            ));
        }
    }
    let job = backups.start(&client, label).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/admin/backups/jobs/{}", job.id)))
        .content_type("application/json")
        .body(
            json!({
                "status": "success",
                "message": "Backup started",
                "data": {"job_id": job.id, "job": job_json(&job)},
            })
            .to_string(),
        ))
}

/// `GET /admin/backups/jobs/{id}`.
pub async fn job(
    _admin: auth::Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().get("id").unwrap_or_default();
    let job = state.actors.backups.job(id).await?;
    Ok(respond::data(
        &format!("Job {}", job.state),
        json!({"job": job_json(&job)}),
    ))
}

/// `GET /admin/backups[?client_name=]`: every backup, newest first.
pub async fn list(
    _admin: auth::Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.actors.backups.store()?;
    let query = body::query_map(&req)?;
    let client = query
        .get("client_name")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty());
    if let Some(c) = client {
        if !athena_actors::backup::keys::valid_client(c) {
            return Err(ApiError::new(
                Code::InvalidField,
                "client_name is lower-case letters, digits, '_' and '-'",
            ));
        }
    }
    let backups = state.actors.backups.list(client).await?;
    Ok(respond::data(
        &respond::counted(backups.len(), "backup"),
        json!({"backups": backups, "count": backups.len()}),
    ))
}

/// `GET /admin/backups/{key}/download`: the dump, streamed as S3 sends it.
pub async fn download(
    _admin: auth::Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = path_key(&req)?;
    let (body, len) = state.actors.backups.open(&key).await?;
    let stream = futures_util::stream::unfold(body, |mut b| async move {
        b.next().await.map(|chunk| {
            (
                chunk.map_err(|e| {
                    tracing::warn!(error = %e, "backup download: reading the object failed");
                    actix_web::error::ErrorBadGateway("the backup storage failed mid-download")
                }),
                b,
            )
        })
    });
    let name = key.rsplit('/').next().unwrap_or("backup.dump").to_string();
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ));
    Ok(match len {
        Some(n) => resp.no_chunking(n).streaming(stream),
        None => resp.streaming(stream),
    })
}

/// `DELETE /admin/backups/{key}`.
pub async fn delete(
    _admin: auth::Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = path_key(&req)?;
    state.actors.backups.delete(&key).await?;
    Ok(respond::data("Deleted 1 backup", json!({"key": key})))
}

/// `POST /admin/backups/{key}/restore {client_name}`: verified, then restored; answers when done.
pub async fn restore(
    _admin: auth::Admin,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = path_key(&req)?;
    let backups = &state.actors.backups;
    backups.check_key(&key)?;
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    let client = required_client(&body)?;
    let job = backups.restore(&key, &client).await?;
    // The database's contents changed wholesale: no cached fetch of it may be served again.
    state.actors.cache.invalidate_all().await;
    Ok(respond::data(
        &format!("Restored {key} into {}", job.client),
        json!({"job_id": job.id, "job": job_json(&job)}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backup_error_reports_a_declared_code() {
        let s = || "x".to_string();
        for e in [
            BackupError::NotConfigured(s()),
            BackupError::InvalidKey(s()),
            BackupError::UnknownClient(s()),
            BackupError::Unsupported(s()),
            BackupError::NotFound(s()),
            BackupError::UnknownJob(s()),
            BackupError::Incomplete(s()),
            BackupError::Corrupt {
                key: s(),
                reason: s(),
            },
            BackupError::ToolMissing(s()),
            BackupError::DumpFailed(s()),
            BackupError::RestoreFailed(s()),
            BackupError::Storage(s()),
            BackupError::Overloaded,
            BackupError::Interrupted,
            BackupError::Internal(s()),
        ] {
            assert!(Code::parse(e.code()).is_some(), "{:?}", e.code());
            assert_eq!(ApiError::from(e.clone()).code.as_str(), e.code());
        }
    }
}
