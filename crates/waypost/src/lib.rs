//! Waypost: a folder of `route.rs` files is the API — typed, fast, and secure by default.
//!
//! An app keeps its routes under `src/app/`; its `build.rs` calls `waypost_build`, which writes
//! the route table and a `router(state)` function; `main` serves it with [`App`]. Every
//! handler is an ordinary axum handler, so axum extractors and tower layers work as usual, and
//! everything that goes wrong leaves as one JSON error shape ([`ApiError`]).
//!
//! ```ignore
//! // src/app/api/hello/route.rs
//! use waypost::extract::Json;
//!
//! pub async fn get() -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "message": "Hello" }))
//! }
//! ```
//!
//! Cargo features: `sqlite` (default) and `postgres` for [`database`]; `redis` for the
//! [`store`]s shared between machines; `openapi` (default) for the OpenAPI document the
//! generated `routes::openapi()` builds, and its docs page; `websocket` (default) for
//! WebSocket routes (`websocket`).

#![warn(missing_docs)]

pub mod app;
pub mod body_pace;
pub mod config;
mod connection_deadlines;
mod context;
pub mod credits;
pub mod database;
pub mod error;
pub mod extract;
pub mod layers;
mod leftover_work;
#[cfg(feature = "openapi")]
pub mod openapi;
mod protocol_errors;
pub mod proxy;
pub mod request_id;
pub mod response;
mod route_config;
pub mod routing;
pub mod security;
mod short_quotes;
pub mod shutdown;
pub mod store;
pub mod stream;
pub mod testing;
pub mod upload;
pub mod webhook;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use app::{init_tracing, App};
pub use axum;
pub use error::ApiError;
pub use request_id::RequestId;
pub use route_config::{
    RateLimit, RateLimitSetting, RouteConfig, DEFAULT_BODY_LIMIT, DEFAULT_MAX_FIELDS,
};
/// The logging Waypost's own lines go through (`waypost::tracing::info!(…)`): an app logs with
/// the request's id in its lines without a dependency of its own.
pub use tracing;

/// What handlers return: a value, or the one error shape.
pub type ApiResult<T> = Result<T, ApiError>;

/// Includes the route table and router that `waypost_build` generated for this crate.
///
/// ```ignore
/// mod routes {
///     waypost::include_routes!();
/// }
/// ```
#[macro_export]
macro_rules! include_routes {
    () => {
        include!(concat!(env!("OUT_DIR"), "/waypost_routes.rs"));
    };
}

#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "openapi")]
    pub use schemars;
    pub use serde;
}

/// The generated code's OpenAPI items (the operations table and `openapi()`), kept with the
/// `openapi` feature and left out without it.
#[cfg(feature = "openapi")]
#[doc(hidden)]
#[macro_export]
macro_rules! __openapi_items {
    ($($item:item)*) => {
        $($item)*
    };
}

/// The generated code's OpenAPI items (the operations table and `openapi()`), kept with the
/// `openapi` feature and left out without it.
#[cfg(not(feature = "openapi"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __openapi_items {
    ($($item:item)*) => {};
}
