//! Route discovery and code generation for Waypost apps.
//!
//! A folder tree of `route.rs` files under an app's `src/app` is its API. This crate [`scan`]s
//! that tree with syn into a [`RouteTable`], checks it (every mistake is reported at once, each
//! naming its files), and generates the module tree, the `ROUTES` table and `router(state)` that
//! the app includes with `waypost::include_routes!()`. The app's `build.rs` drives it through
//! [`Builder`]; the `waypost` CLI reads the same table to list routes without compiling.
//! [`typescript`] turns the app's OpenAPI document into a typed TypeScript client.
//!
//! # Example
//! ```no_run
//! // build.rs
//! waypost_build::Builder::new().state_type("crate::AppState").build();
//! ```
#![warn(missing_docs)]

mod builder;
mod errors;
mod generate;
mod route_file;
mod scan;
mod segment;
mod settings;
mod shape;
mod table;
pub mod typescript;

pub use builder::{Builder, GENERATED_FILE};
pub use errors::{ScanError, ScanErrors};
pub use scan::scan;
pub use segment::{ParamKind, Segment, SegmentError};
pub use settings::{Evaluated, RateLimitSetting, RouteSettings, DEFAULT_BODY_LIMIT};
pub use shape::{AuthKind, HandlerShape, RequestBody, ResponseShape};
pub use table::{ConfigCall, ConfigExpr, Handler, Method, Middleware, Param, Route, RouteTable};
