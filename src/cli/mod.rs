//! The command line: `athena_rs server | provision | keys | pipeline | cdc | clients | fetch |
//! backup | health | version | diag`, one file per subcommand. Results go to stdout (tables for
//! people, `--json` for scripts), errors to stderr with a non-zero exit status.

mod backup;
mod cdc;
mod clients;
mod diag;
mod fetch;
mod health;
mod keys;
mod legacy;
mod output;
mod pipeline;
mod provision;
mod remote;
mod session;
mod settings;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "athena_rs",
    version,
    about = "Athena: one HTTP gateway in front of many databases"
)]
pub struct Cli {
    /// Config file to use instead of the search order (ATHENA_CONFIG, XDG/HOME dirs, ./config.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP gateway.
    ///
    /// Example: athena_rs server --config ./config.yaml --port 4052
    Server {
        /// Address to bind (overrides server.host).
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// Port to bind (overrides server.port).
        #[arg(long, value_name = "PORT")]
        port: Option<u16>,
        /// Pipeline definitions file (overrides pipelines.path).
        #[arg(long, value_name = "PATH")]
        pipelines_path: Option<PathBuf>,
    },
    /// Create (when missing) and migrate the logging database, or another database.
    ///
    /// Without flags it provisions `logging.uri` from the config. Migrations are numbered, applied
    /// once each under an advisory lock, and safe to run again.
    ///
    /// Example: athena_rs provision --uri postgres://postgres@127.0.0.1:5432/athena_logging
    Provision {
        /// A PostgreSQL URI to provision (created when missing).
        #[arg(long, value_name = "URI", conflicts_with = "client")]
        uri: Option<String>,
        /// A client of the config whose database to provision.
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
        /// athena_rs 2.0.2's logging database, only read: once provisioned, the logging database
        /// receives its API keys (the same ath_ keys keep working), their rights, the enforcement
        /// settings and its live catalog clients. Running it again adds nothing.
        ///
        /// Example: --import-from postgres://athena@old-db:5432/athena_logging
        #[arg(long, value_name = "URI", conflicts_with = "client")]
        import_from: Option<String>,
        /// athena_rs 2.0.2's form: once provisioned, save --uri in the clients catalog under
        /// --client-name, as clients add NAME URI does (a target without a server URL).
        #[arg(long, requires_all = ["uri", "client_name"])]
        register: bool,
        /// athena_rs 2.0.2's form: the name --register saves the database under.
        #[arg(long, value_name = "NAME", requires = "register")]
        client_name: Option<String>,
        /// The clients catalog --register writes (default: $ATHENA_CLIENTS_PATH, else
        /// config/clients.json).
        #[arg(long, value_name = "PATH", requires = "register")]
        clients_path: Option<PathBuf>,
    },
    /// Create, list and revoke API keys in the logging database.
    ///
    /// Example: athena_rs keys create --name reporting --rights users.read orders.read
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Run a pipeline (source → transform → sink) on a running server and print its report.
    ///
    /// Example: athena_rs pipeline --pipeline example_copy --client default --dry-run
    ///
    /// Example: athena_rs pipeline --client default --payload-json '{"source": {"table_name": "events"}, "sink": {"table_name": "events_archive"}}'
    Pipeline(pipeline::PipelineArgs),
    /// Follow change data capture on a running server.
    ///
    /// Example: athena_rs cdc tail --client default --table users --since 1042
    Cdc {
        #[command(subcommand)]
        command: cdc::CdcCommand,
    },
    /// Save, list and remove the gateway targets remote commands use (config/clients.json).
    ///
    /// Example: athena_rs clients add prod --url https://athena.example.com --key-env ATHENA_PROD_KEY
    Clients(clients::ClientsArgs),
    /// Fetch rows from a server (POST /gateway/fetch) and print them as a table.
    ///
    /// Example: athena_rs fetch --client prod --body-json '{"table_name": "users", "limit": 5}'
    Fetch(fetch::FetchArgs),
    /// Check a server's /health; exit status 0 only when it answers 200 (container health checks).
    ///
    /// Example: athena_rs health --url http://127.0.0.1:4052
    Health(health::HealthArgs),
    /// Print the version, the git commit it was built from and what is built in.
    ///
    /// Example: athena_rs version --json
    Version(version::VersionArgs),
    /// Back up, list, restore and delete backups through a running server (admin key).
    ///
    /// The server streams pg_dump to its S3 bucket (the backups section of its config) and
    /// verifies a backup's SHA-256 before restoring it.
    ///
    /// Example: athena_rs backup create --client default --label nightly --url http://127.0.0.1:4052
    ///
    /// Example: athena_rs backup list --json
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Check a config file and print what the server will do with it, or rewrite athena_rs
    /// 2.0.2's config.yaml in today's schema.
    ///
    /// Example: athena_rs config check --config ./config.yaml
    ///
    /// Example: athena_rs config migrate --config ./old/config.yaml --out ./config.yaml
    Config {
        #[command(subcommand)]
        command: settings::ConfigCommand,
    },
    /// Print the machine, the config in use and whether each client's database answers.
    ///
    /// Example: athena_rs diag --config ./config.yaml
    Diag,
}

