//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every route, built from the route table
//! and the handlers' types.

use waypost::openapi::OpenApi;

/// The document.
pub async fn get() -> OpenApi {
    crate::openapi().clone()
}
