//! Query builders: `select`, `insert`, `update` and `delete` on a table. Each builds the gateway's
//! JSON body (DESIGN §3): the Athena backend sends it as is, and the PostgreSQL backend parses it
//! with the server's own dialect into an [`Operation`](athena_actors::ops::Operation), so both
//! backends validate and bind exactly as the server does.
//!
//! Table and column names and values are data here: nothing is ever pasted into SQL. Names are
//! checked against the live catalog where the statement is planned, and every value is bound.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{AthenaClient, QueryResult, SdkError};
use crate::dialect::Kind;

/// Ascending or descending order of one `order_by` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

/// Turns any serialisable value into JSON; a value that cannot be serialised becomes an error
/// when the query runs (never a panic, never a silently dropped filter).
fn to_json<V: Serialize>(v: V, errors: &mut Vec<String>, what: &str) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| {
        errors.push(format!("{what}: {e}"));
        Value::Null
    })
}

/// What every builder shares: the table, the conditions, the returned columns, and values that
/// could not be serialised.
#[derive(Debug, Clone)]
struct Common {
    table: String,
    schema: Option<String>,
    conditions: Vec<Value>,
    columns: Option<Vec<String>>,
    errors: Vec<String>,
}

impl Common {
    fn new(table: &str) -> Self {
        Common {
            table: table.to_string(),
            schema: None,
            conditions: Vec::new(),
            columns: None,
            errors: Vec::new(),
        }
    }

    fn cond<V: Serialize>(&mut self, op: &str, column: &str, value: V) {
        let value = to_json(value, &mut self.errors, column);
        self.conditions
            .push(json!({"operator": op, "column": column, "value": value}));
    }

    fn body(&self) -> Map<String, Value> {
        let mut b = Map::new();
        b.insert("table_name".into(), json!(self.table));
        if let Some(s) = &self.schema {
            b.insert("schema".into(), json!(s));
        }
        if !self.conditions.is_empty() {
            b.insert("conditions".into(), Value::Array(self.conditions.clone()));
        }
        if let Some(c) = &self.columns {
            b.insert("columns".into(), json!(c));
        }
        b
    }

    fn check(&self) -> Result<(), SdkError> {
        match self.errors.first() {
            None => Ok(()),
            Some(e) => Err(SdkError::Config(format!("a value cannot be sent: {e}"))),
        }
    }
}

/// The filter methods every builder has, each adding one condition (all must hold).
macro_rules! filters {
    ($t:ty) => {
        impl $t {
            /// The table's schema (default: the database's search path, usually `public`).
            pub fn schema(mut self, schema: &str) -> Self {
                self.common.schema = Some(schema.to_string());
                self
            }
            /// The columns to return (default: all).
            pub fn columns<I, S>(mut self, columns: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                self.common.columns = Some(columns.into_iter().map(Into::into).collect());
                self
            }
            /// `column = value`.
            pub fn where_eq<V: Serialize>(mut self, column: &str, value: V) -> Self {
                self.common.cond("eq", column, value);
                self
            }
            /// `column <> value`.
            pub fn where_neq<V: Serialize>(mut self, column: &str, value: V) -> Self {
                self.common.cond("neq", column, value);
                self
            }
            /// `column > value`.
            pub fn where_gt<V: Serialize>(mut self, column: &str, value: V) -> Self {
                self.common.cond("gt", column, value);
                self
            }
            /// `column >= value`.
            pub fn where_gte<V: Serialize>(mut self, column: &str, value: V) -> Self {
                self.common.cond("gte", column, value);
                self
            }
            /// `column < value`.
            pub fn where_lt<V: Serialize>(mut self, column: &str, value: V) -> Self {
                self.common.cond("lt", column, value);
                self
            }
            /// `column <= value`.
            pub fn where_lte<V: Serialize>(mut self, column: &str, value: V) -> Self {
                self.common.cond("lte", column, value);
                self
            }
            /// `column LIKE pattern` (`%` and `_` wildcards).
            pub fn where_like(mut self, column: &str, pattern: &str) -> Self {
                self.common.cond("like", column, pattern);
                self
            }
            /// `column ILIKE pattern` (case-insensitive).
            pub fn where_ilike(mut self, column: &str, pattern: &str) -> Self {
                self.common.cond("ilike", column, pattern);
                self
            }
            /// `column IS NULL`.
            pub fn where_null(mut self, column: &str) -> Self {
                self.common.cond("is", column, Value::Null);
                self
            }
            /// `column IS NOT NULL`.
            pub fn where_not_null(mut self, column: &str) -> Self {
                self.common.cond("is", column, "not_null");
                self
            }
            /// `column` is one of `values`.
            pub fn where_in<I, V>(mut self, column: &str, values: I) -> Self
            where
                I: IntoIterator<Item = V>,
                V: Serialize,
            {
                let list: Vec<V> = values.into_iter().collect();
                self.common.cond("in", column, list);
                self
            }
            /// An array or jsonb `column` contains `value`.
            pub fn where_contains<V: Serialize>(mut self, column: &str, value: V) -> Self {
                self.common.cond("contains", column, value);
                self
            }
            /// Any condition of the gateway dialect, e.g.
            /// `json!({"operator": "or", "value": "status.eq.active,age.gt.40"})`.
            pub fn where_condition(mut self, condition: Value) -> Self {
                self.common.conditions.push(condition);
                self
            }
        }
    };
}

