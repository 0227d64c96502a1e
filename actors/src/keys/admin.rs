//! Writes to the key tables, shared by the admin API and the CLI. Every change is made in one
//! transaction that also sends `NOTIFY athena_api_keys`, so every instance reloads its keys once
//! the change is committed. Records are rendered by PostgreSQL as JSON, secrets never included.

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient};

use super::{secret, Right, CHANNEL};

/// What went wrong, in terms the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    UnknownClient(String),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field,
        message: message.into(),
    }
}

/// A key to create.
#[derive(Debug, Default)]
pub struct NewKey {
    pub name: String,
    pub description: Option<String>,
    pub client_name: Option<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub rights: Vec<String>,
    pub rate_limit_per_minute: Option<i32>,
}

/// Changes to a key; `None` keeps a field, `Some(None)` clears a nullable one.
#[derive(Debug, Default)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub client_name: Option<Option<String>>,
    pub expires_at: Option<Option<String>>,
    pub is_active: Option<bool>,
    pub rights: Option<Vec<String>>,
    pub rate_limit_per_minute: Option<Option<i32>>,
}

const RECORD: &str = "\
SELECT json_build_object('id', k.api_keys_id, 'public_id', k.public_id, 'name', k.name, \
  'description', k.description, 'client_name', k.client_name, 'expires_at', k.expires_at, \
  'is_active', k.is_active, 'rate_limit_per_minute', k.rate_limit_per_minute, \
  'last_used_at', k.last_used_at, 'created_at', k.created_at, 'updated_at', k.updated_at, \
  'revoked_at', k.revoked_at, \
  'rights', coalesce((SELECT json_agg(r.name ORDER BY r.name) FROM api_key_right_grants g \
     JOIN api_key_rights r ON r.id = g.right_id WHERE g.api_key_id = k.id), '[]'::json))::text \
FROM api_keys k";

fn json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn query_json(
    db: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Value>, AdminError> {
    Ok(db
        .query(sql, params)
        .await?
        .into_iter()
        .map(|r| json(r.get(0)))
        .collect())
}

/// Parses and normalises right names (`public.users.read` is stored as `users.read`).
fn normalise_rights(names: &[String]) -> Result<Vec<String>, AdminError> {
    let mut out: Vec<String> = names
        .iter()
        .map(|n| Right::parse(n).map(|r| r.to_string()))
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("rights", e))?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn check_name(name: &str) -> Result<(), AdminError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(invalid("name", "must be 1 to 200 characters"));
    }
    Ok(())
}

