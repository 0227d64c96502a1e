//! The rights catalog and the enforcement settings (global and per client): the admin API's
//! writes, each in a transaction that announces itself with `NOTIFY athena_api_keys`.

use serde_json::{json, Value};
use tokio_postgres::{Client, GenericClient};

use super::admin::AdminError;
use super::{Right, CHANNEL};

const RIGHT: &str = "\
SELECT json_build_object('id', r.id, 'name', r.name, 'description', r.description, \
  'created_at', r.created_at, 'updated_at', r.updated_at, \
  'granted_to', (SELECT count(*) FROM api_key_right_grants g WHERE g.right_id = r.id))::text \
FROM api_key_rights r";

const GLOBAL: &str = "SELECT json_build_object('enforce_api_keys', enforce_api_keys, \
  'updated_at', updated_at)::text FROM api_key_config";

const CLIENT: &str = "SELECT json_build_object('client_name', client_name, \
  'enforce_api_keys', enforce_api_keys, 'updated_at', updated_at)::text FROM api_key_client_config";

fn first(rows: Vec<tokio_postgres::Row>) -> Option<Value> {
    rows.into_iter()
        .next()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap_or(Value::Null))
}

fn all(rows: Vec<tokio_postgres::Row>) -> Vec<Value> {
    rows.into_iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap_or(Value::Null))
        .collect()
}

async fn notify(db: &impl GenericClient) -> Result<(), AdminError> {
    db.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
    Ok(())
}

fn right_name(name: &str) -> Result<String, AdminError> {
    Right::parse(name)
        .map(|r| r.to_string())
        .map_err(|message| AdminError::Invalid {
            field: "name",
            message,
        })
}

fn conflict(e: tokio_postgres::Error, what: &str) -> AdminError {
    match e.code() {
        Some(c) if c.code() == "23505" => AdminError::Conflict(format!("{what} already exists")),
        _ => AdminError::Db(e),
    }
}

/// A right is named in a path by its numeric id or by its name.
const BY_IDENT: &str = "WHERE (r.id::text = $1 OR r.name = $1)";

pub async fn list_rights(db: &Client) -> Result<Vec<Value>, AdminError> {
    Ok(all(db
        .query(&format!("{RIGHT} ORDER BY r.name"), &[])
        .await?))
}

pub async fn create_right(
    db: &Client,
    name: &str,
    description: Option<&str>,
) -> Result<Value, AdminError> {
    let name = right_name(name)?;
    let id: i64 = db
        .query_one(
            "INSERT INTO api_key_rights (name, description) VALUES ($1, $2) RETURNING id",
            &[&name, &description],
        )
        .await
        .map_err(|e| conflict(e, &format!("the right {name:?}")))?
        .get(0);
    let rows = db
        .query(&format!("{RIGHT} WHERE r.id = $1"), &[&id])
        .await?;
    Ok(first(rows).unwrap_or(Value::Null))
}

fn unknown_right(ident: &str) -> AdminError {
    AdminError::NotFound(format!("no right {ident:?}"))
}

/// Renames a right or changes its description; keys holding it hold the new name.
pub async fn update_right(
    db: &mut Client,
    ident: &str,
    name: Option<&str>,
    description: Option<Option<&str>>,
) -> Result<Value, AdminError> {
    let name = name.map(right_name).transpose()?;
    let tx = db.transaction().await?;
    // The row is locked until the commit: a delete racing this update waits for it, or wins
    // before it, in which case the right is unknown (never an answer about no right).
    let id: i64 = tx
        .query_opt(
            &format!("SELECT r.id FROM api_key_rights r {BY_IDENT} FOR UPDATE"),
            &[&ident],
        )
        .await?
        .ok_or_else(|| unknown_right(ident))?
        .get(0);
    let changed = tx
        .execute(
            "UPDATE api_key_rights SET name = coalesce($2, name), \
             description = CASE WHEN $3 THEN $4 ELSE description END, updated_at = now() WHERE id = $1",
            &[&id, &name, &description.is_some(), &description.flatten()],
        )
        .await
        .map_err(|e| conflict(e, "a right with that name"))?;
    if changed != 1 {
        return Err(unknown_right(ident));
    }
    let rows = tx
        .query(&format!("{RIGHT} WHERE r.id = $1"), &[&id])
        .await?;
    let right = first(rows).ok_or_else(|| unknown_right(ident))?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok(right)
}

/// Deletes a right and every grant of it.
pub async fn delete_right(db: &mut Client, ident: &str) -> Result<Value, AdminError> {
    let tx = db.transaction().await?;
    let rows = tx
        .query(
            &format!("DELETE FROM api_key_rights r {BY_IDENT} RETURNING r.id, r.name"),
            &[&ident],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(unknown_right(ident));
    };
    let out = json!({"id": row.get::<_, i64>(0), "name": row.get::<_, String>(1)});
    notify(&tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// The global setting (`null` until a server has seeded it) and every client override.
pub async fn get_config(db: &Client) -> Result<Value, AdminError> {
    let global = first(db.query(GLOBAL, &[]).await?).unwrap_or(Value::Null);
    Ok(json!({"global": global, "clients": list_client_config(db).await?}))
}

pub async fn set_global(db: &mut Client, enforce: bool) -> Result<Value, AdminError> {
    let tx = db.transaction().await?;
    tx.execute(
        "INSERT INTO api_key_config (id, enforce_api_keys) VALUES (true, $1) \
         ON CONFLICT (id) DO UPDATE SET enforce_api_keys = $1, updated_at = now()",
        &[&enforce],
    )
    .await?;
    let global = first(tx.query(GLOBAL, &[]).await?).unwrap_or(Value::Null);
    notify(&tx).await?;
    tx.commit().await?;
    Ok(global)
}

pub async fn list_client_config(db: &Client) -> Result<Vec<Value>, AdminError> {
    Ok(all(db
        .query(&format!("{CLIENT} ORDER BY client_name"), &[])
        .await?))
}

/// Sets a client's override; the client must exist in the catalog.
pub async fn set_client(db: &mut Client, client: &str, enforce: bool) -> Result<Value, AdminError> {
    let tx = db.transaction().await?;
    let name: String = tx
        .query_opt(
            "SELECT lower(client_name) FROM athena_clients \
             WHERE lower(client_name) = lower($1) AND deleted_at IS NULL",
            &[&client],
        )
        .await?
        .ok_or_else(|| AdminError::UnknownClient(format!("no client named {client:?}")))?
        .get(0);
    tx.execute(
        "INSERT INTO api_key_client_config (client_name, enforce_api_keys) VALUES ($1, $2) \
         ON CONFLICT (client_name) DO UPDATE SET enforce_api_keys = $2, updated_at = now()",
        &[&name, &enforce],
    )
    .await?;
    let out = first(
        tx.query(&format!("{CLIENT} WHERE client_name = $1"), &[&name])
            .await?,
    )
    .unwrap_or(Value::Null);
    notify(&tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// Removes a client's override, so the global setting applies to it again.
pub async fn delete_client(db: &mut Client, client: &str) -> Result<String, AdminError> {
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            "DELETE FROM api_key_client_config WHERE lower(client_name) = lower($1) RETURNING client_name",
            &[&client],
        )
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("client {client:?} has no override")))?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok(row.get(0))
}
