//! The showcase: Waypost's reference app, implementing `shared/showcase-contract.md`.
//!
//! `src/app` holds the routes; the modules here hold what routes share: settings, state, and
//! the data model.

pub mod config;
pub mod contact;
pub mod pagination;
pub mod posts;
pub mod state;
pub mod timestamp;
pub mod users;

mod routes {
    waypost::include_routes!();
}

pub use config::Config;
pub use routes::ROUTES;
pub use state::AppState;

/// The migrations under `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Everything needed to serve: connects the database, applies migrations, builds the router.
///
/// # Errors
/// The database cannot be opened or migrated.
pub async fn build(config: Config) -> Result<waypost::App, StartError> {
    let database = waypost::database::connect(&config.database_url).await?;
    MIGRATOR.run(&database).await?;
    Ok(app(AppState::new(config, database)?))
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
    #[error(transparent)]
    Database(#[from] waypost::database::DatabaseError),
    /// A migration failed.
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
