//! Database functions as the live catalog describes them (`pg_proc`): every version (overload)
//! of a name in the first schema of the search path that has one, each with its named input
//! arguments and their real types, its volatility and the columns of its result. Cached beside
//! table descriptions in [`super::schema::SchemaCache`].
//!
//! Only plain functions are callable (`prokind = 'f'`): procedures, aggregates and window
//! functions are not, nor are functions of the system schemas (`pg_catalog`,
//! `information_schema`), nor functions returning an untyped `record` (their columns are not
//! known before they run). Arguments are passed by name only, so a version with a required
//! argument that has no name cannot be called.

use std::sync::Arc;

use tokio_postgres::GenericClient;

use super::schema::{self, ColumnInfo, TableInfo, ValueKind};
use crate::ops::{OpError, Returns, TableRef};

/// How a function may affect the database (`provolatile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

/// One input argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionArg {
    /// Empty when the argument has no name.
    pub name: String,
    /// The type as SQL (`integer`, `text[]`, `timestamp with time zone`), from `format_type`: the
    /// cast every bound value gets.
    pub type_sql: String,
    pub kind: ValueKind,
    pub has_default: bool,
    /// A `VARIADIC` argument: its value is the array of the variadic values.
    pub variadic: bool,
}

impl FunctionArg {
    /// The argument as a column, for converting a JSON value to its type's text input.
    pub fn as_column(&self) -> ColumnInfo {
        ColumnInfo {
            name: self.name.clone(),
            data_type: self.type_sql.clone(),
            kind: self.kind,
            nullable: true,
            default: None,
            primary_key: false,
        }
    }
}

/// One version of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    pub schema: String,
    pub name: String,
    /// Input arguments (`IN`, `INOUT`, `VARIADIC`) in declaration order.
    pub args: Vec<FunctionArg>,
    pub volatility: Volatility,
    pub returns: Returns,
    /// The result's columns as a table (named after the function): a composite's attributes, the
    /// `OUT`/`TABLE` arguments, or for a scalar one column named after the function. Filters,
    /// ordering and selections are checked against it.
    pub result: TableInfo,
}

impl FunctionInfo {
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn arg(&self, name: &str) -> Option<&FunctionArg> {
        self.args
            .iter()
            .find(|a| !a.name.is_empty() && a.name == name)
    }

    /// Every given name is one of its arguments.
    fn accepts(&self, given: &[&str]) -> bool {
        given.iter().all(|g| self.arg(g).is_some())
    }

    /// The first argument without a default that is not given (or cannot be, having no name).
    fn first_missing(&self, given: &[&str]) -> Option<&FunctionArg> {
        self.args
            .iter()
            .find(|a| !a.has_default && (a.name.is_empty() || !given.contains(&a.name.as_str())))
    }
}

/// Every callable version of a function name in one schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSet {
    pub versions: Vec<Arc<FunctionInfo>>,
}

impl FunctionSet {
    /// Every argument name some version takes.
    pub fn arg_names(&self) -> impl Iterator<Item = &str> {
        self.versions
            .iter()
            .flat_map(|v| v.args.iter().map(|a| a.name.as_str()))
            .filter(|n| !n.is_empty())
    }

    /// The kind of an argument of that name in any version (the first found).
    pub fn arg_kind(&self, name: &str) -> Option<ValueKind> {
        self.versions
            .iter()
            .find_map(|v| v.arg(name))
            .map(|a| a.kind)
    }