/// `client.select("users")`: a fetch.
#[derive(Debug, Clone)]
pub struct SelectBuilder {
    client: AthenaClient,
    common: Common,
    order: Vec<Value>,
    limit: Option<u64>,
    offset: Option<u64>,
    count: bool,
}

filters!(SelectBuilder);

impl SelectBuilder {
    pub(super) fn new(client: AthenaClient, table: &str) -> Self {
        SelectBuilder {
            client,
            common: Common::new(table),
            order: Vec::new(),
            limit: None,
            offset: None,
            count: false,
        }
    }

    /// Orders by `column`; call again for further columns.
    pub fn order_by(mut self, column: &str, direction: OrderDirection) -> Self {
        self.order.push(json!({
            "column": column,
            "ascending": direction == OrderDirection::Asc,
        }));
        self
    }

    /// At most `n` rows (default 100, at most 1000: the gateway's `default_limit` and
    /// `max_limit`).
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skips the first `n` rows.
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(n);
        self
    }

    /// Also returns the number of rows matching the filter ([`QueryResult::count`]).
    pub fn count_exact(mut self) -> Self {
        self.count = true;
        self
    }

    /// The gateway body this builder sends to `/gateway/fetch`.
    pub fn body(&self) -> Map<String, Value> {
        let mut b = self.common.body();
        if !self.order.is_empty() {
            b.insert("order_by".into(), Value::Array(self.order.clone()));
        }
        if let Some(n) = self.limit {
            b.insert("limit".into(), json!(n));
        }
        if let Some(n) = self.offset {
            b.insert("offset".into(), json!(n));
        }
        if self.count {
            b.insert("count".into(), json!("exact"));
        }
        b
    }

    pub async fn execute(self) -> Result<QueryResult, SdkError> {
        self.common.check()?;
        self.client.run(Kind::Fetch, self.body()).await
    }
}

/// `client.insert("users")`: one row or many, optionally an upsert.
#[derive(Debug, Clone)]
pub struct InsertBuilder {
    client: AthenaClient,
    common: Common,
    payload: Option<Value>,
    on_conflict: Option<Vec<String>>,
    update_body: Option<Value>,
    ignore_duplicates: bool,
}

impl InsertBuilder {
    pub(super) fn new(client: AthenaClient, table: &str) -> Self {
        InsertBuilder {
            client,
            common: Common::new(table),
            payload: None,
            on_conflict: None,
            update_body: None,
            ignore_duplicates: false,
        }
    }

    /// The table's schema (default: the search path, usually `public`).
    pub fn schema(mut self, schema: &str) -> Self {
        self.common.schema = Some(schema.to_string());
        self
    }

