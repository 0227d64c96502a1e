//! The filter tree shared by every backend: conditions joined by AND, OR and NOT.

use serde_json::Value;

/// Deepest nesting of and/or/not a filter may have. Deeper trees are refused before any SQL is
/// built, so a hostile `or(or(or(…)))` cannot exhaust the stack or the planner.
pub const MAX_FILTER_DEPTH: usize = 16;

/// Comparison operators of both condition dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Is,
    In,
    Contains,
    ContainedBy,
}

impl Op {
    /// Parses an operator name as callers send it, in the JSON dialect (`containedBy`) and in
    /// PostgREST's (`cd`).
    pub fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "eq" | "=" => Op::Eq,
            "neq" | "ne" | "!=" | "<>" => Op::Neq,
            "gt" | ">" => Op::Gt,
            "gte" | ">=" => Op::Gte,
            "lt" | "<" => Op::Lt,
            "lte" | "<=" => Op::Lte,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "is" => Op::Is,
            "in" => Op::In,
            "contains" | "cs" => Op::Contains,
            "containedBy" | "containedby" | "contained_by" | "cd" => Op::ContainedBy,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Like => "like",
            Op::Ilike => "ilike",
            Op::Is => "is",
            Op::In => "in",
            Op::Contains => "contains",
            Op::ContainedBy => "containedBy",
        }
    }
}

/// A filter operand.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// A JSON value from a structured body; JSON columns receive its serialisation.
    Json(Value),
    /// Text from a PostgREST-style string, handed to the column type's input function as is.
    Text(String),
    /// A list (for `in`), each item a text operand.
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cond {
        column: String,
        op: Op,
        value: FilterValue,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    /// Nesting depth: a single condition is 1.
    pub fn depth(&self) -> usize {
        match self {
            Filter::Cond { .. } => 1,
            Filter::And(v) | Filter::Or(v) => 1 + v.iter().map(Filter::depth).max().unwrap_or(0),
            Filter::Not(f) => 1 + f.depth(),
        }
    }

    /// Calls `f` with every column the filter names.
    pub fn for_each_column(&self, f: &mut impl FnMut(&str)) {
        match self {
            Filter::Cond { column, .. } => f(column),
            Filter::And(v) | Filter::Or(v) => v.iter().for_each(|x| x.for_each_column(f)),
            Filter::Not(x) => x.for_each_column(f),
        }
    }

    /// Rewrites every column name (used for camelCase → snake_case).
    pub fn map_columns(&mut self, f: &impl Fn(&str) -> String) {
        match self {
            Filter::Cond { column, .. } => *column = f(column),
            Filter::And(v) | Filter::Or(v) => v.iter_mut().for_each(|x| x.map_columns(f)),
            Filter::Not(x) => x.map_columns(f),
        }
    }

    /// Joins filters with AND, flattening a single one.
    pub fn all(mut filters: Vec<Filter>) -> Option<Filter> {
        match filters.len() {
            0 => None,
            1 => filters.pop(),
            _ => Some(Filter::And(filters)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting() {
        let c = Filter::Cond {
            column: "a".into(),
            op: Op::Eq,
            value: FilterValue::Text("1".into()),
        };
        assert_eq!(c.depth(), 1);
        let t = Filter::Or(vec![Filter::Not(Box::new(c.clone())), c]);
        assert_eq!(t.depth(), 3);
    }

    #[test]
    fn operator_names_of_both_dialects_parse() {
        assert_eq!(Op::parse("cd"), Some(Op::ContainedBy));
        assert_eq!(Op::parse("containedBy"), Some(Op::ContainedBy));
        assert_eq!(Op::parse("cs"), Some(Op::Contains));
        assert_eq!(Op::parse("drop table"), None);
    }
}
