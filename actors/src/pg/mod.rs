//! PostgreSQL connection settings and the one way to open a connection.
//!
//! Every PostgreSQL connection Athena makes (client pools, the logging database, the statistics
//! writer, listeners, change data capture, backups, provisioning, `diag`, query cancellation, the
//! SDK) is opened by [`PgConfig::connect`] (or, for pools, by the [`PoolConnect`] it hands
//! deadpool), which applies the TLS settings with libpq's meanings:
//!
//! | `sslmode` | TLS | certificate check |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow` | only if the server refuses a plain connection | none |
//! | `prefer` (default) | when the server offers it; plain if TLS fails | none |
//! | `require` | always | none (the chain, when `sslrootcert` is given) |
//! | `verify-ca` | always | the chain, against `sslrootcert` |
//! | `verify-full` | always | the chain and the host name |
//!
//! `sslrootcert` is a PEM file or `system` (the platform's roots, which means `verify-full` and
//! refuses weaker modes, as in libpq 16); without it, the verifying modes read
//! `~/.postgresql/root.crt` as libpq does. `sslcert`/`sslkey` give a client
//! certificate. Settings come from the connection string and, winning over it, from
//! configuration ([`TlsSettings::over`]). Unix-socket connections never use TLS.
//!
//! What this module does not do: read libpq's environment variables or service files, or check
//! revocation lists.

mod binding;
pub mod tls;
mod uri;

use std::net::IpAddr;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::{Client, Socket};

pub use tls::{RootCert, TlsFailure, TlsInfo};

/// A connection to a PostgreSQL server, plain or over TLS.
pub type Connection = tokio_postgres::Connection<Socket, tls::TlsStream<Socket>>;

/// libpq's `sslmode`, ordered from the weakest to the strictest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS parameters of a connection, each unset unless given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: Option<SslMode>,
    pub root_cert: Option<RootCert>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsSettings {
    /// Reads libpq's parameter names and values (`sslmode=verify-full`, `sslrootcert=system`…).
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TlsSettings, String> {
        let mut s = TlsSettings::default();
        for (name, value) in params {
            let path = || {
                if value.is_empty() {
                    Err(format!("{name} must not be empty"))
                } else {
                    Ok(PathBuf::from(value))
                }
            };
            match name {
                "sslmode" => {
                    s.mode = Some(SslMode::parse(value).ok_or_else(|| {
                        format!(
                            "sslmode {value:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        )
                    })?)
                }
                "sslrootcert" if value == "system" => s.root_cert = Some(RootCert::System),
                "sslrootcert" => s.root_cert = Some(RootCert::File(path()?)),
                "sslcert" => s.cert = Some(path()?),
                "sslkey" => s.key = Some(path()?),
                other => return Err(format!("{other} is not a TLS parameter")),
            }
        }
        Ok(s)
    }

    /// These settings with every parameter `over` sets taking its place.
    pub fn over(self, over: &TlsSettings) -> TlsSettings {
        TlsSettings {
            mode: over.mode.or(self.mode),
            root_cert: over.root_cert.clone().or(self.root_cert),
            cert: over.cert.clone().or(self.cert),
            key: over.key.clone().or(self.key),
        }
    }

    /// The mode in force: `prefer` unless set, or `verify-full` with `sslrootcert=system`
    /// (libpq 16's rule: the system's roots vouch for a name, so the name is checked).
    pub fn effective_mode(&self) -> SslMode {
        match (self.mode, &self.root_cert) {
            (Some(m), _) => m,
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
        }
    }

    /// Whether the server's certificate chain is checked: the verifying modes, and `require`
    /// with a root certificate (libpq's compatibility rule).
    pub fn verifies(&self) -> bool {
        match self.effective_mode() {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            SslMode::Require => self.root_cert.is_some(),
            _ => false,
        }
    }

    fn check(&self) -> tls::Check {
        match self.effective_mode() {
            SslMode::VerifyFull => tls::Check::Full,
            _ if self.verifies() => tls::Check::Chain,
            _ => tls::Check::None,
        }
    }

    /// The root certificates the verifying modes use: the one given, else libpq's default file.
    fn roots(&self) -> Result<Option<RootCert>, String> {
        if !self.verifies() {
            return Ok(self.root_cert.clone());
        }
        if let Some(r) = &self.root_cert {
            return Ok(Some(r.clone()));
        }
        let default = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
            .filter(|p| p.exists());
        match default {
            Some(p) => Ok(Some(RootCert::File(p))),
            None => Err(format!(
                "sslmode={} needs the certificate authority to trust: set sslrootcert to a PEM file, or to system for the system's trusted roots",
                self.effective_mode().as_str()
            )),
        }
    }
}

/// The TLS side of a [`PgConfig`], built once from its settings.
struct Tls {
    settings: TlsSettings,
    /// The connector of a TLS attempt: `None` with `disable`.
    connector: Option<tls::Connector>,
}

impl Tls {
    fn build(settings: TlsSettings) -> Result<Tls, String> {
        let mode = settings.effective_mode();
        if settings.root_cert == Some(RootCert::System) && mode != SslMode::VerifyFull {
            // Any public CA signs a certificate for someone: only the name makes it the server's.
            return Err(format!(
                "sslmode={} may not be used with sslrootcert=system (use verify-full), as in libpq",
                mode.as_str()
            ));
        }
        let connector = match mode {
            SslMode::Disable => None,
            _ => {
                let roots = settings.roots()?;
                let client = match (&settings.cert, &settings.key) {
                    (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
                    (None, None) => None,
                    (Some(_), None) => return Err("sslcert needs sslkey".into()),
                    (None, Some(_)) => return Err("sslkey needs sslcert".into()),
                };
                Some(tls::Connector::new(
                    settings.check(),
                    roots.as_ref(),
                    client,
                )?)
            }
        };
        Ok(Tls {
            settings,
            connector,
        })
    }
}

/// A PostgreSQL server to connect to: `tokio_postgres`'s settings (reachable through `Deref`)
/// and the TLS settings with their connector. Holds the password: never log it; its `Debug`
/// leaves it out.
#[derive(Clone)]
pub struct PgConfig {
    pg: tokio_postgres::Config,
    tls: Arc<Tls>,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("hosts", &self.pg.get_hosts())
            .field("ports", &self.pg.get_ports())
            .field("dbname", &self.pg.get_dbname())
            .field("sslmode", &self.tls.settings.effective_mode())
            .finish_non_exhaustive()
    }
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig::from(tokio_postgres::Config::new())
    }
}

