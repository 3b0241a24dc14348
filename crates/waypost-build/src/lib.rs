//! Route discovery and code generation for Waypost apps.
//!
//! A folder tree of `route.rs` files under an app's `src/app` is its API. This crate [`scan`]s
//! that tree with syn into a [`RouteTable`], checks it (every mistake is reported at once, each
//! naming its files), and generates the module tree, the `ROUTES` table and `router(state)` that
//! the app includes with `waypost::include_routes!()`. The app's `build.rs` drives it through
//! [`Builder`]; the `waypost` CLI reads the same table to list routes without compiling.
//! [`typescript`] turns the app's OpenAPI document into a typed TypeScript client.
//!
//! # The grammar
//! | folder under `src/app` | in the URL |
//! |---|---|
//! | `posts` | the segment `posts` |
//! | `[id]` | a parameter, `{id}`: one segment, a field of the route's generated `Params` |
//! | `[...slug]` | a catch-all, `{*slug}`: one or more segments; the last folder of its routes |
//! | `[[...path]]` | an optional catch-all: the route answers both without (`/x`) and with (`/x/{*path}`) the rest |
//! | `(group)` | nothing: a way to organise folders |
//! | `_private` | never routed, nor anything below it |
//!
//! In any folder, `route.rs` exports the handlers —
//! `pub async fn get|post|put|patch|delete|head|options`, ordinary axum handlers — and
//! optionally `pub const CONFIG: RouteConfig`; `middleware.rs` exports `pub async fn middleware(…)`, which wraps every route below it, outermost folder first.
//! Parameter names must be Rust identifiers; two sibling parameter folders must share a name.
//!
//! # Build errors
//! Every mistake is a [`ScanError`], and all of them are reported together, each naming the
//! files involved: two files for one URL, sibling parameters with different names, a catch-all
//! that is not last, a `route.rs` with no handler, a handler that is not `pub`, not `async`, or
//! that the router could not mount (behind `#[cfg]`, generic, taking `self`, …), a re-exported
//! handler or `CONFIG`, a folder name outside the grammar, a symlink loop.
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
pub use settings::{
    Evaluated, RateLimitSetting, RouteSettings, DEFAULT_BODY_LIMIT, DEFAULT_MAX_FIELDS,
};
pub use shape::{AuthKind, HandlerShape, PathShape, RequestBody, ResponseShape};
pub use table::{ConfigCall, ConfigExpr, Handler, Method, Middleware, Param, Route, RouteTable};
