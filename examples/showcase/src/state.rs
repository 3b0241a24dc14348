//! The state every handler can reach with `State<AppState>`.

use std::sync::Arc;

use waypost::{config::ConfigError, database::Database, security::Security};

use crate::Config;

/// Shared, cheaply cloned app state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    database: Database,
    security: Arc<Security>,
}

impl AppState {
    /// State over an open database, with the security settings of `config`.
    ///
    /// # Errors
    /// The security settings are inconsistent.
    pub fn new(config: Config, database: Database) -> Result<Self, ConfigError> {
        let security = Arc::new(Security::new(config.security.clone())?);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                database,
                security,
            }),
        })
    }

    /// The database pool.
    pub fn db(&self) -> &Database {
        &self.inner.database
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Sessions, tokens, CSRF, CORS and rate limits (the same the layers use).
    pub fn security(&self) -> &Arc<Security> {
        &self.inner.security
    }
}
