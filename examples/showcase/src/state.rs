//! The state every handler can reach with `State<AppState>`.

use std::sync::Arc;

use waypost::database::Database;

use crate::Config;

/// Shared, cheaply cloned app state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    database: Database,
}

impl AppState {
    /// State over an open database.
    pub fn new(config: Config, database: Database) -> Self {
        Self {
            inner: Arc::new(Inner { config, database }),
        }
    }

    /// The database pool.
    pub fn db(&self) -> &Database {
        &self.inner.database
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
}
