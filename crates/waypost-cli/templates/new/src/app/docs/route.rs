//! `GET /docs`: the interactive API docs page, reading `/api/openapi.json` (self-contained; no
//! CDN).

use waypost::openapi::DocsPage;

/// The page.
pub async fn get() -> DocsPage {
    DocsPage::new("/api/openapi.json")
}
