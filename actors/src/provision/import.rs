//! What a deployment of athena_rs 2.0.2 kept in its logging database, copied into Athena's: the
//! API keys (their salted hashes: Athena checks secrets the same way, so every `ath_…` key keeps
//! working), the rights granted to them, the global and per-client enforcement settings, and the
//! live clients of its catalog. The old database is only read.
//!
//! 2.0.2's tables are read as JSON rows, so a column that one of its versions lacked is simply
//! absent; the grants table is joined through its own foreign keys. Everything is written in one
//! transaction, and what exists already (a key's public id, a right, a client's name) is kept:
//! running the import again adds nothing.
//!
//! Rights change meaning on the way: in 2.0.2 `gateway.read|write|delete` granted that action
//! on every table and `gateway.*` everything; in Athena `gateway` is an ordinary table name. They
//! become `*.read|write|delete` and `*` (which, unlike 2.0.2's `gateway.*`, grants no
//! management right).

use serde_json::{Map, Value};
use tokio_postgres::Client;

use super::{sql_err, ProvisionError};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub keys_imported: usize,
    /// Keys whose public id Athena already holds.
    pub keys_present: usize,
    pub grants: usize,
    pub clients_imported: usize,
    pub clients_present: usize,
    /// The global enforcement setting carried over, if 2.0.2 had one.
    pub enforce_api_keys: Option<bool>,
    pub client_overrides: usize,
    /// One line per thing worth telling: renamed rights, rows skipped and why.
    pub notes: Vec<String>,
}

/// Quotes an identifier read from the catalog.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every row of `table` as a JSON object; `None` when the table does not exist.
async fn rows(
    old: &Client,
    table: &str,
) -> Result<Option<Vec<Map<String, Value>>>, ProvisionError> {
    let exists: bool = old
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(sql_err)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let sql = format!("SELECT row_to_json(t)::text FROM {} t", ident(table));
    let out = old.query(&sql, &[]).await.map_err(sql_err)?;
    Ok(Some(
        out.iter()
            .filter_map(|r| serde_json::from_str::<Value>(r.get::<_, &str>(0)).ok())
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
    ))
}

fn text(row: &Map<String, Value>, key: &str) -> Option<String> {
    match row.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flag(row: &Map<String, Value>, key: &str) -> Option<bool> {
    row.get(key).and_then(Value::as_bool)
}

/// A 2.0.2 right in Athena's terms.
pub fn translate_right(right: &str) -> String {
    match right {
        "gateway.*" => "*".into(),
        "gateway.read" | "gateway.write" | "gateway.delete" => {
            format!("*.{}", &right["gateway.".len()..])
        }
        other => other.to_string(),
    }
}

/// (public id, right) pairs of the grants, joined through the grants table's foreign keys (or
/// `api_key_id` / `right_id` onto `id` when it declares none).
async fn grants(old: &Client) -> Result<Option<Vec<(String, String)>>, ProvisionError> {
    let exists: bool = old
        .query_one(
            "SELECT to_regclass('api_key_right_grants') IS NOT NULL \
             AND to_regclass('api_keys') IS NOT NULL AND to_regclass('api_key_rights') IS NOT NULL",
            &[],
        )
        .await
        .map_err(sql_err)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let fks = old
        .query(
            "SELECT a.attname::text, c.confrelid::regclass::text, f.attname::text \
             FROM pg_constraint c \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
             JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1] \
             WHERE c.conrelid = 'api_key_right_grants'::regclass AND c.contype = 'f'",
            &[],
        )
        .await
        .map_err(sql_err)?;
    let find = |table: &str, column: &str, referenced: &str| {
        fks.iter()
            .find(|r| r.get::<_, &str>(1).trim_matches('"') == table)
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(2)))
            .unwrap_or_else(|| (column.to_string(), referenced.to_string()))
    };
    let (kcol, kref) = find("api_keys", "api_key_id", "id");
    let (rcol, rref) = find("api_key_rights", "right_id", "id");
    let sql = format!(
        "SELECT k.public_id::text, r.name::text FROM api_key_right_grants g \
         JOIN api_keys k ON k.{} = g.{} JOIN api_key_rights r ON r.{} = g.{}",
        ident(&kref),
        ident(&kcol),
        ident(&rref),
        ident(&rcol)
    );
    let out = old.query(&sql, &[]).await.map_err(sql_err)?;
    Ok(Some(out.iter().map(|r| (r.get(0), r.get(1))).collect()))
}