    /// The version called with arguments named `given`: the one that takes every given name and
    /// lacks no argument without a default. When several do, the one that takes exactly the
    /// given names; otherwise the call is ambiguous.
    pub fn resolve(&self, given: &[&str]) -> Result<&Arc<FunctionInfo>, OpError> {
        let Some(first) = self.versions.first() else {
            return Err(OpError::Internal("a function set with no version".into()));
        };
        let function = first.display_name();
        let taking: Vec<&Arc<FunctionInfo>> =
            self.versions.iter().filter(|v| v.accepts(given)).collect();
        if taking.is_empty() {
            // Name the argument no version knows, or else one the first version lacks.
            let unknown = given
                .iter()
                .find(|g| self.versions.iter().all(|v| v.arg(g).is_none()))
                .or_else(|| given.iter().find(|g| first.arg(g).is_none()))
                .copied()
                .unwrap_or_default();
            return Err(OpError::UnknownArgument {
                function,
                argument: unknown.to_string(),
            });
        }
        let complete: Vec<&Arc<FunctionInfo>> = taking
            .iter()
            .copied()
            .filter(|v| v.first_missing(given).is_none())
            .collect();
        match complete.as_slice() {
            [] => {
                let missing = taking[0]
                    .first_missing(given)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                let argument = if missing.is_empty() {
                    "(an argument without a name)".to_string()
                } else {
                    missing
                };
                Err(OpError::MissingArgument { function, argument })
            }
            [one] => Ok(one),
            many => {
                let exact: Vec<_> = many
                    .iter()
                    .filter(|v| v.args.len() == given.len())
                    .collect();
                match exact.as_slice() {
                    [one] => Ok(one),
                    _ => Err(OpError::AmbiguousFunction {
                        function,
                        candidates: many.len(),
                    }),
                }
            }
        }
    }
}

/// The versions of the name, in the first visible schema that has one.
const FIND_FUNCTIONS: &str = "\
SELECT p.oid, n.nspname::text, p.proname::text, p.provolatile::text, p.proretset, \
       rt.typtype::text, rt.typname::text, rt.typrelid, \
       (p.proargmodes IS NOT NULL AND p.proargmodes::text[] && ARRAY['o','b','t']), \
       p.pronargdefaults::int4 \
FROM pg_catalog.pg_proc p \
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
JOIN pg_catalog.pg_type rt ON rt.oid = p.prorettype \
WHERE p.proname = $1 AND p.prokind = 'f' \
  AND (($2::text IS NULL AND n.nspname = ANY(pg_catalog.current_schemas(false))) OR n.nspname = $2::text) \
  AND n.nspname <> ALL($3::text[]) \
ORDER BY pg_catalog.array_position(pg_catalog.current_schemas(false), n.nspname::name) NULLS LAST, p.oid";

/// Every argument of one function (input and output), in declaration order.
const FUNCTION_ARGS: &str = "\
SELECT coalesce(p.proargnames[a.ord], '')::text, coalesce(p.proargmodes[a.ord]::text, 'i'), \
       pg_catalog.format_type(a.typ, NULL), t.typcategory::text, t.typname::text, \
       coalesce(et.typname::text, '') \
FROM pg_catalog.pg_proc p \
CROSS JOIN LATERAL unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY AS a(typ, ord) \
JOIN pg_catalog.pg_type t ON t.oid = a.typ \
LEFT JOIN pg_catalog.pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
WHERE p.oid = $1 \
ORDER BY a.ord";

fn kind_of(category: &str, typname: &str, elem: &str) -> ValueKind {
    if category == "A" {
        ValueKind::Array {
            elem_json: elem == "json" || elem == "jsonb",
        }
    } else if typname == "json" || typname == "jsonb" {
        ValueKind::Json
    } else {
        ValueKind::Scalar
    }
}

/// Reads every callable version of a function, or `None` when the name has none.
pub async fn load_functions<C: GenericClient>(
    client: &C,
    function: &TableRef,
) -> Result<Option<FunctionSet>, tokio_postgres::Error> {
    let impossible = |n: &str| n.is_empty() || n.len() > 63 || n.contains('\0');
    if impossible(&function.name) || function.schema.as_deref().is_some_and(impossible) {
        return Ok(None);
    }
    let hidden: Vec<&str> = schema::HIDDEN_SCHEMAS.to_vec();
    let find = client.prepare_typed(FIND_FUNCTIONS, &[]).await?;
    let rows = client
        .query(&find, &[&function.name, &function.schema, &hidden])
        .await?;
    let Some(first_schema) = rows.first().map(|r| r.get::<_, String>(1)) else {
        return Ok(None);
    };
    let mut versions = Vec::new();
    for row in rows
        .iter()
        .filter(|r| r.get::<_, String>(1) == first_schema)
    {
        if let Some(info) = describe(client, row).await? {
            versions.push(Arc::new(info));
        }
    }
    if versions.is_empty() {
        return Ok(None);
    }
    Ok(Some(FunctionSet { versions }))
}

