//! `athena_rs provision`: create (when missing) and migrate a logging database, and, with
//! `--import-from`, copy what athena_rs 2.0.2's logging database held into it.

use std::path::PathBuf;

use athena_actors::provision;

/// Which database to provision.
pub enum Target {
    Uri(String),
    Client(String),
    Logging,
}

pub fn run(
    config: Option<PathBuf>,
    target: Target,
    import_from: Option<String>,
) -> anyhow::Result<()> {
    let (pg, create, what) = match target {
        Target::Uri(uri) => {
            let pg: athena_actors::pg::PgConfig = uri
                .parse()
                .map_err(|e| anyhow::anyhow!("--uri is not a PostgreSQL connection URI: {e}"))?;
            (pg, true, "the database given by --uri".to_string())
        }
        Target::Client(name) => {
            let settings = super::load(config)?;
            let spec = settings
                .clients
                .iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| {
                    anyhow::anyhow!("no client named {name:?} in {}", settings.source.display())
                })?;
            let athena_actors::registry::ClientSpec::Postgres(spec) = spec else {
                anyhow::bail!(
                    "client {name:?} is not a PostgreSQL client; only those are provisioned"
                );
            };
            (spec.config.clone(), false, format!("client {name}"))
        }
        Target::Logging => {
            let settings = super::load(config)?;
            (
                settings.logging.clone(),
                settings.logging_create_database,
                "the logging database".to_string(),
            )
        }
    };
    let db = pg.get_dbname().unwrap_or("(default)").to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(provision::provision(&pg, create))?;
    println!("provisioning {what} (database {db})");
    if report.created_database {
        println!("created database {db}");
    }
    for m in &report.applied {
        println!("applied         {m}");
    }
    for m in &report.already_applied {
        println!("already applied {m}");
    }
    if let Some(old_uri) = import_from {
        let old: athena_actors::pg::PgConfig = old_uri.parse().map_err(|e| {
            anyhow::anyhow!("--import-from is not a PostgreSQL connection URI: {e}")
        })?;
        if old.get_hosts() == pg.get_hosts()
            && old.get_ports() == pg.get_ports()
            && old.get_dbname() == pg.get_dbname()
            && old.get_options() == pg.get_options()
        {
            anyhow::bail!("--import-from names the database being provisioned; give athena_rs 2.0.2's own logging database");
        }
        let imported = rt.block_on(async {
            let old = provision::connect(&old).await?;
            let mut new = provision::connect(&pg).await?;
            provision::import_2_0_2(&old, &mut new).await
        })?;
        println!(
            "imported from athena_rs 2.0.2: {} API keys ({} already present), {} grants, {} clients ({} already present), {} per-client enforcement settings{}",
            imported.keys_imported,
            imported.keys_present,
            imported.grants,
            imported.clients_imported,
            imported.clients_present,
            imported.client_overrides,
            match imported.enforce_api_keys {
                Some(e) => format!(", enforcement {}", if e { "on" } else { "off" }),
                None => String::new(),
            }
        );
        for n in &imported.notes {
            println!("note: {n}");
        }
    }
    Ok(())
}
