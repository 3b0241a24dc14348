//! The showcase's settings, read once from the environment at start-up.

use waypost::config::{ConfigError, Env, ServerConfig};

/// Every setting of the showcase (see the contract's "Configuration" section).
#[derive(Clone, Debug)]
pub struct Config {
    /// `HOST`, `PORT` and the server's limits.
    pub server: ServerConfig,
    /// `DATABASE_URL` (`sqlite://data/showcase.db`).
    pub database_url: String,
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// A variable set to a value that does not parse; the message names it.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    /// Reads `env`.
    ///
    /// # Errors
    /// A variable set to a value that does not parse; the message names it.
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let database_url = env
            .get("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://data/showcase.db".to_owned());
        if waypost::database::Engine::of(&database_url).is_none() {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                &database_url,
                "expected sqlite://… or postgres://…",
            ));
        }
        Ok(Self {
            server: ServerConfig::from_env(env)?,
            database_url,
        })
    }
}
