//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every route, built from the route table
//! and the handlers' types.

use waypost::openapi::OpenApi;

/// The document.
pub async fn get() -> &'static OpenApi {
    // The app's one copy, not a clone: it is serialized once and each answer shares the bytes.
    crate::openapi()
}
