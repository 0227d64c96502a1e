//! Fetches translated to CQL, as pure functions of the operation and the table description.
//!
//! CQL reads a table by its keys. Without `ALLOW FILTERING` a fetch may restrict:
//! * the partition key, every column with `eq` or `in`;
//! * then clustering columns in key order, each with `eq`/`in`, the last one optionally with a
//!   range (`gt`/`gte`/`lt`/`lte`, at most one lower and one upper bound);
//! * or, instead of clustering columns, one indexed column with `eq` (a global index needs no
//!   partition key, a local one does), or a collection with a values index with `contains`;
//! * or nothing (a paged scan of the table).
//!
//! Any other restriction would make the cluster read and discard rows: it is refused with
//! [`OpError::FilterRequiresIndex`] (400 `filter_requires_index`) unless the client sets
//! `allow_filtering: true`, in which case `ALLOW FILTERING` is appended. `or`, `not`, `neq`,
//! `like`, `ilike`, `is` and `containedBy` have no CQL form and are refused with
//! [`OpError::Unsupported`] either way: a filter is never dropped.
//!
//! Ordering follows the clustering key only (a prefix of it, all in its order or all reversed) and
//! needs the partition key. Paging is by cursor (see [`super::cursor`]); an offset is refused.
//! `count: exact` runs a `SELECT COUNT(*)` with the same restrictions, and only when the whole
//! partition key is given, so the count reads at most the named partitions.

use scylla::value::CqlValue;

use super::cursor;
pub use super::restrict::MAX_IN_VALUES;
use super::restrict::{
    check_combinations, column, needs_filtering, restrictions, unsupported, where_clause,
};
use super::schema::{quote, Column, TableInfo};
use crate::ops::{Columns, Fetch, Op, OpError};

/// How the client lets fetches run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    pub allow_filtering: bool,
}

/// A statement and its bound values (`None` binds null).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub cql: String,
    pub values: Vec<Option<CqlValue>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchPlan {
    pub select: Statement,
    /// Each result field: its position in the SELECT and its key in the row (a column selected
    /// under two keys is read once).
    pub fields: Vec<(usize, String)>,
    /// The count statement, when the total was asked for.
    pub count: Option<Statement>,
    pub limit: u64,
    /// Where to resume, from the caller's cursor.
    pub paging_state: Option<Vec<u8>>,
    pub fingerprint: [u8; 8],
    /// An empty `in`: no row can match, nothing is sent to the cluster.
    pub matches_nothing: bool,
}

/// The selected columns (each once, in SELECT order) and each result field (its key, its position).
type Selection<'a> = (Vec<&'a Column>, Vec<(String, usize)>);

/// The selected columns (each once, in SELECT order) and the key of each result field.
fn selection<'a>(info: &'a TableInfo, cols: &Columns) -> Result<Selection<'a>, OpError> {
    let mut selected: Vec<&Column> = Vec::new();
    let mut keys: Vec<(String, usize)> = Vec::new();
    let mut add = |c: &'a Column, key: String, selected: &mut Vec<&'a Column>| {
        let idx = match selected.iter().position(|s| s.name == c.name) {
            Some(i) => i,
            None => {
                selected.push(c);
                selected.len() - 1
            }
        };
        keys.push((key, idx));
    };
    match cols {
        Columns::All => info
            .columns
            .iter()
            .for_each(|c| add(c, c.name.clone(), &mut selected)),
        Columns::List(list) => {
            for s in list {
                if s.column == "*" && s.key.is_none() {
                    info.columns
                        .iter()
                        .for_each(|c| add(c, c.name.clone(), &mut selected));
                } else {
                    let c = column(info, &s.column)?;
                    add(c, s.key().to_string(), &mut selected);
                }
            }
        }
    }
    Ok((selected, keys))
}

/// The plan of a fetch.
pub fn plan_fetch(f: &Fetch, info: &TableInfo, opts: PlanOptions) -> Result<FetchPlan, OpError> {
    if f.offset > 0 {
        return Err(unsupported(
            "offset and current_page: a Scylla client pages by cursor; send the data.next_page of \
             the previous answer as page_state (limit or page_size sets the page's size)",
        ));
    }
    let rs = restrictions(info, f.filter.as_ref())?;
    check_combinations(&rs)?;
    let (why, pk_full) = needs_filtering(info, &rs);
    let filtering = match why {
        Some(reason) if !opts.allow_filtering => {
            return Err(OpError::FilterRequiresIndex {
                table: info.name.clone(),
                reason,
            })
        }
        Some(_) => " ALLOW FILTERING",
        None => "",
    };
    let order = order_by(f, info, pk_full)?;
    let (selected, keys) = selection(info, &f.columns)?;
    let mut values = Vec::new();
    let where_ = where_clause(&rs, &mut values);
    let list: Vec<String> = selected.iter().map(|c| quote(&c.name)).collect();
    let cql = format!(
        "SELECT {} FROM {}{where_}{order}{filtering}",
        list.join(", "),
        info.qualified()
    );
    let count = if f.count {
        if !pk_full {
            return Err(unsupported(
                "count: exact on a Scylla client needs the whole partition key by eq or in, so \
                 counting reads only the named partitions",
            ));
        }
        Some(Statement {
            cql: format!(
                "SELECT COUNT(*) FROM {}{where_}{filtering}",
                info.qualified()
            ),
            values: values.clone(),
        })
    } else {
        None
    };
    let fingerprint = cursor::fingerprint(&cql, &values);
    let paging_state = f
        .page
        .as_deref()
        .map(|c| cursor::decode(c, &fingerprint))
        .transpose()?;
    let matches_nothing = rs.iter().any(|r| r.op == Op::In && r.values.is_empty());
    let fields = keys.into_iter().map(|(k, i)| (i, k)).collect();
    Ok(FetchPlan {
        select: Statement { cql, values },
        fields,
        count,
        limit: f.limit,
        paging_state,
        fingerprint,
        matches_nothing,
    })
}

/// `ORDER BY` for a prefix of the clustering key, all in its order or all reversed.
fn order_by(f: &Fetch, info: &TableInfo, pk_full: bool) -> Result<String, OpError> {
    if f.order.is_empty() {
        return Ok(String::new());
    }
    let ck: Vec<&Column> = info.clustering().collect();
    let mut reversed: Option<bool> = None;
    let mut parts = Vec::new();
    for (i, o) in f.order.iter().enumerate() {
        let col = column(info, &o.column)?;
        if o.nulls_first.is_some() {
            return Err(unsupported("nulls first/last: CQL orders no nulls"));
        }
        if ck.get(i).map(|c| c.name.as_str()) != Some(col.name.as_str()) {
            let names: Vec<&str> = ck.iter().map(|c| c.name.as_str()).collect();
            return Err(unsupported(&format!(
                "order by {}: a Scylla table is ordered by its clustering columns only, in key \
                 order ({})",
                col.name,
                if names.is_empty() {
                    "this table has none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
        let rev = o.descending != col.descending;
        if *reversed.get_or_insert(rev) != rev {
            return Err(unsupported(
                "order: the clustering columns are read all in their order or all reversed",
            ));
        }
        parts.push(format!(
            "{} {}",
            quote(&col.name),
            if o.descending { "DESC" } else { "ASC" }
        ));
    }
    if !pk_full {
        return Err(unsupported(
            "order needs the whole partition key by eq or in: rows are ordered within a partition",
        ));
    }
    Ok(format!(" ORDER BY {}", parts.join(", ")))
}
