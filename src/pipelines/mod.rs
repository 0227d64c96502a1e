//! Pipelines: a source (a fetch on any client) → a transform (renames, drops, a row filter,
//! post-processing) → a sink (insert, upsert or insert-ignoring-duplicates into a table of any
//! client). Definitions come from `config/pipelines.yaml` (by name) and from the request, whose
//! stages override a named definition's field by field.
//!
//! The source is read page by page as the database sends it and each page is written before the
//! next is read, so a pipeline of any size holds one page in memory (post-processing is the
//! exception: it holds the two values per row it groups by and aggregates). The sink writes in
//! one transaction: a failure anywhere (reading, transforming, writing) rolls it back and leaves
//! the sink as it was. `dry_run` reads and transforms everything and checks the sink table and
//! columns, but writes nothing.

mod plan;
mod run;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use plan::{resolve, Mode, Resolved, Sink, Source, Transform};
pub use run::{execute, Failure, Report};

/// Rows per page when the source names no `page_size`.
pub const DEFAULT_PAGE: usize = 1000;
/// The largest `page_size` accepted.
pub const MAX_PAGE: usize = 10_000;

/// A named definition as written in the file: each stage in the request dialect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub source: Map<String, Value>,
    #[serde(default)]
    pub transform: Option<Map<String, Value>>,
    pub sink: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    pipelines: Vec<Definition>,
}

/// The named definitions.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub definitions: BTreeMap<String, Definition>,
}

impl Registry {
    /// Reads a definitions file. A missing file is an empty registry.
    pub fn load(path: &Path) -> Result<Registry, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registry::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Registry::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Registry, String> {
        if text.trim().is_empty() {
            return Ok(Registry::default());
        }
        let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let mut definitions = BTreeMap::new();
        for d in file.pipelines {
            if d.name.trim().is_empty() {
                return Err("a pipeline has an empty name".into());
            }
            if definitions.insert(d.name.clone(), d).is_some() {
                return Err("two pipelines share a name".into());
            }
        }
        Ok(Registry { definitions })
    }
}

#[cfg(test)]
mod tests;
