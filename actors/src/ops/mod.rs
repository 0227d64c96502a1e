//! The backend-neutral operation model: what a caller asked for, already parsed and shaped, but
//! not yet checked against any schema. Translators (`backend::postgres::sql`) validate identifiers
//! against the live catalog and turn an [`Operation`] into a statement with bound values.
//!
//! Nothing here touches a database and nothing here builds SQL.

mod error;
pub mod eval;
pub mod filter;
pub mod postgrest;

pub use error::{DbFailure, OpError};
pub use filter::{Filter, FilterValue, Op, MAX_FILTER_DEPTH};

use serde_json::{Map, Value};

/// A table as the caller named it: an optional schema and a name, both unvalidated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    pub schema: Option<String>,
    pub name: String,
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Which columns to return.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Columns {
    #[default]
    All,
    /// The named columns, each under its key; `*` (with no key) stands for every column.
    List(Vec<Selected>),
}

/// One column of a selection and the key it takes in each result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub column: String,
    /// The row key; the column's own name when `None`. Keys are data, never SQL: translators
    /// bind them as values.
    pub key: Option<String>,
}

impl From<&str> for Selected {
    fn from(column: &str) -> Self {
        Selected::plain(column)
    }
}

impl From<String> for Selected {
    fn from(column: String) -> Self {
        Selected::plain(column)
    }
}

impl Selected {
    /// The column under its own name.
    pub fn plain(column: impl Into<String>) -> Self {
        Selected {
            column: column.into(),
            key: None,
        }
    }

    /// The column under the key `key`.
    pub fn renamed(column: impl Into<String>, key: impl Into<String>) -> Self {
        Selected {
            column: column.into(),
            key: Some(key.into()),
        }
    }

    /// The key the column takes in a result row.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.column)
    }
}

/// One ORDER BY term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub column: String,
    pub descending: bool,
    /// `Some(true)` = NULLS FIRST, `Some(false)` = NULLS LAST, `None` = the database default.
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    pub table: TableRef,
    pub columns: Columns,
    pub filter: Option<Filter>,
    pub order: Vec<Order>,
    pub limit: u64,
    pub offset: u64,
    /// Also return the total number of matching rows (`count: "exact"`).
    pub count: bool,
    /// Where to resume: a cursor a previous answer returned as `data.next_page` (backends that page
    /// by cursor; the others refuse it).
    pub page: Option<String>,
}

/// What an insert does when a row conflicts with an existing one.
#[derive(Debug, Clone, PartialEq)]
pub enum OnConflict {
    /// Plain insert: a conflict is an error.
    Error,
    /// Upsert on `target` (the primary key when empty): set `set` when given, otherwise every
    /// inserted column to the incoming value.
    Update {
        target: Vec<String>,
        set: Option<Map<String, Value>>,
    },
    /// `ON CONFLICT DO NOTHING` on `target` (any conflict when empty).
    Ignore { target: Vec<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub table: TableRef,
    /// At least one row; rows may name different columns.
    pub rows: Vec<Map<String, Value>>,
    /// The columns every row is inserted with (a row lacking one gets its default, or NULL with
    /// `default_to_null`); keys of a row outside this list are ignored. Empty: every column some
    /// row names.
    pub columns: Vec<String>,
    pub on_conflict: OnConflict,
    pub returning: Columns,
    /// A column that some rows omit gets NULL (true) or its default (false).
    pub default_to_null: bool,
    /// The order of the returned rows (PostgREST's `order` on a write); empty: as written.
    pub order: Vec<Order>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub table: TableRef,
    pub set: Map<String, Value>,
    /// Required: an update never runs without a filter.
    pub filter: Filter,
    pub returning: Columns,
    /// The order of the returned rows; empty: as written.
    pub order: Vec<Order>,
}

/// How a delete selects its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteTarget {
    /// The primary key's value (an object of column → value for a composite key).
    ResourceId(Value),
    Filter(Filter),
    Both(Value, Filter),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    pub table: TableRef,
    pub target: DeleteTarget,
    pub returning: Columns,
    /// The order of the returned rows; empty: as deleted.
    pub order: Vec<Order>,
}

/// Raw SQL with positional parameters (`$1`, `$2`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub query: String,
    pub params: Vec<Value>,
}

/// A call of a database function with named arguments, shaped like a fetch of its result.
#[derive(Debug, Clone, PartialEq)]
pub struct Rpc {
    /// The function as the caller named it (schema and name), unvalidated.
    pub function: TableRef,
    /// Argument name → value; bound, never spliced.
    pub args: Map<String, Value>,
    pub columns: Columns,
    pub filter: Option<Filter>,
    pub order: Vec<Order>,
    pub limit: u64,
    pub offset: u64,
    pub count: bool,
}

/// What a function returns, which decides how PostgREST-shaped answers present its rows (every
/// other edge answers rows whatever the function returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// One value of a base type: one row `{function_name: value}`.
    Scalar,
    /// A set of values of a base type: one row `{function_name: value}` per value.
    ScalarSet,
    /// One row of a composite type.
    Row,
    /// A set of rows (`SETOF composite`, `RETURNS TABLE`).
    RowSet,
    /// Nothing (`void`): one row `{function_name: null}`.
    Void,
}

/// The result of a function call: its rows and what the function returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcOutput {
    pub output: OpOutput,
    pub returns: Returns,
}

/// Everything a client's handle can be asked to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Fetch(Fetch),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Sql(Sql),
    Rpc(Rpc),
    ListTables,
    DescribeTable(TableRef),
}

impl Operation {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Fetch(_) => "fetch",
            Operation::Insert(_) => "insert",
            Operation::Update(_) => "update",
            Operation::Delete(_) => "delete",
            Operation::Sql(_) => "sql",
            Operation::Rpc(_) => "rpc",
            Operation::ListTables => "list_tables",
            Operation::DescribeTable(_) => "describe_table",
        }
    }
}

/// The result of an operation. `rows_json` is a JSON array rendered by the database; edges splice
/// it into their response without parsing it unless they must transform it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OpOutput {
    pub rows_json: String,
    pub row_count: u64,
    /// Total matching rows, when the operation asked for it.
    pub total: Option<i64>,
    /// Rows changed by a statement that returns none (raw SQL).
    pub rows_affected: Option<u64>,
    /// The cursor of the next page, when a backend pages by cursor and more rows may follow.
    pub next_page: Option<String>,
}

/// How a JSON value's type reads in an error message ("a string", "an array", …).
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