fn load(explicit: Option<PathBuf>) -> anyhow::Result<Settings> {
    let path = config::locate(explicit).map_err(anyhow::Error::msg)?;
    Ok(Settings::load(&path)?)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let program = argv.next().unwrap_or_else(|| "athena_rs".into());
    let rewritten = legacy::rewrite(argv.collect());
    for note in &rewritten.notes {
        eprintln!("{note}");
    }
    let cli = Cli::parse_from(std::iter::once(program).chain(rewritten.args));
    let result = match cli.command {
        Command::Version(args) => version::run(args),
        Command::Clients(args) => clients::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Health(args) => health::run(args),
        Command::Diag => diag::run(cli.config),
        Command::Config { command } => settings::run(cli.config, command),
        Command::Provision {
            uri,
            client,
            import_from,
            register,
            client_name,
            clients_path,
        } => {
            let registered = match (register, client_name, &uri) {
                (true, Some(name), Some(u)) => Some((name, u.clone(), clients_path)),
                _ => None,
            };
            let target = match (uri, client) {
                (Some(u), _) => provision::Target::Uri(u),
                (None, Some(c)) => provision::Target::Client(c),
                (None, None) => provision::Target::Logging,
            };
            provision::run(cli.config, target, import_from).and_then(|()| match registered {
                Some((name, uri, path)) => clients::register_database(&name, &uri, path),
                None => Ok(()),
            })
        }
        Command::Keys { command } => keys::run(cli.config, command),
        Command::Pipeline(args) => pipeline::run(cli.config, args),
        Command::Cdc { command } => cdc::run(cli.config, command),
        Command::Backup { command } => backup::run(cli.config, command),
        Command::Server {
            host,
            port,
            pipelines_path,
        } => serve(cli.config, host, port, pipelines_path),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    config: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    pipelines_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    init_tracing();
    let mut settings = load(config)?;
    if let Some(path) = pipelines_path {
        settings.pipelines = crate::pipelines::Registry::load(&path)
            .map_err(|e| anyhow::anyhow!("--pipelines-path {}: {e}", path.display()))?;
        settings.pipelines_path = path;
    }
    if let Some(h) = host {
        settings.server.host = h;
    }
    if let Some(p) = port {
        settings.server.port = p;
    }
    tracing::info!(config = %settings.source.display(), "configuration loaded");
    for note in &settings.notes {
        tracing::warn!("{note}");
    }
    match session::detach(settings.server.own_session) {
        Ok(session::Session::Own) => tracing::info!(
            "started without a terminal: running in a session of its own (server.own_session)"
        ),
        Ok(how) => tracing::debug!(?how, "kept the session it was started in"),
        Err(e) => tracing::warn!(error = %e, "could not leave the session it was started in"),
    }
    let grace = std::time::Duration::from_secs(settings.server.shutdown_timeout_secs);
    actix_web::rt::System::new().block_on(async move {
        let running = crate::start(settings)?;
        crate::shutdown::serve_until_signal(running, grace).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
