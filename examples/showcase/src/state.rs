//! The state every handler can reach with `State<AppState>`.

use std::{sync::Arc, time::Duration};

use waypost::{
    config::ConfigError,
    database::Database,
    proxy::{upstream_client, TokenProxy, TokenRoutes},
    security::Security,
    upload::UploadDir,
};

use crate::Config;

/// How long a chat backend token is reused.
const CHAT_TOKEN_TTL: Duration = Duration::from_secs(20 * 60);

/// Drupal's Deep Chat endpoints.
const DEEPCHAT: TokenRoutes = TokenRoutes {
    session_path: "/api/deepchat/session",
    endpoint_path: "/api/deepchat",
};

/// Shared, cheaply cloned app state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    database: Database,
    security: Arc<Security>,
    uploads: UploadDir,
    upstream: reqwest::Client,
    chat: Option<TokenProxy>,
}

impl AppState {
    /// State over an open database and upload folder, with the settings of `config`.
    ///
    /// # Errors
    /// The security settings are inconsistent.
    pub fn new(
        config: Config,
        database: Database,
        uploads: UploadDir,
    ) -> Result<Self, ConfigError> {
        let security = Security::new(config.security.clone())?;
        Ok(Self::with_security(config, database, uploads, security))
    }

    /// The same, with `security` made beforehand (its stores in Redis, say).
    pub fn with_security(
        config: Config,
        database: Database,
        uploads: UploadDir,
        security: Security,
    ) -> Self {
        let security = Arc::new(security);
        let chat = config
            .chat_backend_url
            .clone()
            .map(|base| TokenProxy::new(base, DEEPCHAT, CHAT_TOKEN_TTL, config.chat_timeout));
        Self {
            inner: Arc::new(Inner {
                upstream: upstream_client(config.generate_timeout.max(Duration::from_secs(5))),
                config,
                database,
                security,
                uploads,
                chat,
            }),
        }
    }

    /// Where uploads are stored.
    pub fn uploads(&self) -> &UploadDir {
        &self.inner.uploads
    }

    /// The client for external backends (no redirects, timeouts).
    pub fn upstream(&self) -> &reqwest::Client {
        &self.inner.upstream
    }

    /// The chat backend proxy, when `CHAT_BACKEND_URL` is set.
    pub fn chat(&self) -> Option<&TokenProxy> {
        self.inner.chat.as_ref()
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
