//! [`QueryResult`]: the rows an operation returned, as JSON and as any deserialisable type.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::SdkError;

/// What a query returned: its rows (JSON objects, as the gateway's `data.rows`), the total asked
/// for with `count_exact`, and the rows a raw statement changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub rows: Vec<Value>,
    /// Rows matching the filter, when [`count_exact`](super::SelectBuilder::count_exact) asked.
    pub count: Option<i64>,
    /// Rows a raw statement without result rows changed (`UPDATE …` through `execute_sql`).
    pub rows_affected: Option<u64>,
}

impl QueryResult {
    /// The rows deserialised into `T` (any `serde::Deserialize` type: a struct with the row's
    /// column names as fields, a map, a tuple of one column …).
    pub fn rows<T: DeserializeOwned>(&self) -> Result<Vec<T>, SdkError> {
        self.rows
            .iter()
            .map(|r| serde_json::from_value(r.clone()).map_err(|e| SdkError::Decode(e.to_string())))
            .collect()
    }

    /// The first row deserialised into `T`, if any.
    pub fn first<T: DeserializeOwned>(&self) -> Result<Option<T>, SdkError> {
        self.rows
            .first()
            .map(|r| serde_json::from_value(r.clone()).map_err(|e| SdkError::Decode(e.to_string())))
            .transpose()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
