//! {{name}}: a Waypost app. Every `route.rs` under `src/app` is an endpoint; `build.rs` turns
//! the folder tree into the router included below.

mod routes {
    waypost::include_routes!();
}

pub use routes::ROUTES;

/// What every handler can reach with `State<AppState>`: database pools, clients, settings.
#[derive(Clone, Debug, Default)]
pub struct AppState {}

/// The app's router over `state`, ready to serve with [`waypost::App`].
pub fn router(state: AppState) -> waypost::axum::Router {
    routes::router(state)
}

/// The app's OpenAPI document, built at the first call and kept (by the generated
/// `routes::openapi`).
pub fn openapi() -> &'static waypost::openapi::OpenApi {
    routes::openapi()
}
