//! Evaluating a [`Filter`] on a row that is already in memory (a JSON object), for transforms
//! that filter rows in the gateway rather than in SQL. It follows SQL where it can: a comparison
//! with NULL is not true (only `is` matches null), numbers compare as numbers, text as text, and
//! `like`/`ilike` patterns use `%` and `_` (PostgREST's `*` too).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::filter::{Filter, FilterValue, Op};
use super::OpError;

/// Whether `row` passes `filter`. A column the row does not have is an error: a misspelt column
/// must not silently drop (or keep) every row.
pub fn matches(filter: &Filter, row: &Map<String, Value>) -> Result<bool, OpError> {
    Ok(match filter {
        Filter::And(list) => {
            for f in list {
                if !matches(f, row)? {
                    return Ok(false);
                }
            }
            true
        }
        Filter::Or(list) => {
            for f in list {
                if matches(f, row)? {
                    return Ok(true);
                }
            }
            false
        }
        Filter::Not(f) => !matches(f, row)?,
        Filter::Cond { column, op, value } => {
            let v = row.get(column).ok_or_else(|| OpError::UnknownColumn {
                table: "the row".into(),
                column: column.clone(),
            })?;
            cond(v, *op, value)?
        }
    })
}

fn cond(v: &Value, op: Op, operand: &FilterValue) -> Result<bool, OpError> {
    if op == Op::Is {
        let want = operand_text(operand)?.to_ascii_lowercase();
        return Ok(match want.as_str() {
            "null" | "unknown" => v.is_null(),
            "true" => v == &Value::Bool(true),
            "false" => v == &Value::Bool(false),
            other => {
                return Err(invalid(format!(
                    "is expects null, true or false, not {other:?}"
                )))
            }
        });
    }
    if v.is_null() {
        return Ok(false);
    }
    Ok(match op {
        Op::Eq => compare(v, operand)? == Some(Ordering::Equal),
        Op::Neq => matches!(compare(v, operand)?, Some(o) if o != Ordering::Equal),
        Op::Gt => compare(v, operand)? == Some(Ordering::Greater),
        Op::Gte => matches!(
            compare(v, operand)?,
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::Lt => compare(v, operand)? == Some(Ordering::Less),
        Op::Lte => matches!(compare(v, operand)?, Some(Ordering::Less | Ordering::Equal)),
        Op::Like | Op::Ilike => {
            let text = scalar_text(v);
            let pattern = operand_text(operand)?;
            match op {
                Op::Ilike => like(&text.to_lowercase(), &pattern.to_lowercase()),
                _ => like(&text, &pattern),
            }
        }
        Op::In => {
            let items: Vec<FilterValue> = match operand {
                FilterValue::List(l) => l.iter().cloned().map(FilterValue::Text).collect(),
                FilterValue::Json(Value::Array(a)) => {
                    a.iter().cloned().map(FilterValue::Json).collect()
                }
                _ => return Err(invalid("in expects a list".into())),
            };
            let mut any = false;
            for item in &items {
                any |= compare(v, item)? == Some(Ordering::Equal);
            }
            any
        }
        Op::Contains | Op::ContainedBy => {
            let other = match operand {
                FilterValue::Json(j) => j.clone(),
                FilterValue::Text(t) => parse_container(t),
                FilterValue::List(l) => {
                    Value::Array(l.iter().cloned().map(Value::String).collect())
                }
            };
            match op {
                Op::Contains => contains(v, &other),
                _ => contains(&other, v),
            }
        }
        // Answered before the null check above.
        Op::Is => false,
    })
}

fn invalid(msg: String) -> OpError {
    OpError::InvalidFilter(msg)
}

fn operand_text(operand: &FilterValue) -> Result<String, OpError> {
    match operand {
        FilterValue::Text(t) => Ok(t.clone()),
        FilterValue::Json(Value::String(s)) => Ok(s.clone()),
        FilterValue::Json(Value::Null) => Ok("null".into()),
        FilterValue::Json(j) => Ok(j.to_string()),
        FilterValue::List(_) => Err(invalid("a list is only valid with in".into())),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Orders the row's value against the operand: as numbers when both are numbers, as booleans,
/// otherwise as text. `None`: incomparable (never true).
fn compare(v: &Value, operand: &FilterValue) -> Result<Option<Ordering>, OpError> {
    let text = operand_text(operand)?;
    Ok(match v {
        Value::Number(n) => {
            let (Some(a), Ok(b)) = (n.as_f64(), text.trim().parse::<f64>()) else {
                return Ok(None);
            };
            a.partial_cmp(&b)
        }
        Value::Bool(b) => match text.to_ascii_lowercase().as_str() {
            "true" | "t" => Some(b.cmp(&true)),
            "false" | "f" => Some(b.cmp(&false)),
            _ => None,
        },
        Value::String(s) => Some(s.as_str().cmp(text.as_str())),
        Value::Null => None,
        other => {
            let parsed: Option<Value> = serde_json::from_str(&text).ok();
            parsed.map(|p| {
                if &p == other {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }
            })
        }
    })
}

/// `{a,b}` (a PostgreSQL array literal) or JSON.
fn parse_container(t: &str) -> Value {
    if let Ok(v) = serde_json::from_str(t) {
        return v;
    }
    let inner = t.trim().trim_start_matches('{').trim_end_matches('}');
    Value::Array(
        inner
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
            .collect(),
    )
}

/// JSON containment as PostgreSQL's `@>` reads it, with array items also compared as text so
/// `{1,2}` matches `[1, 2]`.
fn contains(big: &Value, small: &Value) -> bool {
    match (big, small) {
        (Value::Array(b), Value::Array(s)) => s.iter().all(|x| {
            b.iter()
                .any(|y| contains(y, x) || scalar_text(y) == scalar_text(x))
        }),
        (Value::Object(b), Value::Object(s)) => s
            .iter()
            .all(|(k, x)| b.get(k).is_some_and(|y| contains(y, x))),
        (a, b) => a == b,
    }
}

/// SQL LIKE: `%` (or `*`) any run, `_` one character, `\` escapes.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Iterative matching with backtracking to the last `%`: linear in practice, no recursion.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '%' || p[pi] == '*') {
            star = Some((pi, ti));
            pi += 1;
            continue;
        }
        let (lit, width) = match p.get(pi) {
            Some('\\') => (p.get(pi + 1).copied(), 2),
            Some('_') => (None, 1),
            Some(c) => (Some(*c), 1),
            None => (Some('\0'), 0),
        };
        if width > 0 && (lit.is_none() || lit == Some(t[ti])) {
            pi += width;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && (p[pi] == '%' || p[pi] == '*') {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row() -> Map<String, Value> {
        json!({"n": 10, "s": "Hello World", "b": true, "z": null, "tags": ["a", "b"], "doc": {"k": 1, "j": 2}})
            .as_object()
            .unwrap()
            .clone()
    }

    fn c(column: &str, op: &str, value: Value) -> Filter {
        Filter::Cond {
            column: column.into(),
            op: Op::parse(op).unwrap(),
            value: FilterValue::Json(value),
        }
    }

    #[test]
    fn comparisons_follow_sql() {
        let r = row();
        for (f, want) in [
            (c("n", "eq", json!(10)), true),
            (c("n", "eq", json!("10")), true),
            (c("n", "gt", json!(9.5)), true),
            (c("n", "lt", json!(9)), false),
            (c("n", "gte", json!(10)), true),
            (c("n", "neq", json!(10)), false),
            (c("s", "eq", json!("Hello World")), true),
            (c("s", "gt", json!("A")), true),
            (c("b", "eq", json!(true)), true),
            (c("z", "eq", json!(null)), false),
            (c("z", "neq", json!(1)), false),
            (c("z", "is", json!(null)), true),
            (c("b", "is", json!("true")), true),
            (c("s", "like", json!("Hello%")), true),
            (c("s", "like", json!("hello%")), false),
            (c("s", "ilike", json!("*WORLD")), true),
            (c("s", "like", json!("H_llo W%d")), true),
            (c("n", "in", json!([1, 10])), true),
            (c("n", "in", json!([1, 2])), false),
            (c("tags", "cs", json!(["a"])), true),
            (c("tags", "cd", json!(["a", "b", "c"])), true),
            (c("doc", "cs", json!({"k": 1})), true),
            (c("doc", "cs", json!({"k": 2})), false),
        ] {
            assert_eq!(matches(&f, &r).unwrap(), want, "{f:?}");
        }
    }

    #[test]
    fn groups_and_negation_combine() {
        let r = row();
        let f = Filter::Or(vec![
            c("n", "eq", json!(1)),
            Filter::And(vec![
                c("b", "eq", json!(true)),
                Filter::Not(Box::new(c("n", "eq", json!(2)))),
            ]),
        ]);
        assert!(matches(&f, &r).unwrap());
        assert!(!matches(&Filter::Not(Box::new(f)), &r).unwrap());
        let list = Filter::Cond {
            column: "s".into(),
            op: Op::In,
            value: FilterValue::List(vec!["x".into(), "Hello World".into()]),
        };
        assert!(matches(&list, &r).unwrap());
    }

    #[test]
    fn an_unknown_column_is_an_error() {
        assert!(matches(&c("nope", "eq", json!(1)), &row()).is_err());
    }

    #[test]
    fn like_handles_escapes_and_backtracking() {
        assert!(like("a%b", "a\\%b"));
        assert!(!like("axb", "a\\%b"));
        assert!(like("aaab", "%a%b"));
        assert!(like("", "%"));
        assert!(!like("abc", "ab"));
        assert!(like("abcabd", "%abd"));
    }
}