/// Copies what `old` (an athena_rs 2.0.2 logging database) holds into `new` (Athena's, migrated).
pub async fn import_2_0_2(old: &Client, new: &mut Client) -> Result<ImportReport, ProvisionError> {
    let mut report = ImportReport::default();
    let keys = rows(old, "api_keys").await?;
    let grants = grants(old).await?.unwrap_or_default();
    let global = rows(old, "api_key_config").await?.unwrap_or_default();
    let per_client = rows(old, "api_key_client_config")
        .await?
        .unwrap_or_default();
    let clients = rows(old, "athena_clients").await?;
    if keys.is_none() && clients.is_none() {
        return Err(ProvisionError::Sql(
            "the old database has neither api_keys nor athena_clients: it is not athena_rs 2.0.2's logging database".into(),
        ));
    }
    let mut renamed: Vec<String> = Vec::new();
    let tx = new.transaction().await.map_err(sql_err)?;
    for k in keys.unwrap_or_default() {
        let (Some(public_id), Some(salt), Some(hash)) = (
            text(&k, "public_id"),
            text(&k, "key_salt"),
            text(&k, "key_hash"),
        ) else {
            report.notes.push(format!(
                "a key without public_id, key_salt or key_hash was skipped ({})",
                text(&k, "name").unwrap_or_default()
            ));
            continue;
        };
        let name = text(&k, "name").unwrap_or_else(|| public_id.clone());
        let client = text(&k, "client_name").map(|c| c.to_ascii_lowercase());
        let expires = text(&k, "expires_at");
        let active = flag(&k, "is_active").unwrap_or(true);
        let inserted = tx
            .query_opt(
                "INSERT INTO api_keys (public_id, name, description, client_name, key_salt, key_hash, \
                 is_active, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::timestamptz) \
                 ON CONFLICT (public_id) DO NOTHING RETURNING id",
                &[
                    &public_id,
                    &name,
                    &text(&k, "description"),
                    &client,
                    &salt,
                    &hash,
                    &active,
                    &expires,
                ],
            )
            .await
            .map_err(sql_err)?;
        let Some(row) = inserted else {
            report.keys_present += 1;
            continue;
        };
        report.keys_imported += 1;
        let id: i64 = row.get(0);
        let mut rights: Vec<String> = Vec::new();
        for (_, right) in grants.iter().filter(|(p, _)| *p == public_id) {
            let r = translate_right(right);
            if r != *right && !renamed.contains(right) {
                renamed.push(right.clone());
                report.notes.push(format!(
                    "the right {right} (every table in athena_rs 2.0.2) is granted as {r}"
                ));
            }
            if !rights.contains(&r) {
                rights.push(r);
            }
        }
        for r in &rights {
            tx.execute(
                "INSERT INTO api_key_rights (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                &[r],
            )
            .await
            .map_err(sql_err)?;
        }
        report.grants += tx
            .execute(
                "INSERT INTO api_key_right_grants (api_key_id, right_id) \
                 SELECT $1, id FROM api_key_rights WHERE name = ANY($2) ON CONFLICT DO NOTHING",
                &[&id, &rights],
            )
            .await
            .map_err(sql_err)? as usize;
    }
    if let Some(enforce) = global.first().and_then(|g| flag(g, "enforce_api_keys")) {
        tx.execute(
            "INSERT INTO api_key_config (id, enforce_api_keys) VALUES (true, $1) \
             ON CONFLICT (id) DO UPDATE SET enforce_api_keys = EXCLUDED.enforce_api_keys, updated_at = now()",
            &[&enforce],
        )
        .await
        .map_err(sql_err)?;
        report.enforce_api_keys = Some(enforce);
    }
    for c in &per_client {
        let (Some(name), Some(enforce)) = (text(c, "client_name"), flag(c, "enforce_api_keys"))
        else {
            continue;
        };
        tx.execute(
            "INSERT INTO api_key_client_config (client_name, enforce_api_keys) VALUES ($1, $2) \
             ON CONFLICT (client_name) DO UPDATE SET enforce_api_keys = EXCLUDED.enforce_api_keys, updated_at = now()",
            &[&name.to_ascii_lowercase(), &enforce],
        )
        .await
        .map_err(sql_err)?;
        report.client_overrides += 1;
    }
    for c in clients.unwrap_or_default() {
        if c.get("deleted_at").is_some_and(|d| !d.is_null()) {
            continue;
        }
        let Some(raw) = text(&c, "client_name") else {
            continue;
        };
        let name = raw.to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-');
        let (uri, env) = (text(&c, "pg_uri"), text(&c, "pg_uri_env_var"));
        if !valid {
            report.notes.push(format!(
                "the client {raw:?} was skipped: client names use lower-case letters, digits, '_' and '-'"
            ));
            continue;
        }
        if uri.is_none() && env.is_none() {
            report.notes.push(format!(
                "the client {name} was skipped: it names neither pg_uri nor pg_uri_env_var (a client of config.yaml: Athena reads it from the config)"
            ));
            continue;
        }
        let n = tx
            .execute(
                "INSERT INTO athena_clients (client_name, description, pg_uri, pg_uri_env_var, source, \
                 is_active, is_frozen, metadata) \
                 SELECT $1, $2, $3, $4, 'admin', $5, $6, jsonb_build_object('imported_from', 'athena_rs 2.0.2') \
                 WHERE NOT EXISTS (SELECT 1 FROM athena_clients \
                                   WHERE lower(client_name) = $1 AND deleted_at IS NULL)",
                &[
                    &name,
                    &text(&c, "description"),
                    &uri,
                    &env,
                    &flag(&c, "is_active").unwrap_or(true),
                    &flag(&c, "is_frozen").unwrap_or(false),
                ],
            )
            .await
            .map_err(sql_err)?;
        if n == 1 {
            report.clients_imported += 1;
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&crate::registry::listener::CHANNEL, &name],
            )
            .await
            .map_err(sql_err)?;
        } else {
            report.clients_present += 1;
        }
    }
    tx.commit().await.map_err(sql_err)?;
    Ok(report)
}