fn check_rate(rate: Option<i32>) -> Result<(), AdminError> {
    match rate {
        Some(n) if n <= 0 => Err(invalid(
            "rate_limit_per_minute",
            "must be a positive integer",
        )),
        _ => Ok(()),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, the shape RFC 3339 allows (PostgreSQL alone would
/// also take words such as `tomorrow`).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't' | b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Validates a timestamp: RFC 3339, and a real instant to PostgreSQL (no 30 February).
async fn check_time(db: &impl GenericClient, at: &str) -> Result<(), AdminError> {
    if !is_rfc3339(at) {
        return Err(invalid(
            "expires_at",
            format!("{at:?} is not an RFC 3339 timestamp such as 2027-01-31T00:00:00Z"),
        ));
    }
    db.query_one("SELECT $1::text::timestamptz", &[&at])
        .await
        .map(|_| ())
        .map_err(|_| invalid("expires_at", format!("{at:?} is not an RFC 3339 timestamp")))
}

async fn check_client(db: &impl GenericClient, client: &str) -> Result<(), AdminError> {
    let found = db
        .query_opt(
            "SELECT 1 FROM athena_clients WHERE lower(client_name) = lower($1) AND deleted_at IS NULL",
            &[&client],
        )
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(AdminError::UnknownClient(format!(
            "no client named {client:?}"
        ))),
    }
}

async fn grant(db: &impl GenericClient, key_id: i64, rights: &[String]) -> Result<(), AdminError> {
    db.execute(
        "DELETE FROM api_key_right_grants WHERE api_key_id = $1",
        &[&key_id],
    )
    .await?;
    db.execute(
        "INSERT INTO api_key_rights (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
        &[&rights],
    )
    .await?;
    db.execute(
        "INSERT INTO api_key_right_grants (api_key_id, right_id) \
         SELECT $1, id FROM api_key_rights WHERE name = ANY($2)",
        &[&key_id, &rights],
    )
    .await?;
    Ok(())
}

async fn notify(db: &impl GenericClient) -> Result<(), AdminError> {
    db.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
    Ok(())
}

/// Creates a key; returns the full key (shown once) and its record.
pub async fn create_key(db: &mut Client, new: NewKey) -> Result<(String, Value), AdminError> {
    check_name(&new.name)?;
    check_rate(new.rate_limit_per_minute)?;
    let rights = normalise_rights(&new.rights)?;
    if let Some(at) = &new.expires_at {
        check_time(db, at).await?;
    }
    if let Some(c) = &new.client_name {
        check_client(db, c).await?;
    }
    let minted = secret::mint();
    let tx = db.transaction().await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO api_keys (public_id, name, description, client_name, key_salt, key_hash, \
             expires_at, rate_limit_per_minute) \
             VALUES ($1, $2, $3, lower($4), $5, $6, $7::text::timestamptz, $8) RETURNING id",
            &[
                &minted.public_id,
                &new.name.trim(),
                &new.description,
                &new.client_name,
                &minted.salt,
                &minted.hash_hex,
                &new.expires_at,
                &new.rate_limit_per_minute,
            ],
        )
        .await?
        .get(0);
    grant(&tx, id, &rights).await?;
    let record = query_json(&tx, &format!("{RECORD} WHERE k.id = $1"), &[&id]).await?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok((
        minted.full,
        record.into_iter().next().unwrap_or(Value::Null),
    ))
}

/// Every key, newest first; revoked keys only when asked for.
pub async fn list_keys(db: &Client, include_revoked: bool) -> Result<Vec<Value>, AdminError> {
    query_json(
        db,
        &format!("{RECORD} WHERE $1 OR k.revoked_at IS NULL ORDER BY k.id DESC"),
        &[&include_revoked],
    )
    .await
}

fn unknown_key(id: &str) -> AdminError {
    AdminError::NotFound(format!("no API key with id {id}"))
}

/// Looks a live key up by its UUID; the UUID must be well formed.
async fn key_row_id(db: &impl GenericClient, id: &str) -> Result<i64, AdminError> {
    let uuid = uuid::Uuid::parse_str(id.trim())
        .map_err(|_| invalid("id", format!("{id:?} is not a UUID")))?;
    db.query_opt(
        "SELECT id FROM api_keys WHERE api_keys_id = $1::text::uuid AND revoked_at IS NULL FOR UPDATE",
        &[&uuid.to_string()],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| unknown_key(id))
}

/// Applies a patch to a live key and returns its record.
pub async fn update_key(db: &mut Client, id: &str, patch: KeyPatch) -> Result<Value, AdminError> {
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    check_rate(patch.rate_limit_per_minute.flatten())?;
    let rights = patch.rights.as_deref().map(normalise_rights).transpose()?;
    if let Some(Some(at)) = &patch.expires_at {
        check_time(db, at).await?;
    }
    if let Some(Some(c)) = &patch.client_name {
        check_client(db, c).await?;
    }
    let tx = db.transaction().await?;
    let row_id = key_row_id(&tx, id).await?;
    tx.execute(
        "UPDATE api_keys SET name = coalesce($2, name), \
         description = CASE WHEN $3 THEN $4 ELSE description END, \
         client_name = CASE WHEN $5 THEN lower($6) ELSE client_name END, \
         expires_at = CASE WHEN $7 THEN $8::text::timestamptz ELSE expires_at END, \
         is_active = coalesce($9, is_active), \
         rate_limit_per_minute = CASE WHEN $10 THEN $11 ELSE rate_limit_per_minute END, \
         updated_at = now() WHERE id = $1",
        &[
            &row_id,
            &patch.name.as_deref().map(str::trim),
            &patch.description.is_some(),
            &patch.description.flatten(),
            &patch.client_name.is_some(),
            &patch.client_name.flatten(),
            &patch.expires_at.is_some(),
            &patch.expires_at.flatten(),
            &patch.is_active,
            &patch.rate_limit_per_minute.is_some(),
            &patch.rate_limit_per_minute.flatten(),
        ],
    )
    .await?;
    if let Some(rights) = rights {
        grant(&tx, row_id, &rights).await?;
    }
    let record = query_json(&tx, &format!("{RECORD} WHERE k.id = $1"), &[&row_id]).await?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok(record.into_iter().next().unwrap_or(Value::Null))
}

/// Revokes a key for good: it stops working on every instance and leaves the listing, while its
/// row stays for the audit trail.
pub async fn revoke_key(db: &mut Client, id: &str) -> Result<Value, AdminError> {
    let tx = db.transaction().await?;
    let row_id = key_row_id(&tx, id).await?;
    tx.execute(
        "UPDATE api_keys SET revoked_at = now(), is_active = false, updated_at = now() WHERE id = $1",
        &[&row_id],
    )
    .await?;
    let record = query_json(&tx, &format!("{RECORD} WHERE k.id = $1"), &[&row_id]).await?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok(record.into_iter().next().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::is_rfc3339;

    #[test]
    fn only_rfc3339_timestamps_pass() {
        for good in [
            "2027-01-31T00:00:00Z",
            "2027-01-31T00:00:00.123456Z",
            "2027-01-31t00:00:00+02:00",
            "2027-01-31 00:00:00-05:30",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "tomorrow",
            "2027-01-31",
            "2027-01-31T00:00:00",
            "2027-01-31T00:00:00.Z",
            "2027-01-31T00:00:00+0200",
            "2027-01-31T00:00:00Z; DROP TABLE x",
            "",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
