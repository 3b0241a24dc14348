//! The showcase: Waypost's reference app, implementing `shared/showcase-contract.md`.
//!
//! `src/app` holds the routes; the modules here hold what routes share: settings, state, and
//! the data model.

pub mod chat;
pub mod config;
pub mod contact;
pub mod files;
pub mod generate;
pub mod pagination;
pub mod posts;
pub mod rules;
pub mod state;
pub mod timestamp;
pub mod users;
pub mod weather;

mod routes {
    waypost::include_routes!();
}

pub use config::Config;
pub use routes::ROUTES;
pub use state::AppState;
use waypost::{security::Security, store::RedisStores, upload::UploadDir, ApiError};

/// The migrations under `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Everything needed to serve: connects the database, applies migrations, builds the router.
///
/// # Errors
/// Redis, the upload directory or the database cannot be reached, or the database cannot be
/// migrated.
pub async fn build(config: Config) -> Result<waypost::App, StartError> {
    // Redis and the upload directory are reached first: a wrong REDIS_URL or UPLOAD_DIR stops
    // start-up before the database is created or migrated.
    let mut security = Security::new(config.security.clone())?;
    if let Some(url) = &config.redis_url {
        let stores = RedisStores::connect(url)
            .await
            .map_err(|source| StartError::Redis { source })?
            .with_prefix(config.redis_key_prefix.clone());
        security = stores.install(security);
    }
    let uploads = UploadDir::open(&config.upload_dir)
        .await
        .map_err(|source| StartError::Uploads {
            path: config.upload_dir.display().to_string(),
            source,
        })?;
    let database = waypost::database::connect(&config.database_url).await?;
    MIGRATOR.run(&database).await?;
    let ordered = posts::fill_title_order(&database)
        .await
        .map_err(StartError::Backfill)?;
    if ordered > 0 {
        tracing::info!(posts = ordered, "gave earlier posts their title order");
    }
    warn_of_unclaimed_admin_addresses(&database, &config.admin_emails).await;
    // Credits an earlier run (or another instance) could not give back before it stopped.
    users::credit_ledger().keep_releasing_stale_holds(
        database.clone(),
        users::stale_hold_age(config.generate_timeout),
    );
    Ok(app(AppState::with_security(
        config, database, uploads, security,
    )))
}

/// Logs a warning for each `ADMIN_EMAILS` address that has no account yet: registration does
/// not prove that its caller owns an address, so whoever registers one of those first becomes
/// an admin. Its owner should register it before the API is open to others.
async fn warn_of_unclaimed_admin_addresses(
    database: &waypost::database::Database,
    admins: &[String],
) {
    for address in admins {
        match users::is_email_taken(database, address).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                address = %address,
                "ADMIN_EMAILS lists an address without an account: whoever registers it first \
                 becomes an admin, so register it now"
            ),
            Err(error) => tracing::warn!(%error, "could not look up the ADMIN_EMAILS accounts"),
        }
    }
}

/// The app over ready state: the generated router with the server settings of its config.
pub fn app(state: AppState) -> waypost::App {
    let server = state.config().server.clone();
    let security = state.security().clone();
    waypost::App::new(routes::router(state))
        .with_server_config(server)
        .with_security(security)
}

/// Why the showcase could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] waypost::config::ConfigError),
    /// The database could not be opened.
    #[error("DATABASE_URL: {0}")]
    Database(#[from] waypost::database::DatabaseError),
    /// Filling in what a migration added failed.
    #[error("DATABASE_URL: filling in the posts' title order failed")]
    Backfill(#[source] ApiError),
    /// A migration failed.
    #[error("DATABASE_URL: migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `REDIS_URL` is set and Redis cannot be reached.
    #[error("REDIS_URL: {source}")]
    Redis {
        /// What went wrong.
        source: waypost::store::StoreError,
    },
    /// The upload folder cannot be created.
    #[error("UPLOAD_DIR {path} cannot be created: {source}")]
    Uploads {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The JWT to present to the chat backend for `identity`: the caller's own bearer token when
/// they used one, else a fresh token for them (a session-cookie caller has none to forward).
///
/// # Errors
/// Signing failed.
pub fn chat_bearer(
    state: &AppState,
    identity: &waypost::security::Identity,
    headers: &waypost::axum::http::HeaderMap,
) -> Result<String, waypost::ApiError> {
    if identity.credential == waypost::security::Credential::Bearer {
        if let Some(token) = headers
            .get(waypost::axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .map(|(_, token)| token.trim().to_owned())
        {
            return Ok(token);
        }
    }
    state.security().jwt().issue(&identity.user_id)
}

/// The OpenAPI document of the showcase, built at the first call and kept (by the generated
/// `routes::openapi`).
pub fn openapi() -> &'static waypost::openapi::OpenApi {
    routes::openapi()
}
