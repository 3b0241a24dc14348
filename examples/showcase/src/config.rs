//! The showcase's settings, read once from the environment at start-up.

use waypost::{
    config::{ConfigError, Env, ServerConfig},
    security::SecuritySettings,
};

/// Every setting of the showcase (see the contract's "Configuration" section).
#[derive(Clone, Debug)]
pub struct Config {
    /// `HOST`, `PORT` and the server's limits.
    pub server: ServerConfig,
    /// `CORS_ORIGINS`, `TRUSTED_PROXIES`, `RATE_LIMIT_DEFAULT`, `JWT_SECRET`,
    /// `WAYPOST_SECURE_COOKIES`.
    pub security: SecuritySettings,
    /// `DATABASE_URL` (`sqlite://data/showcase.db`).
    pub database_url: String,
    /// `SIGNUP_CREDITS` (5): credits a new account starts with.
    pub signup_credits: i64,
    /// `ADMIN_EMAILS`: addresses (lower-cased) that register as admins.
    pub admin_emails: Vec<String>,
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
        let signup_credits: i64 = env.parse_or("SIGNUP_CREDITS", 5)?;
        if signup_credits < 0 {
            return Err(ConfigError::invalid(
                "SIGNUP_CREDITS",
                &signup_credits.to_string(),
                "must not be negative",
            ));
        }
        Ok(Self {
            server: ServerConfig::from_env(env)?,
            security: SecuritySettings::from_env(env)?,
            database_url,
            signup_credits,
            admin_emails: env
                .list("ADMIN_EMAILS")
                .iter()
                .map(|email| crate::users::normalize_email(email))
                .collect(),
        })
    }
}
