//! The logging database as the registry sees it: migrated at start, in the background, retried
//! until it succeeds, so a logging database that is down at start never stops the gateway.

use crate::pg::PgConfig as Config;

use crate::backend::postgres::PostgresSpec;

/// Where the logging database is and how to bring it up to date.
#[derive(Clone)]
pub struct LoggingSpec {
    /// Holds the password: never log it.
    pub config: Config,
    pub create_database: bool,
    /// Migrate (and create) it at start; otherwise the operator provisions it and the registry
    /// only follows its catalog.
    pub migrate: bool,
    /// Pool settings for clients defined only in the catalog (its name and connection settings
    /// are replaced by the row's).
    pub client_template: PostgresSpec,
    /// athena_rs 2.0.2's logging tables (the same database outside Athena's schema), imported
    /// when a start applies the first migration. Holds the password: never log it.
    pub import_2_0_2: Option<Config>,
}

impl std::fmt::Debug for LoggingSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggingSpec")
            .field("dbname", &self.config.get_dbname())
            .field("create_database", &self.create_database)
            .field("migrate", &self.migrate)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LoggingState {
    /// Not migrated at start (the operator provisions it); its catalog is still followed.
    #[default]
    Disabled,
    /// Migrating, or waiting to retry after `attempts` failures.
    Pending {
        attempts: u32,
        last_error: Option<String>,
    },
    /// Up to date; `applied` lists what this start applied.
    Ready { applied: Vec<String> },
}

impl LoggingState {
    pub fn as_str(&self) -> &'static str {
        match self {
            LoggingState::Disabled => "disabled",
            LoggingState::Pending { .. } => "pending",
            LoggingState::Ready { .. } => "ready",
        }
    }

    pub fn last_error(&self) -> Option<&str> {
        match self {
            LoggingState::Pending { last_error, .. } => last_error.as_deref(),
            LoggingState::Disabled | LoggingState::Ready { .. } => None,
        }
    }
}
