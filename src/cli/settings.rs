//! `athena_rs config check|migrate`: what a config file makes the server do, and athena_rs
//! 2.0.2's file rewritten in today's schema.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::{self, Document, Settings};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (today's shape or athena_rs 2.0.2's) and print what the server
    /// will do with it: listener, clients (never a password), logging database, keys, cache, CORS.
    ///
    /// Exit status 1 when the file is refused.
    ///
    /// Example: athena_rs config check --config ./config.yaml --json
    Check {
        /// Print JSON ({"file", "shape", "warnings", "settings"}).
        #[arg(long)]
        json: bool,
    },
    /// Write athena_rs 2.0.2's config.yaml in today's schema, each key commented with where it
    /// came from; ${VAR} references are kept. The old file is left as it is.
    ///
    /// Example: athena_rs config migrate --config ./config.yaml --out ./config.new.yaml
    Migrate {
        /// Where to write (default: standard output).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Replace --out when it exists.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(explicit: Option<PathBuf>, command: ConfigCommand) -> anyhow::Result<()> {
    let path = config::locate(explicit).map_err(anyhow::Error::msg)?;
    match command {
        ConfigCommand::Check { json } => {
            let settings = Settings::load(&path)?;
            let shape = if settings.from_2_0_2 {
                "athena_rs 2.0.2"
            } else {
                "today"
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "file": path.display().to_string(),
                        "shape": shape,
                        "warnings": settings.notes,
                        "settings": settings.describe(),
                    })
                );
            } else {
                println!("config  {} (shape: {shape})", path.display());
                for n in &settings.notes {
                    println!("warning: {n}");
                }
                println!("---");
                let mut out = String::new();
                outline(&settings.describe(), 0, &mut out);
                print!("{out}");
            }
        }
        ConfigCommand::Migrate { out, force } => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let env = |k: &str| std::env::var(k).ok();
            let doc = Document::parse(&text, &path, &env)?;
            let Some(migrated) = doc.migrated else {
                eprintln!(
                    "{} is already in today's schema; nothing to migrate",
                    path.display()
                );
                return Ok(());
            };
            let mut written = config::legacy::header(&path);
            for n in &doc.notes {
                written.push_str(&format!("# - {n}\n"));
            }
            written.push('\n');
            written.push_str(&migrated.render());
            // What is written must load as today's file, with the same result.
            Settings::from_yaml(&written, out.as_deref().unwrap_or(&path))
                .map_err(|e| anyhow::anyhow!("the migrated file does not load: {e}"))?;
            match out {
                None => print!("{written}"),
                Some(out) => {
                    if out.exists() && !force {
                        anyhow::bail!("{} exists; use --force to replace it", out.display());
                    }
                    std::fs::write(&out, &written)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
                    eprintln!(
                        "wrote {} from {}; check it: athena_rs config check --config {}",
                        out.display(),
                        path.display(),
                        out.display()
                    );
                }
            }
        }
    }
    Ok(())
}

/// JSON as indented `key: value` lines.
fn outline(v: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    let pad = "  ".repeat(depth);
    let leaf = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    };
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                match val {
                    Value::Object(_) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        outline(val, depth + 1, out);
                    }
                    Value::Array(items) if items.iter().any(Value::is_object) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        for item in items {
                            out.push_str(&format!("{pad}  -\n"));
                            outline(item, depth + 2, out);
                        }
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", leaf(val))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", leaf(other))),
    }
}
