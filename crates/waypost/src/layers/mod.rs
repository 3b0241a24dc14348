//! What Waypost puts around every app ([`FrontLayer`]) and every route ([`Guarded`] handlers, or
//! a [`RouteLayer`]).

mod caching;
mod front;
pub mod idempotency;
mod path_normalization;
mod route;

#[cfg(feature = "websocket")]
pub(crate) use front::panic_message;
pub use front::{Front, FrontLayer, INTERNAL_HEADER_PREFIX};
pub use route::{Guarded, GuardedFuture, RouteGuard, RouteLayer, RouteService};
