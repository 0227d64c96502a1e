//! Bound values. Every value a caller sends reaches PostgreSQL as a parameter in *text* format, so
//! the server parses it with the input function of the column's real type: `"42"` binds to an
//! integer column, `"abc"` there fails with SQLSTATE 22P02 (a 400, never a 500), numerics keep
//! every digit, and enums, intervals, ranges or arrays need no type-specific code here.

use bytes::BytesMut;
use serde_json::Value;
use tokio_postgres::types::{to_sql_checked, Format, IsNull, ToSql, Type};

use super::schema::{ColumnInfo, ValueKind};
use crate::ops::OpError;

/// A parameter sent in text format; `None` is SQL NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextParam(pub Option<String>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// Converts a JSON value to the text input of `col`'s type; `None` is SQL NULL.
pub fn json_to_text(value: &Value, col: &ColumnInfo) -> Result<Option<String>, OpError> {
    match col.kind {
        ValueKind::Json => Ok(match value {
            Value::Null => None,
            other => Some(other.to_string()),
        }),
        ValueKind::Array { elem_json } => match value {
            Value::Null => Ok(None),
            Value::Array(items) => Ok(Some(array_literal(items, elem_json, col)?)),
            // A string is taken as an array literal such as `{1,2}`.
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(invalid(col, "expected an array")),
        },
        ValueKind::Scalar => scalar_text(value).ok_or_else(|| {
            invalid(
                col,
                &format!("expected a scalar for a column of type {}", col.data_type),
            )
        }),
    }
}

/// The text of a scalar JSON value; `Some(None)` for null, `None` for arrays and objects.
fn scalar_text(value: &Value) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::Bool(b) => Some(Some(b.to_string())),
        Value::Number(n) => Some(Some(n.to_string())),
        Value::String(s) => Some(Some(s.clone())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Builds a PostgreSQL array literal (`{"a","b c",NULL}`), nesting for multi-dimensional input.
pub fn array_literal(
    items: &[Value],
    elem_json: bool,
    col: &ColumnInfo,
) -> Result<String, OpError> {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) if !elem_json => out.push_str(&array_literal(inner, false, col)?),
            other if elem_json => quote_element(&mut out, &other.to_string()),
            other => match scalar_text(other) {
                Some(Some(s)) => quote_element(&mut out, &s),
                _ => return Err(invalid(col, "array elements must be scalars")),
            },
        }
    }
    out.push('}');
    Ok(out)
}

/// Builds an array literal from text items (PostgREST `in.(a,b)` lists).
pub fn text_array_literal(items: &[String]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote_element(&mut out, item);
    }
    out.push('}');
    out
}

fn quote_element(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn invalid(col: &ColumnInfo, reason: &str) -> OpError {
    OpError::InvalidValue {
        column: col.name.clone(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn col(kind: ValueKind) -> ColumnInfo {
        ColumnInfo {
            name: "c".into(),
            data_type: "x".into(),
            kind,
            nullable: true,
            default: None,
            primary_key: false,
        }
    }

    #[test]
    fn scalars_become_their_text() {
        let c = col(ValueKind::Scalar);
        assert_eq!(json_to_text(&json!(42), &c).unwrap().as_deref(), Some("42"));
        assert_eq!(
            json_to_text(&json!(true), &c).unwrap().as_deref(),
            Some("true")
        );
        assert_eq!(json_to_text(&json!(null), &c).unwrap(), None);
        assert!(json_to_text(&json!({"a": 1}), &c).is_err());
    }

    #[test]
    fn big_numbers_keep_every_digit() {
        let v: Value = serde_json::from_str("123456789012345678901234567890.000000001").unwrap();
        let c = col(ValueKind::Scalar);
        assert_eq!(
            json_to_text(&v, &c).unwrap().as_deref(),
            Some("123456789012345678901234567890.000000001")
        );
    }

    #[test]
    fn json_columns_take_the_serialisation() {
        let c = col(ValueKind::Json);
        assert_eq!(
            json_to_text(&json!("x"), &c).unwrap().as_deref(),
            Some("\"x\"")
        );
        assert_eq!(
            json_to_text(&json!({"a": [1]}), &c).unwrap().as_deref(),
            Some(r#"{"a":[1]}"#)
        );
    }

    #[test]
    fn arrays_are_quoted_and_nested() {
        let c = col(ValueKind::Array { elem_json: false });
        let v = json!([["a\"b", null], ["c\\d", "e,f"]]);
        assert_eq!(
            json_to_text(&v, &c).unwrap().as_deref(),
            Some(r#"{{"a\"b",NULL},{"c\\d","e,f"}}"#)
        );
        let j = col(ValueKind::Array { elem_json: true });
        assert_eq!(
            json_to_text(&json!([{"k": 1}]), &j).unwrap().as_deref(),
            Some(r#"{"{\"k\":1}"}"#)
        );
    }
}
