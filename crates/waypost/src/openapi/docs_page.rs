//! The interactive API docs page: one self-contained HTML file (styles and script inline, no CDN,
//! nothing fetched at build time) that reads the OpenAPI document and lets a person try each
//! operation from the browser.

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

const PAGE: &str = include_str!("docs.html");

/// The docs page, reading the document from `spec_url`.
#[derive(Clone, Debug)]
pub struct DocsPage {
    spec_url: String,
}

impl DocsPage {
    /// A page that loads its document from `spec_url` (e.g. `/api/openapi.json`).
    pub fn new(spec_url: impl Into<String>) -> Self {
        Self {
            spec_url: spec_url.into(),
        }
    }
}

impl IntoResponse for DocsPage {
    fn into_response(self) -> Response {
        let spec = serde_json::to_string(&self.spec_url).unwrap_or_else(|_| "\"\"".into());
        // `</` cannot occur in a JSON string we emit inside <script>: escape it anyway.
        let html = PAGE.replace("\"__SPEC_URL__\"", &spec.replace("</", "<\\/"));
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                    ),
                ),
            ],
            html,
        )
            .into_response()
    }
}
