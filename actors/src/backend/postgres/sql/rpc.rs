//! The statement of a function call: the function called with named arguments, each bound as a
//! parameter cast to the argument's real type (`"s"."f"("a" => $1::integer, …)`), and the fetch
//! machinery (selection, filters, ordering, paging, the total) applied to its result as to a
//! table whose columns are the function's result columns.
//!
//! The function runs once per statement whatever is asked: with a total, its result is a common
//! table expression read twice (PostgreSQL materializes it, and always does for a volatile
//! function), never two calls.

use super::builder::Builder;
use super::{ident, Plan, Shape, ALIAS};
use crate::backend::postgres::functions::FunctionInfo;
use crate::backend::postgres::params::json_to_text;
use crate::ops::{OpError, Returns, Rpc};

pub fn plan_rpc(rpc: &Rpc, f: &FunctionInfo) -> Result<Plan, OpError> {
    let mut b = Builder::new(&f.result);
    let mut args = Vec::with_capacity(rpc.args.len());
    for name in rpc.args.keys() {
        if f.arg(name).is_none() {
            return Err(OpError::UnknownArgument {
                function: f.display_name(),
                argument: name.clone(),
            });
        }
    }
    // Declaration order, so a variadic argument (always the last) comes last in the call.
    for arg in &f.args {
        let Some(value) = rpc.args.get(&arg.name).filter(|_| !arg.name.is_empty()) else {
            continue;
        };
        let text = json_to_text(value, &arg.as_column())?;
        let p = b.param(text);
        let variadic = if arg.variadic { "VARIADIC " } else { "" };
        args.push(format!(
            "{variadic}{} => {p}::{}",
            ident(&arg.name),
            arg.type_sql
        ));
    }
    let call = format!(
        "{}.{}({})",
        ident(&f.schema),
        ident(&f.name),
        args.join(", ")
    );
    if f.returns == Returns::Void {
        // Nothing to select, filter or order: one row naming the function, null.
        let key = b.param(Some(f.name.clone()));
        let row = format!("json_build_object({key}::text, NULL)");
        b.sql = if rpc.count {
            format!(
                "SELECT coalesce(json_agg({row}), '[]'), count(*), count(*) FROM {call} AS {ALIAS}"
            )
        } else {
            format!("SELECT {row} FROM {call} AS {ALIAS}")
        };
        let shape = if rpc.count {
            Shape::AggregateWithTotal
        } else {
            Shape::Rows
        };
        return b.finish(shape);
    }
    // A scalar result is one column named after the function; the subquery makes each result a
    // row (a scalar function's alias alone would stand for the value, not a row of it).
    let from = match f.returns {
        Returns::Scalar | Returns::ScalarSet => {
            format!("(SELECT * FROM {call} AS c({})) AS {ALIAS}", ident(&f.name))
        }
        Returns::Row | Returns::RowSet | Returns::Void => format!("{call} AS {ALIAS}"),
    };
    let filter = match &rpc.filter {
        Some(filter) => format!(" WHERE {}", b.filter_sql(filter)?),
        None => String::new(),
    };
    let order = b.order_sql(&rpc.order)?;
    let row = b.json_row(&rpc.columns)?;
    let limit = b.param(Some(rpc.limit.to_string()));
    if rpc.count {
        let offset = b.param(Some(rpc.offset.to_string()));
        b.sql = format!(
            "WITH {ALIAS} AS (SELECT * FROM {from}) \
             SELECT coalesce(json_agg(p.j), '[]'), count(*), (SELECT count(*) FROM {ALIAS}{filter}) \
             FROM (SELECT {row} AS j FROM {ALIAS}{filter}{order} LIMIT {limit} OFFSET {offset}) p"
        );
        return b.finish(Shape::AggregateWithTotal);
    }
    let offset = match rpc.offset {
        0 => String::new(),
        n => format!(" OFFSET {}", b.param(Some(n.to_string()))),
    };
    b.sql = format!("SELECT {row} FROM {from}{filter}{order} LIMIT {limit}{offset}");
    b.finish(Shape::Rows)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;
    use crate::backend::postgres::functions::{FunctionArg, Volatility};
    use crate::backend::postgres::schema::{ColumnInfo, TableInfo, ValueKind};
    use crate::ops::{Columns, Filter, FilterValue, Op};

    fn function(returns: Returns) -> FunctionInfo {
        let col = |n: &str| ColumnInfo {
            name: n.into(),
            data_type: "integer".into(),
            kind: ValueKind::Scalar,
            nullable: true,
            default: None,
            primary_key: false,
        };
        FunctionInfo {
            schema: "public".into(),
            name: "f".into(),
            args: vec![
                FunctionArg {
                    name: "a".into(),
                    type_sql: "integer".into(),
                    kind: ValueKind::Scalar,
                    has_default: false,
                    variadic: false,
                },
                FunctionArg {
                    name: "tags".into(),
                    type_sql: "text[]".into(),
                    kind: ValueKind::Array { elem_json: false },
                    has_default: true,
                    variadic: false,
                },
            ],
            volatility: Volatility::Stable,
            returns,
            result: TableInfo {
                schema: "public".into(),
                name: "f".into(),
                relkind: 'c',
                columns: match returns {
                    Returns::Scalar | Returns::ScalarSet | Returns::Void => vec![col("f")],
                    Returns::Row | Returns::RowSet => vec![col("x"), col("y")],
                },
                primary_key: vec![],
            },
        }
    }

    fn call(args: serde_json::Value) -> Rpc {
        Rpc {
            function: crate::ops::TableRef {
                schema: None,
                name: "f".into(),
            },
            args: args.as_object().cloned().unwrap_or_else(Map::new),
            columns: Columns::All,
            filter: None,
            order: vec![],
            limit: 10,
            offset: 0,
            count: false,
        }
    }

    #[test]
    fn arguments_are_named_cast_and_bound() {
        let p = plan_rpc(
            &call(json!({"tags": ["x", "y"], "a": 1})),
            &function(Returns::Scalar),
        )
        .unwrap();
        assert_eq!(
            p.sql,
            "SELECT row_to_json(r.*) FROM (SELECT * FROM \"public\".\"f\"(\"a\" => $1::integer, \"tags\" => $2::text[]) AS c(\"f\")) AS r LIMIT $3"
        );
        assert_eq!(p.params[0].0.as_deref(), Some("1"));
        assert_eq!(p.params[1].0.as_deref(), Some("{\"x\",\"y\"}"));
    }

    #[test]
    fn results_are_filtered_as_tables_and_counted_from_one_call() {
        let mut rpc = call(json!({"a": 1}));
        rpc.filter = Some(Filter::Cond {
            column: "x".into(),
            op: Op::Gt,
            value: FilterValue::Json(json!(2)),
        });
        rpc.count = true;
        let p = plan_rpc(&rpc, &function(Returns::RowSet)).unwrap();
        assert!(
            p.sql.starts_with(
                "WITH r AS (SELECT * FROM \"public\".\"f\"(\"a\" => $1::integer) AS r)"
            ),
            "{}",
            p.sql
        );
        assert_eq!(p.sql.matches("\"f\"(").count(), 1, "{}", p.sql);
        assert_eq!(p.shape, Shape::AggregateWithTotal);
    }

    #[test]
    fn unknown_argument_and_result_column_names_never_reach_sql() {
        let err = plan_rpc(
            &call(json!({"a\"); drop table t; --": 1})),
            &function(Returns::Scalar),
        );
        assert!(matches!(err, Err(OpError::UnknownArgument { .. })));
        let mut rpc = call(json!({"a": 1}));
        rpc.order = vec![crate::ops::Order {
            column: "x\"".into(),
            descending: false,
            nulls_first: None,
        }];
        assert!(matches!(
            plan_rpc(&rpc, &function(Returns::RowSet)),
            Err(OpError::UnknownColumn { .. })
        ));
    }
}
