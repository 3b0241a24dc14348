//! The route table: everything the scanner learned about an app's routes, as plain data.
//!
//! The code generator, `waypost routes` and the OpenAPI document all read this one structure, so
//! it keeps what each handler's signature says (argument and return types as written, docs)
//! rather than only what the router needs.

use std::{fmt, path::PathBuf};

use crate::{segment::ParamKind, shape::HandlerShape};

/// Every route and middleware file found under an app's `src/app`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    /// The app crate's root; `file` paths are relative to it.
    pub crate_root: PathBuf,
    /// The scanned folder, usually `<crate_root>/src/app`.
    pub app_dir: PathBuf,
    /// The routes, sorted by pattern: at each level static segments before parameters before
    /// catch-alls, then alphabetically.
    pub routes: Vec<Route>,
    /// Every `middleware.rs` outside `_private` folders, in folder order, including those that
    /// wrap no route (they are still compiled).
    pub middleware: Vec<Middleware>,
}

/// One `route.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The URL pattern shown to people: `/api/posts/{id}`, `/api/docs/{*slug}`.
    pub pattern: String,
    /// The axum paths the route is mounted at; an optional catch-all adds the path without its
    /// tail (`/api/files` beside `/api/files/{*path}`).
    pub paths: Vec<String>,
    /// The file, relative to the crate root with `/` separators:
    /// `src/app/api/posts/[id]/route.rs`.
    pub file: String,
    /// The generated module of the route's folder, below the generated `app` module:
    /// `["api", "posts", "param_id"]`. Its `Params` type and `route` module live there.
    pub module_path: Vec<String>,
    /// The path parameters, in URL order.
    pub params: Vec<Param>,
    /// The exported handlers, in the order GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS.
    pub handlers: Vec<Handler>,
    /// The `middleware.rs` files that wrap this route, outermost first.
    pub middleware: Vec<Middleware>,
    /// The `pub const CONFIG` (or `pub static CONFIG`) initializer, when the file declares one.
    pub config: Option<ConfigExpr>,
}

/// One path parameter of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name between the brackets; also the field name in the generated `Params`.
    pub name: String,
    /// How many URL segments it takes.
    pub kind: ParamKind,
}

/// An HTTP method a `route.rs` exports a handler for, named by the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `pub async fn get`
    Get,
    /// `pub async fn post`
    Post,
    /// `pub async fn put`
    Put,
    /// `pub async fn patch`
    Patch,
    /// `pub async fn delete`
    Delete,
    /// `pub async fn head`
    Head,
    /// `pub async fn options`
    Options,
}

impl Method {
    /// Every method, in the order handlers are listed and mounted.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Head,
        Method::Options,
    ];

    /// The method whose handler function is called `name` (`"get"`).
    pub fn from_fn_name(name: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|method| method.fn_name() == name)
    }

    /// The handler function's name, which is also the axum `MethodRouter` method: `"get"`.
    pub const fn fn_name(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
            Method::Head => "head",
            Method::Options => "options",
        }
    }

    /// The method as it stands on the wire: `"GET"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }

    /// The variant of the runtime's `waypost::routing::Method`: `"Get"`.
    pub const fn variant_name(self) -> &'static str {
        match self {
            Method::Get => "Get",
            Method::Post => "Post",
            Method::Put => "Put",
            Method::Patch => "Patch",
            Method::Delete => "Delete",
            Method::Head => "Head",
            Method::Options => "Options",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One exported handler, its signature as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// The method it answers.
    pub method: Method,
    /// The argument types as written, e.g. `["State<AppState>", "Json<NewPost>"]`.
    pub arguments: Vec<String>,
    /// The return type as written, e.g. `"Result<Json<Post>, ApiError>"`; `"()"` when omitted.
    pub returns: String,
    /// The doc comment, one leading space per line removed, trimmed.
    pub docs: String,
    /// The HTTP interface the signature implies (body, query, auth, response), with type paths
    /// nameable from the generated code.
    pub shape: HandlerShape,
}

/// One `middleware.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Middleware {
    /// The file, relative to the crate root: `src/app/api/middleware.rs`.
    pub file: String,
    /// The generated module of its folder, below `app`: `["api"]`; empty for `src/app` itself.
    pub module_path: Vec<String>,
}

/// A `CONFIG` initializer read as a builder chain, so its settings can be shown without
/// compiling: `RouteConfig::new().body_limit(8 * 1024 * 1024)` has base `RouteConfig::new()` and
/// one call `body_limit(["8 * 1024 * 1024"])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigExpr {
    /// What the chain starts from, as written: `RouteConfig::new()`. When the initializer is not
    /// a method chain at all (`SHARED_CONFIG`), this is the whole expression and `calls` is empty.
    pub base: String,
    /// The method calls on the base, in source order.
    pub calls: Vec<ConfigCall>,
}

/// One `.method(args)` of a `CONFIG` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigCall {
    /// The method name: `body_limit`.
    pub method: String,
    /// The arguments as written: `["8 * 1024 * 1024"]`.
    pub args: Vec<String>,
}

impl fmt::Display for ConfigExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)?;
        for call in &self.calls {
            write!(f, ".{}({})", call.method, call.args.join(", "))?;
        }
        Ok(())
    }
}