    /// The columns of the inserted rows to return (default: all).
    pub fn columns<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.common.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// The row (an object) or rows (an array of objects) to insert.
    pub fn payload<V: Serialize>(mut self, rows: V) -> Self {
        self.payload = Some(to_json(rows, &mut self.common.errors, "payload"));
        self
    }

    /// Upsert: on a conflict on these columns (the primary key when empty), update the row with
    /// the incoming values, or with [`InsertBuilder::update_on_conflict`] when given.
    pub fn on_conflict<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.on_conflict = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// What a conflicting row is updated with.
    pub fn update_on_conflict<V: Serialize>(mut self, set: V) -> Self {
        self.update_body = Some(to_json(set, &mut self.common.errors, "update_on_conflict"));
        self
    }

    /// Skip rows that conflict on the [`on_conflict`](InsertBuilder::on_conflict) columns (the
    /// primary key when none are named) instead of failing.
    pub fn ignore_duplicates(mut self) -> Self {
        self.ignore_duplicates = true;
        self
    }

    /// The gateway body this builder sends to `/gateway/insert`.
    pub fn body(&self) -> Map<String, Value> {
        let mut b = self.common.body();
        if let Some(p) = &self.payload {
            b.insert("insert_body".into(), p.clone());
        }
        if let Some(c) = &self.on_conflict {
            b.insert("on_conflict".into(), json!(c));
        }
        if let Some(u) = &self.update_body {
            b.insert("update_body".into(), u.clone());
        }
        if self.ignore_duplicates {
            b.insert("ignore_duplicates".into(), json!(true));
        }
        b
    }

    pub async fn execute(self) -> Result<QueryResult, SdkError> {
        self.common.check()?;
        self.client.run(Kind::Insert, self.body()).await
    }
}

/// `client.update("users")`: sets columns on the rows matching the conditions. Without a
/// condition it is refused (`missing_filter`), never run on the whole table.
#[derive(Debug, Clone)]
pub struct UpdateBuilder {
    client: AthenaClient,
    common: Common,
    set: Option<Value>,
}

filters!(UpdateBuilder);

impl UpdateBuilder {
    pub(super) fn new(client: AthenaClient, table: &str) -> Self {
        UpdateBuilder {
            client,
            common: Common::new(table),
            set: None,
        }
    }

    /// The columns to set and their values (an object).
    pub fn payload<V: Serialize>(mut self, set: V) -> Self {
        self.set = Some(to_json(set, &mut self.common.errors, "payload"));
        self
    }

    /// The gateway body this builder sends to `/gateway/update`.
    pub fn body(&self) -> Map<String, Value> {
        let mut b = self.common.body();
        if let Some(s) = &self.set {
            b.insert("update_body".into(), s.clone());
        }
        b
    }

    pub async fn execute(self) -> Result<QueryResult, SdkError> {
        self.common.check()?;
        self.client.run(Kind::Update, self.body()).await
    }
}

/// `client.delete("users")`: removes the rows matching the conditions or the primary key given
/// with [`DeleteBuilder::resource_id`]. With neither it is refused (`missing_filter`).
#[derive(Debug, Clone)]
pub struct DeleteBuilder {
    client: AthenaClient,
    common: Common,
    resource_id: Option<Value>,
}

filters!(DeleteBuilder);

impl DeleteBuilder {
    pub(super) fn new(client: AthenaClient, table: &str) -> Self {
        DeleteBuilder {
            client,
            common: Common::new(table),
            resource_id: None,
        }
    }

    /// The primary key of the row to delete (an object of column → value for a composite key).
    pub fn resource_id<V: Serialize>(mut self, id: V) -> Self {
        self.resource_id = Some(to_json(id, &mut self.common.errors, "resource_id"));
        self
    }

    /// The gateway body this builder sends to `/gateway/delete`.
    pub fn body(&self) -> Map<String, Value> {
        let mut b = self.common.body();
        if let Some(id) = &self.resource_id {
            b.insert("resource_id".into(), id.clone());
        }
        b
    }

    pub async fn execute(self) -> Result<QueryResult, SdkError> {
        self.common.check()?;
        self.client.run(Kind::Delete, self.body()).await
    }
}