/// One version from its `FIND_FUNCTIONS` row; `None` when it cannot be called (an untyped
/// `record` result).
async fn describe<C: GenericClient>(
    client: &C,
    row: &tokio_postgres::Row,
) -> Result<Option<FunctionInfo>, tokio_postgres::Error> {
    let oid: u32 = row.get(0);
    let schema: String = row.get(1);
    let name: String = row.get(2);
    let volatility = match row.get::<_, String>(3).as_str() {
        "i" => Volatility::Immutable,
        "s" => Volatility::Stable,
        _ => Volatility::Volatile,
    };
    let set: bool = row.get(4);
    let typtype: String = row.get(5);
    let typname: String = row.get(6);
    let typrelid: u32 = row.get(7);
    let has_out: bool = row.get(8);
    let defaults = row.get::<_, i32>(9).max(0) as usize;

    let mut args = Vec::new();
    let mut outputs = Vec::new();
    for r in client.query(FUNCTION_ARGS, &[&oid]).await? {
        let arg_name: String = r.get(0);
        let mode: String = r.get(1);
        let type_sql: String = r.get(2);
        let kind = kind_of(
            &r.get::<_, String>(3),
            &r.get::<_, String>(4),
            &r.get::<_, String>(5),
        );
        if matches!(mode.as_str(), "o" | "b" | "t") {
            outputs.push(ColumnInfo {
                name: arg_name.clone(),
                data_type: type_sql.clone(),
                kind,
                nullable: true,
                default: None,
                primary_key: false,
            });
        }
        if matches!(mode.as_str(), "i" | "b" | "v") {
            args.push(FunctionArg {
                name: arg_name,
                type_sql,
                kind,
                has_default: false,
                variadic: mode == "v",
            });
        }
    }
    // The last `pronargdefaults` input arguments have defaults.
    let first_default = args.len().saturating_sub(defaults);
    for a in &mut args[first_default..] {
        a.has_default = true;
    }
    let (returns, columns) = if has_out {
        let returns = if set { Returns::RowSet } else { Returns::Row };
        (returns, outputs)
    } else if typtype == "c" {
        let Some(table) = schema::describe_relation(client, typrelid).await? else {
            return Ok(None);
        };
        let returns = if set { Returns::RowSet } else { Returns::Row };
        (returns, table.columns)
    } else if typtype == "p" && typname == "void" {
        (Returns::Void, vec![scalar_column(&name, "void")])
    } else if typtype == "p" && typname == "record" {
        return Ok(None);
    } else {
        let returns = if set {
            Returns::ScalarSet
        } else {
            Returns::Scalar
        };
        (returns, vec![scalar_column(&name, &typname)])
    };
    Ok(Some(FunctionInfo {
        result: TableInfo {
            schema: schema.clone(),
            name: name.clone(),
            relkind: 'c',
            columns,
            primary_key: Vec::new(),
        },
        schema,
        name,
        args,
        volatility,
        returns,
    }))
}

fn scalar_column(name: &str, typname: &str) -> ColumnInfo {
    ColumnInfo {
        name: name.to_string(),
        data_type: typname.to_string(),
        kind: if typname == "json" || typname == "jsonb" {
            ValueKind::Json
        } else {
            ValueKind::Scalar
        },
        nullable: true,
        default: None,
        primary_key: false,
    }
}

#[cfg(test)]
mod tests;