impl From<tokio_postgres::Config> for PgConfig {
    /// Settings without TLS parameters: `prefer`, which reads no file and so cannot fail.
    fn from(pg: tokio_postgres::Config) -> Self {
        let tls = Tls::build(TlsSettings::default()).expect("prefer reads no file");
        PgConfig {
            pg,
            tls: Arc::new(tls),
        }
    }
}

impl Deref for PgConfig {
    type Target = tokio_postgres::Config;
    fn deref(&self) -> &tokio_postgres::Config {
        &self.pg
    }
}

impl DerefMut for PgConfig {
    fn deref_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.pg
    }
}

impl std::str::FromStr for PgConfig {
    type Err = String;
    fn from_str(s: &str) -> Result<PgConfig, String> {
        PgConfig::parse(s, &TlsSettings::default())
    }
}

impl PgConfig {
    /// Parses a connection string (URL or `key=value`), its TLS parameters included, with the
    /// settings of `over` winning over the string's. Certificate files are read here, so a
    /// missing or invalid one is refused now. The error never contains the string.
    pub fn parse(s: &str, over: &TlsSettings) -> Result<PgConfig, String> {
        let split = uri::split(s)?;
        let from_uri =
            TlsSettings::from_params(split.tls.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let pg: tokio_postgres::Config = split.rest.parse().map_err(|e| format!("{e}"))?;
        PgConfig::new(pg, from_uri.over(over))
    }

    /// `pg` with these TLS settings.
    pub fn new(pg: tokio_postgres::Config, tls: TlsSettings) -> Result<PgConfig, String> {
        Ok(PgConfig {
            pg,
            tls: Arc::new(Tls::build(tls)?),
        })
    }

    /// The TLS settings as given (unset ones unset).
    pub fn tls(&self) -> &TlsSettings {
        &self.tls.settings
    }

    /// The `tokio_postgres` settings.
    pub fn pg(&self) -> &tokio_postgres::Config {
        &self.pg
    }

    /// Opens a connection. The connection future must be driven (spawned) for the client to work.
    pub async fn connect(&self) -> Result<(Client, Connection), tokio_postgres::Error> {
        connect(&self.pg, &self.tls, None).await
    }

    /// Opens a connection and tells what TLS it uses: `None` for a plain connection.
    pub async fn connect_observed(
        &self,
    ) -> Result<(Client, Connection, Option<TlsInfo>), tokio_postgres::Error> {
        let seen = Arc::new(Mutex::new(None));
        let (client, conn) = connect(&self.pg, &self.tls, Some(seen.clone())).await?;
        let info = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok((client, conn, info))
    }

    /// What deadpool uses to open the connections of a pool whose settings are `pg` (these
    /// settings with the pool's timeouts applied).
    pub fn pool_connect(&self) -> PoolConnect {
        PoolConnect(self.tls.clone())
    }

    /// A small pool of connections to this database for a side task (the change data capture
    /// log, the admin routes' catalog): made on demand, at most `max_size`, `application_name`
    /// set, and a connect timeout of five seconds unless the URI gives one.
    pub fn side_pool(&self, application_name: &str, max_size: usize) -> deadpool_postgres::Pool {
        use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
        let mut cfg = self.clone();
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(std::time::Duration::from_secs(5));
        }
        cfg.application_name(application_name);
        let manager = Manager::from_connect(
            cfg.pg().clone(),
            cfg.pool_connect(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(max_size)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .runtime(Runtime::Tokio1)
            .build()
            .expect("a runtime and a positive max_size are always set")
    }

    /// The TLS connector a cancel request uses: the same settings as the connection's.
    pub fn cancel_tls(&self) -> tls::MakeTls {
        connector_of(&self.tls).make(None)
    }

    /// The first host that is neither a loopback address nor a Unix socket, when the server's
    /// certificate is not checked: such a connection can be intercepted on the way.
    pub fn unverified_remote_host(&self) -> Option<String> {
        if self.tls.settings.verifies() {
            return None;
        }
        self.pg.get_hosts().iter().find_map(|h| match h {
            Host::Tcp(name) if !is_loopback(name) => Some(name.clone()),
            _ => None,
        })
    }

    /// The TLS settings as libpq's environment variables, for `pg_dump` and `pg_restore`.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let s = &self.tls.settings;
        let mut env = vec![("PGSSLMODE", s.effective_mode().as_str().to_string())];
        match &s.root_cert {
            Some(RootCert::File(p)) => env.push(("PGSSLROOTCERT", p.display().to_string())),
            // libpq before 16 reads `system` as a file name; the system bundle works for all.
            Some(RootCert::System) => env.push((
                "PGSSLROOTCERT",
                system_bundle().unwrap_or_else(|| "system".into()),
            )),
            None => {}
        }
        if let Some(p) = &s.cert {
            env.push(("PGSSLCERT", p.display().to_string()));
        }
        if let Some(p) = &s.key {
            env.push(("PGSSLKEY", p.display().to_string()));
        }
        env
    }
}

/// The connector of these settings; with `disable`, one that is never used (`tokio_postgres`
/// wants one all the same), built once for every such connection.
fn connector_of(tls: &Tls) -> &tls::Connector {
    static UNUSED: std::sync::OnceLock<tls::Connector> = std::sync::OnceLock::new();
    match &tls.connector {
        Some(c) => c,
        None => UNUSED.get_or_init(|| {
            tls::Connector::new(tls::Check::None, None, None)
                .expect("an unverified connector reads no file")
        }),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The system's CA bundle file, where the usual distributions keep it.
fn system_bundle() -> Option<String> {
    if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
        return Some(f.to_string_lossy().into_owned());
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
        "/etc/ssl/ca-bundle.pem",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .map(str::to_string)
}

/// The one function that opens PostgreSQL connections: every mode's attempts, in libpq's order.
async fn connect(
    pg: &tokio_postgres::Config,
    tls: &Tls,
    observe: Option<Arc<Mutex<Option<TlsInfo>>>>,
) -> Result<(Client, Connection), tokio_postgres::Error> {
    let unix_only =
        !pg.get_hosts().is_empty() && pg.get_hosts().iter().all(|h| matches!(h, Host::Unix(_)));
    let mode = if unix_only {
        SslMode::Disable
    } else {
        tls.settings.effective_mode()
    };
    let attempt = |mode: PgSslMode| {
        let mut cfg = pg.clone();
        cfg.ssl_mode(mode);
        let make = connector_of(tls).make(observe.clone());
        async move { cfg.connect(make).await }
    };
    match mode {
        SslMode::Disable => attempt(PgSslMode::Disable).await,
        SslMode::Allow => match attempt(PgSslMode::Disable).await {
            Err(e) if refused_by_server(&e) => attempt(PgSslMode::Require).await,
            other => other,
        },
        SslMode::Prefer => match attempt(PgSslMode::Prefer).await {
            Err(e) if refused_by_server(&e) || is_tls_failure(&e) => {
                attempt(PgSslMode::Disable).await
            }
            other => other,
        },
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            attempt(PgSslMode::Require).await
        }
    }
}

/// The server refused the connection as made (`pg_hba.conf` has no entry for it), so another
/// kind of connection may be accepted.
fn refused_by_server(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code().code() == "28000")
}

fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    tls_cause(e).is_some()
}

