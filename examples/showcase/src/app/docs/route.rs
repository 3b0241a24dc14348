//! `GET /docs`: the interactive API docs page (self-contained; no CDN).

use waypost::openapi::DocsPage;

/// The page, reading `/api/openapi.json`.
pub async fn get() -> DocsPage {
    DocsPage::new("/api/openapi.json")
}
