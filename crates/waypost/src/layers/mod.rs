//! The tower layers Waypost puts around every app ([`FrontLayer`]) and every route ([`RouteLayer`]).

mod front;
mod route;

pub use front::{Front, FrontLayer, INTERNAL_HEADER_PREFIX};
pub use route::{RouteLayer, RouteService};
