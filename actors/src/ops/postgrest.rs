//! Parser for PostgREST-style filter strings, as carried by the `or` and `not` conditions of the
//! gateway dialect and by `/rest/v1` query parameters:
//!
//! ```text
//! status.eq.active,value.gt.10
//! (status.eq.active,and(value.gte.1,value.lte.5),name.not.ilike.*bot*)
//! id.in.(1,2,"three, with a comma")
//! ```
//!
//! The parser is a small recursive descent over top-level commas that honours parentheses and
//! double-quoted values. It produces a [`Filter`] tree; it never produces SQL. Operators are
//! whitelisted; unknown ones are errors, never silently turned into `eq`. Its splitting and
//! unquoting are shared with the `/rest/v1` parameters that use the same lexical rules (`select`,
//! `order`, `columns`, `on_conflict`).

use super::filter::{Filter, FilterValue, Op, MAX_FILTER_DEPTH};
use super::OpError;

/// Parses a comma-separated list of conditions (optionally wrapped in one pair of parentheses)
/// and returns them unjoined; callers join them with OR or AND.
pub fn parse_list(input: &str) -> Result<Vec<Filter>, OpError> {
    parse_list_at(input, 1)
}

/// Parses one condition `column.[not.]op.value`, or a group `[not.]and(…)` / `[not.]or(…)`.
pub fn parse_item(input: &str) -> Result<Filter, OpError> {
    parse_item_at(input.trim(), 1)
}

/// Parses `[not.]op.value` against a column the caller already named.
pub fn parse_op_value(column: &str, input: &str) -> Result<Filter, OpError> {
    let (negated, rest) = match input.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, input),
    };
    let (op_name, value) = rest
        .split_once('.')
        .ok_or_else(|| invalid(format!("expected op.value, got {input:?}")))?;
    let op = Op::parse(op_name).ok_or_else(|| invalid(format!("unknown operator {op_name:?}")))?;
    let cond = Filter::Cond {
        column: column.to_string(),
        op,
        value: operand(op, value)?,
    };
    Ok(if negated {
        Filter::Not(Box::new(cond))
    } else {
        cond
    })
}

fn invalid(msg: String) -> OpError {
    OpError::InvalidFilter(msg)
}

fn parse_list_at(input: &str, depth: usize) -> Result<Vec<Filter>, OpError> {
    if depth > MAX_FILTER_DEPTH {
        return Err(OpError::FilterTooDeep {
            max: MAX_FILTER_DEPTH,
        });
    }
    let mut s = input.trim();
    if s.starts_with('(') && s.ends_with(')') && closing_paren(s, 0) == Some(s.len() - 1) {
        s = &s[1..s.len() - 1];
    }
    if s.trim().is_empty() {
        return Err(invalid("empty condition list".into()));
    }
    split_top_level(s)?
        .into_iter()
        .map(|item| parse_item_at(item.trim(), depth))
        .collect()
}

fn parse_item_at(item: &str, depth: usize) -> Result<Filter, OpError> {
    if depth > MAX_FILTER_DEPTH {
        return Err(OpError::FilterTooDeep {
            max: MAX_FILTER_DEPTH,
        });
    }
    let (negated, body) = match item.strip_prefix("not.") {
        Some(rest) if rest.starts_with("and(") || rest.starts_with("or(") => (true, rest),
        _ => (false, item),
    };
    for (prefix, is_and) in [("and(", true), ("or(", false)] {
        if let Some(inner) = body.strip_prefix(prefix) {
            let inner = inner
                .strip_suffix(')')
                .ok_or_else(|| invalid(format!("unbalanced parentheses in {item:?}")))?;
            let parts = parse_list_at(inner, depth + 1)?;
            let group = if is_and {
                Filter::And(parts)
            } else {
                Filter::Or(parts)
            };
            return Ok(if negated {
                Filter::Not(Box::new(group))
            } else {
                group
            });
        }
    }
    let (column, rest) = item
        .split_once('.')
        .ok_or_else(|| invalid(format!("expected column.op.value, got {item:?}")))?;
    if column.is_empty() {
        return Err(invalid(format!("missing column in {item:?}")));
    }
    parse_op_value(column, rest)
}