/// What went wrong with TLS, in words, when `e` is a TLS failure: the certificate's fault, the
/// server's refusal, or a server without TLS. `None` for any other error.
pub fn tls_cause(e: &tokio_postgres::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<TlsFailure>() {
            return Some(format!("TLS: {f}"));
        }
        source = s.source();
    }
    let text = e.to_string();
    if text.contains("TLS") {
        let detail = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        return Some(match detail.as_str() {
            "server does not support TLS" => {
                "TLS: the server does not support TLS, which sslmode requires".into()
            }
            "" => format!("TLS: {text}"),
            d => format!("TLS: {d}"),
        });
    }
    None
}

/// deadpool's way to open a pool's connections: [`PgConfig::connect`]'s, with the settings
/// deadpool holds (the pool's timeouts applied).
pub struct PoolConnect(Arc<Tls>);

impl deadpool_postgres::Connect for PoolConnect {
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> BoxFuture<'_, Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>> {
        let pg = pg.clone();
        Box::pin(async move {
            let (client, conn) = connect(&pg, &self.0, None).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "a pooled PostgreSQL connection ended");
                }
            });
            Ok((client, task))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_with_libpq_names_and_prefer_is_the_default() {
        for m in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            assert_eq!(SslMode::parse(m).unwrap().as_str(), m);
        }
        assert_eq!(SslMode::parse("verify_full"), None);
        let cfg: PgConfig = "postgres://u@db.example.com/app".parse().unwrap();
        assert_eq!(cfg.tls().effective_mode(), SslMode::Prefer);
        assert_eq!(cfg.get_dbname(), Some("app"));
    }

    #[test]
    fn configuration_wins_over_the_uri_parameter_by_parameter() {
        let over = TlsSettings::from_params([("sslmode", "require")]).unwrap();
        let cfg = PgConfig::parse(
            "postgres://u@h/db?sslmode=disable&application_name=a",
            &over,
        )
        .unwrap();
        assert_eq!(cfg.tls().mode, Some(SslMode::Require));
        assert_eq!(cfg.get_application_name(), Some("a"));
    }

    #[test]
    fn bad_tls_settings_are_refused_with_their_reason() {
        let e = PgConfig::parse("postgres://h/db?sslmode=verify", &Default::default()).unwrap_err();
        assert!(e.contains("not one of"), "{e}");
        let e = PgConfig::parse(
            "postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            &Default::default(),
        )
        .unwrap_err();
        assert!(
            e.contains("sslrootcert /nonexistent/ca.pem: cannot be read"),
            "{e}"
        );
        let e = PgConfig::parse("postgres://h/db?sslcert=/x.pem", &Default::default()).unwrap_err();
        assert_eq!(e, "sslcert needs sslkey");
        let not_pem = std::env::temp_dir().join(format!("athena-not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let e = PgConfig::parse(
            &format!(
                "postgres://h/db?sslmode=verify-ca&sslrootcert={}",
                not_pem.display()
            ),
            &Default::default(),
        )
        .unwrap_err();
        std::fs::remove_file(&not_pem).unwrap();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn unverified_remote_hosts_are_named_and_loopback_is_not() {
        let remote: PgConfig = "postgres://db.example.com/app?sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(
            remote.unverified_remote_host().as_deref(),
            Some("db.example.com")
        );
        for local in [
            "postgres://127.0.0.1/app",
            "postgres://localhost/app?sslmode=require",
            "postgres://[::1]/app",
            "host=/var/run/postgresql dbname=app",
        ] {
            let cfg: PgConfig = local.parse().unwrap();
            assert_eq!(cfg.unverified_remote_host(), None, "{local}");
        }
        let verified = PgConfig::parse(
            "postgres://db.example.com/app?sslmode=verify-full&sslrootcert=system",
            &Default::default(),
        );
        // A machine without a CA bundle refuses `system`; with one, nothing is unverified.
        if let Ok(v) = verified {
            assert_eq!(v.unverified_remote_host(), None);
        }
    }

    #[test]
    fn the_systems_roots_mean_verify_full_as_in_libpq() {
        let system = TlsSettings::from_params([("sslrootcert", "system")]).unwrap();
        assert_eq!(system.effective_mode(), SslMode::VerifyFull);
        let e = PgConfig::parse(
            "postgres://h/db?sslmode=require&sslrootcert=system",
            &TlsSettings::default(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "sslmode=require may not be used with sslrootcert=system (use verify-full), as in libpq"
        );
    }

    #[test]
    fn the_tools_get_the_same_settings_as_libpq_variables() {
        let cfg =
            PgConfig::parse("postgres://h/db?sslmode=require", &TlsSettings::default()).unwrap();
        assert_eq!(cfg.libpq_env(), vec![("PGSSLMODE", "require".to_string())]);
    }
}
