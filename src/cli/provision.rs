//! `athena_rs provision`: create (when missing) and migrate a logging database.

use std::path::PathBuf;

use athena_actors::provision;

/// Which database to provision.
pub enum Target {
    Uri(String),
    Client(String),
    Logging,
}

pub fn run(config: Option<PathBuf>, target: Target) -> anyhow::Result<()> {
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
    Ok(())
}