/// Builds the operand for `op` from the raw text after `op.`.
fn operand(op: Op, raw: &str) -> Result<FilterValue, OpError> {
    match op {
        Op::In => {
            let inner = raw
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| invalid(format!("in expects (a,b,…), got {raw:?}")))?;
            if inner.trim().is_empty() {
                return Ok(FilterValue::List(Vec::new()));
            }
            let items = split_top_level(inner)?
                .into_iter()
                .map(|v| unquote(v.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(FilterValue::List(items))
        }
        Op::Like | Op::Ilike => Ok(FilterValue::Text(unquote(raw)?.replace('*', "%"))),
        _ => Ok(FilterValue::Text(unquote(raw)?)),
    }
}

/// Removes one pair of surrounding double quotes, resolving `\"` and `\\`.
pub fn unquote(v: &str) -> Result<String, OpError> {
    let Some(inner) = v.strip_prefix('"') else {
        return Ok(v.to_string());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| invalid(format!("unterminated quoted value {v:?}")))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Index of the parenthesis closing the one at `open`.
fn closing_paren(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i < open) {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits on commas that are outside parentheses and quotes.
pub fn split_top_level(s: &str) -> Result<Vec<&str>, OpError> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => {
                depth += 1;
                if depth > MAX_FILTER_DEPTH * 2 {
                    return Err(OpError::FilterTooDeep {
                        max: MAX_FILTER_DEPTH,
                    });
                }
            }
            ')' if !quoted => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| invalid(format!("unbalanced parentheses in {s:?}")))?;
            }
            ',' if !quoted && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted || depth != 0 {
        return Err(invalid(format!(
            "unbalanced quotes or parentheses in {s:?}"
        )));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(c: &str, op: Op, v: &str) -> Filter {
        Filter::Cond {
            column: c.into(),
            op,
            value: FilterValue::Text(v.into()),
        }
    }

    #[test]
    fn flat_list_parses_in_order() {
        let f = parse_list("status.eq.active,value.gt.10").unwrap();
        assert_eq!(
            f,
            vec![
                cond("status", Op::Eq, "active"),
                cond("value", Op::Gt, "10")
            ]
        );
    }

    #[test]
    fn nested_groups_and_negation_parse() {
        let f = parse_list("(a.eq.1,and(b.gte.2,not.or(c.is.null,d.lt.3)),e.not.eq.x)").unwrap();
        assert_eq!(f.len(), 3);
        match &f[1] {
            Filter::And(parts) => {
                assert_eq!(parts[0], cond("b", Op::Gte, "2"));
                assert!(
                    matches!(&parts[1], Filter::Not(inner) if matches!(**inner, Filter::Or(_)))
                );
            }
            other => panic!("expected and, got {other:?}"),
        }
        assert_eq!(f[2], Filter::Not(Box::new(cond("e", Op::Eq, "x"))));
    }

    #[test]
    fn in_lists_keep_quoted_commas() {
        let f = parse_item(r#"id.in.(1,"two, three",4)"#).unwrap();
        assert_eq!(
            f,
            Filter::Cond {
                column: "id".into(),
                op: Op::In,
                value: FilterValue::List(vec!["1".into(), "two, three".into(), "4".into()]),
            }
        );
    }

    #[test]
    fn like_stars_become_percent() {
        assert_eq!(
            parse_item("n.ilike.*bot*").unwrap(),
            cond("n", Op::Ilike, "%bot%")
        );
    }

    #[test]
    fn unknown_operators_are_errors() {
        assert!(matches!(
            parse_item("a.regex.x"),
            Err(OpError::InvalidFilter(_))
        ));
        assert!(parse_item("nodots").is_err());
        assert!(parse_list("a.eq.1,(b.eq.2").is_err());
        assert!(parse_list("").is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut s = String::from("a.eq.1");
        for _ in 0..40 {
            s = format!("or({s})");
        }
        assert!(matches!(parse_list(&s), Err(OpError::FilterTooDeep { .. })));
        let mut s = String::from("a.eq.1");
        for _ in 0..5000 {
            s = format!("or({s})");
        }
        assert!(matches!(parse_list(&s), Err(OpError::FilterTooDeep { .. })));
    }

    #[test]
    fn sql_in_values_stays_a_value() {
        let f = parse_item("name.eq.x'); drop table users; --").unwrap();
        assert_eq!(f, cond("name", Op::Eq, "x'); drop table users; --"));
    }
}
