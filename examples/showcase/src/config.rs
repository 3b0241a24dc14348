//! The showcase's settings, read once from the environment at start-up.

use std::{path::PathBuf, time::Duration};

use url::Url;
use waypost::{
    config::{ConfigError, Env, ServerConfig},
    proxy::parse_backend_url,
    security::SecuritySettings,
};

/// The largest `UPLOAD_MAX_BYTES` may be set to.
pub const UPLOAD_MAX_BYTES_CEILING: u64 = 64 * 1024 * 1024;

/// Room in an upload's body beside the file itself: the multipart boundaries and part headers,
/// and the small fields a form sends along (a CSRF token, a description).
pub const UPLOAD_ENVELOPE_BYTES: u64 = 1024 * 1024;

/// The body limit of `/api/upload`: the largest file `UPLOAD_MAX_BYTES` can allow, with its
/// envelope — so a file of exactly the configured size always fits.
pub const UPLOAD_ROUTE_LIMIT: usize = (UPLOAD_MAX_BYTES_CEILING + UPLOAD_ENVELOPE_BYTES) as usize;

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
    /// `ADMIN_EMAILS`: addresses (lower-cased) that register as admins. Registration does not
    /// prove the address is the caller's: register each before the API is open to others (the
    /// showcase warns at start-up of any still without an account).
    pub admin_emails: Vec<String>,
    /// `UPLOAD_DIR` (`data/uploads`).
    pub upload_dir: PathBuf,
    /// `UPLOAD_MAX_BYTES` (5 MiB, at most 64 MiB).
    pub upload_max_bytes: u64,
    /// `STRIPE_WEBHOOK_SECRET`; webhooks answer 503 without it.
    pub stripe_webhook_secret: Option<String>,
    /// `GENERATE_BACKEND_URL`; the built-in generator answers without it.
    pub generate_backend_url: Option<Url>,
    /// `GENERATE_TIMEOUT` (10s): how long the generator may take.
    pub generate_timeout: Duration,
    /// `TOOL_DAILY_LIMIT` (3) uses per tool per day; admins are unlimited.
    pub tool_daily_limit: u64,
    /// `WEATHER_API_URL` (an OpenWeather-style endpoint, may carry its own query such as
    /// `appid`); `/api/weather` answers 503 without it.
    pub weather_api_url: Option<Url>,
    /// `CHAT_BACKEND_URL`; the built-in assistant answers without it.
    pub chat_backend_url: Option<Url>,
    /// `CHAT_TIMEOUT` (30s): the longest wait for the chat backend between two reads.
    pub chat_timeout: Duration,
    /// `REDIS_URL`: keep sessions and rate-limit counters in Redis, shared by every instance;
    /// in process memory without it.
    pub redis_url: Option<String>,
    /// `REDIS_KEY_PREFIX` (`waypost:`): the start of every key, so apps can share a server.
    pub redis_key_prefix: String,
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
        let admin_emails = env.list("ADMIN_EMAILS");
        // The rule registration applies to the address, so every listed admin can sign up.
        let not_an_address = |email: &&String| garde::rules::email::parse_email(email).is_err();
        if let Some(bad) = admin_emails.iter().find(not_an_address) {
            return Err(ConfigError::invalid(
                "ADMIN_EMAILS",
                bad,
                "expected email addresses, comma-separated",
            ));
        }
        let signup_credits: i64 = env.parse_or("SIGNUP_CREDITS", 5)?;
        if !(0..=waypost::credits::MAX_BALANCE).contains(&signup_credits) {
            // Above the largest balance a ledger holds, a new account's credits would reach a
            // JavaScript client rounded, and every later grant would be refused.
            return Err(ConfigError::invalid(
                "SIGNUP_CREDITS",
                &signup_credits.to_string(),
                format!("must be between 0 and {}", waypost::credits::MAX_BALANCE),
            ));
        }
        let upload_max_bytes: u64 = env.parse_or("UPLOAD_MAX_BYTES", 5 * 1024 * 1024)?;
        if upload_max_bytes == 0 || upload_max_bytes > UPLOAD_MAX_BYTES_CEILING {
            return Err(ConfigError::invalid(
                "UPLOAD_MAX_BYTES",
                &upload_max_bytes.to_string(),
                format!("must be between 1 and {UPLOAD_MAX_BYTES_CEILING}"),
            ));
        }
        let weather_api_url = match env.get("WEATHER_API_URL") {
            None => None,
            Some(raw) => {
                let url = Url::parse(raw.trim())
                    .map_err(|e| ConfigError::invalid("WEATHER_API_URL", &raw, e.to_string()))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::invalid(
                        "WEATHER_API_URL",
                        &raw,
                        "expected an http(s) URL",
                    ));
                }
                Some(url)
            }
        };
        let backend = |name: &str| {
            env.get(name)
                .map(|raw| parse_backend_url(name, &raw))
                .transpose()
        };
        Ok(Self {
            server: ServerConfig::from_env(env)?,
            security: SecuritySettings::from_env(env)?,
            database_url,
            signup_credits,
            upload_dir: env
                .get("UPLOAD_DIR")
                .map_or_else(|| PathBuf::from("data/uploads"), PathBuf::from),
            upload_max_bytes,
            stripe_webhook_secret: env.get("STRIPE_WEBHOOK_SECRET"),
            generate_backend_url: backend("GENERATE_BACKEND_URL")?,
            generate_timeout: env.duration("GENERATE_TIMEOUT", Duration::from_secs(10))?,
            tool_daily_limit: env.parse_or("TOOL_DAILY_LIMIT", 3)?,
            weather_api_url,
            chat_backend_url: backend("CHAT_BACKEND_URL")?,
            chat_timeout: env.duration("CHAT_TIMEOUT", Duration::from_secs(30))?,
            redis_url: env.get("REDIS_URL").filter(|url| !url.trim().is_empty()),
            redis_key_prefix: env
                .get("REDIS_KEY_PREFIX")
                .unwrap_or_else(|| waypost::store::redis::DEFAULT_PREFIX.to_owned()),
            admin_emails: admin_emails
                .iter()
                .map(|email| crate::users::normalize_email(email))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admins(value: &str) -> Result<Config, ConfigError> {
        Config::from(&Env::from_pairs([("ADMIN_EMAILS", value.to_owned())]))
    }

    #[test]
    fn unset_variables_take_the_contracts_defaults() {
        let config = Config::from(&Env::from_pairs(Vec::<(String, String)>::new())).unwrap();
        assert_eq!(config.server.port, 3000);
        assert_eq!(config.server.host.to_string(), "127.0.0.1");
        assert_eq!(config.database_url, "sqlite://data/showcase.db");
        assert_eq!(config.redis_url, None);
        assert_eq!(config.signup_credits, 5);
        assert_eq!(config.upload_dir, PathBuf::from("data/uploads"));
        assert_eq!(config.upload_max_bytes, 5 * 1024 * 1024);
        assert_eq!(config.tool_daily_limit, 3);
        assert!(config.admin_emails.is_empty());
        assert_eq!(config.stripe_webhook_secret, None);
        assert_eq!(config.generate_backend_url, None);
        assert_eq!(config.weather_api_url, None);
        assert_eq!(config.chat_backend_url, None);
    }

    #[test]
    fn every_bad_value_stops_start_up_naming_its_variable() {
        for (variable, bad) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("HOST", "not a host"),
            ("DATABASE_URL", "mysql://localhost/db"),
            ("CORS_ORIGINS", "*"),
            ("CORS_ORIGINS", "not-an-origin"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("TRUSTED_PROXIES", "proxy.example.com"),
            ("RATE_LIMIT_DEFAULT", "lots"),
            ("RATE_LIMIT_DEFAULT", "0/60s"),
            ("SIGNUP_CREDITS", "-1"),
            ("SIGNUP_CREDITS", "five"),
            ("SIGNUP_CREDITS", "9007199254740992"),
            ("ADMIN_EMAILS", "boss"),
            ("UPLOAD_MAX_BYTES", "0"),
            ("UPLOAD_MAX_BYTES", "5MB"),
            ("GENERATE_BACKEND_URL", "ftp://generator"),
            ("TOOL_DAILY_LIMIT", "-3"),
            ("TOOL_DAILY_LIMIT", "three"),
            ("WEATHER_API_URL", "not a url"),
            ("CHAT_BACKEND_URL", "drupal"),
            ("WAYPOST_SECURE_COOKIES", "perhaps"),
        ] {
            let env = Env::from_pairs([(variable, bad.to_owned())]);
            let error = match Config::from(&env) {
                Ok(_) => panic!("{variable}={bad} was accepted"),
                Err(error) => error.to_string(),
            };
            assert!(error.contains(variable), "{variable}={bad}: {error}");
        }
    }

    #[test]
    fn admin_emails_must_be_addresses_and_the_error_names_the_variable() {
        let config = admins(" Boss@Example.com , root@example.com,,").unwrap();
        assert_eq!(
            config.admin_emails,
            ["boss@example.com", "root@example.com"]
        );
        for bad in [
            "notanemail",
            "a@b.com,c",
            "@example.com",
            "a@",
            "a@b@c",
            "a b@c.d",
        ] {
            let error = admins(bad).unwrap_err().to_string();
            assert!(error.contains("ADMIN_EMAILS"), "{bad}: {error}");
        }
    }
}
