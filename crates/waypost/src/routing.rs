//! The route table the build step generates, and how each entry is mounted on an axum router.
//!
//! `waypost-build` writes a `static ROUTES: &[RouteInfo]` and a `router(state)` function that, for
//! each route, hands the exported handlers and the route's middleware to a [`RouteMethods`] and
//! mounts it. Everything the framework adds per route (OPTIONS, 405 with `Allow`, body limit,
//! max duration, CSRF, rate limit) is decided here, in one place: a handler cannot be mounted
//! without its route's guard.

use std::{convert::Infallible, fmt};

use axum::{
    extract::Request,
    handler::Handler,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{MethodRouter, Route},
    Router,
};
use tower::{Layer, Service};

use crate::{
    error::ApiError,
    layers::{Guarded, RouteLayer},
    RouteConfig,
};

/// The body limit axum's own extractors (`Bytes`, `String`, axum's `Json`) apply by default.
const AXUM_DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// One route's handlers, each behind the route's guard, with the route's middleware: what the
/// generated router builds for every `route.rs`.
///
/// ```
/// use waypost::routing::{RouteInfo, RouteMethods};
/// use waypost::RouteConfig;
///
/// static HELLO: RouteInfo = RouteInfo {
///     pattern: "/hello",
///     paths: &["/hello"],
///     file: "src/app/hello/route.rs",
///     params: &[],
///     handlers: &[],
///     middleware: &[],
///     config: RouteConfig::new(),
/// };
///
/// let router = RouteMethods::<()>::new(&HELLO)
///     .get(|| async { "hello" })
///     .mount(waypost::axum::Router::new());
/// ```
#[derive(Debug)]
pub struct RouteMethods<S = ()> {
    route: &'static RouteInfo,
    methods: MethodRouter<S>,
    /// Whether OPTIONS and the 405 fallback are in (before the first middleware wraps them).
    completed: bool,
}

macro_rules! guarded_methods {
    ($($method:ident),*) => {$(
        #[doc = concat!("Serves `", stringify!($method), "` with `handler`, behind the guard.")]
        pub fn $method<H, T>(mut self, handler: H) -> Self
        where
            H: Handler<T, S>,
            T: 'static,
        {
            self.methods = self.methods.$method(Guarded::new(self.route, handler));
            self
        }
    )*};
}

impl<S> RouteMethods<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// No handlers yet for `route`.
    pub fn new(route: &'static RouteInfo) -> Self {
        Self {
            route,
            methods: MethodRouter::new(),
            completed: false,
        }
    }

    guarded_methods!(get, post, put, patch, delete, head, options);

    /// Wraps the handlers given so far (and the framework's OPTIONS / 405 answers) in a
    /// middleware; the first one given is the innermost. The route's guard stays outside every
    /// middleware.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self = self.complete();
        self.methods = self.methods.layer(layer);
        self
    }

    fn complete(mut self) -> Self {
        if !self.completed {
            self.methods = complete_methods(self.methods, self.route);
            self.completed = true;
        }
        self
    }

    /// Mounts the route on `router` at each of its paths.
    pub fn mount(self, router: Router<S>) -> Router<S> {
        let route = self.route;
        let methods = self.complete().methods;
        let methods = if route.guards_each_handler() {
            methods
        } else {
            // The guard wraps every body in a limit of its own, so axum's default (2 MiB) must
            // not cut in first on routes that allow more.
            methods
                .layer::<_, Infallible>(RouteLayer::new(route))
                .layer::<_, Infallible>(axum::extract::DefaultBodyLimit::disable())
        };
        route
            .paths
            .iter()
            .fold(router, |router, path| router.route(path, methods.clone()))
    }
}

/// An HTTP method a `route.rs` can export a handler for.
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
    /// The exportable method `method` is, if it is one.
    pub fn of(method: &http::Method) -> Option<Self> {
        use http::Method as M;
        // Most frequent first: the guard asks this on every request of a rate-limited route.
        Some(if *method == M::GET {
            Method::Get
        } else if *method == M::POST {
            Method::Post
        } else if *method == M::PUT {
            Method::Put
        } else if *method == M::PATCH {
            Method::Patch
        } else if *method == M::DELETE {
            Method::Delete
        } else if *method == M::HEAD {
            Method::Head
        } else if *method == M::OPTIONS {
            Method::Options
        } else {
            return None;
        })
    }

    /// The method's name as it stands on the wire (`"GET"`).
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
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a path parameter was declared by its folder name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `[id]`: exactly one segment.
    Single,
    /// `[...slug]`: one or more segments.
    CatchAll,
    /// `[[...path]]`: zero or more segments.
    OptionalCatchAll,
}

/// One path parameter of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    /// The name between the brackets.
    pub name: &'static str,
    /// How many segments it takes.
    pub kind: ParamKind,
}

/// One exported handler, as the scanner read its signature (for docs and the OpenAPI document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerInfo {
    /// The method it answers.
    pub method: Method,
    /// The argument types as written, e.g. `["State<AppState>", "Json<NewPost>"]`.
    pub arguments: &'static [&'static str],
    /// The return type as written, e.g. `"Result<Json<Post>, ApiError>"`.
    pub returns: &'static str,
    /// The handler's doc comment, trimmed.
    pub docs: &'static str,
}

impl HandlerInfo {
    /// A handler known by its method alone, for a route mounted by hand ([`RouteInfo::at`])
    /// rather than read from a `route.rs`: no argument or return types, no docs.
    pub const fn of(method: Method) -> Self {
        Self {
            method,
            arguments: &[],
            returns: "",
            docs: "",
        }
    }
}

/// One `route.rs`: where it lives, the URL it serves, its handlers and settings.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo {
    /// The URL pattern as shown to people: `/api/posts/{id}`, `/api/docs/{*slug}`,
    /// `/api/files/{*path}` (for an optional catch-all, also served without the tail).
    pub pattern: &'static str,
    /// The axum paths this route is mounted at (two for an optional catch-all).
    pub paths: &'static [&'static str],
    /// The file, relative to the app crate's root: `src/app/api/posts/[id]/route.rs`.
    pub file: &'static str,
    /// The path parameters, in URL order.
    pub params: &'static [ParamInfo],
    /// The exported handlers, in the order GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS.
    pub handlers: &'static [HandlerInfo],
    /// The `middleware.rs` files that wrap this route, outermost first.
    pub middleware: &'static [&'static str],
    /// The route's `CONFIG`, or [`RouteConfig::new()`] when it declares none.
    pub config: RouteConfig,
}

impl RouteInfo {
    /// A route mounted by hand at the one `path` (no parameters, no `middleware.rs`), for tests
    /// and routers built without the generator; its file is `(mounted by hand)`.
    ///
    /// ```
    /// use waypost::{routing::{HandlerInfo, Method, RouteInfo, RouteMethods}, axum::Router, RouteConfig};
    ///
    /// static PING: RouteInfo =
    ///     RouteInfo::at(&["/ping"], &[HandlerInfo::of(Method::Get)], RouteConfig::new());
    /// let router: Router = RouteMethods::new(&PING).get(|| async { "pong" }).mount(Router::new());
    /// ```
    pub const fn at(
        path: &'static [&'static str; 1],
        handlers: &'static [HandlerInfo],
        config: RouteConfig,
    ) -> Self {
        Self {
            pattern: path[0],
            paths: path,
            file: "(mounted by hand)",
            params: &[],
            handlers,
            middleware: &[],
            config,
        }
    }

    /// Whether the route's guard (rate limit, CSRF, body limit, max duration) wraps each handler
    /// ([`Guarded`]) rather than the whole method router ([`RouteLayer`]). Each handler, unless
    /// `middleware.rs` files must run inside the guard, or the body limit exceeds axum's own
    /// default for its body extractors (2 MiB), which only the layer lifts.
    pub fn guards_each_handler(&self) -> bool {
        self.middleware.is_empty() && self.config.body_limit <= AXUM_DEFAULT_BODY_LIMIT
    }

    /// Whether the route exports a handler for `method`.
    pub fn has(&self, method: Method) -> bool {
        self.handlers.iter().any(|handler| handler.method == method)
    }

    /// Whether a handler answers `method` (as it comes on a request).
    pub fn exports(&self, method: &http::Method) -> bool {
        Method::of(method).is_some_and(|method| self.has(method))
    }

    /// The value of the `Allow` header: the exported methods, HEAD with GET, OPTIONS always.
    pub fn allow_header(&self) -> String {
        let mut methods: Vec<Method> = self.handlers.iter().map(|h| h.method).collect();
        if self.has(Method::Get) && !methods.contains(&Method::Head) {
            methods.push(Method::Head);
        }
        if !methods.contains(&Method::Options) {
            methods.push(Method::Options);
        }
        methods.sort();
        methods
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Adds what the framework answers on the handler's behalf: `OPTIONS` (204 with `Allow`) when
/// the route exports none, and 405 `method_not_allowed` with `Allow` for every other method.
fn complete_methods<S>(methods: MethodRouter<S>, route: &'static RouteInfo) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let allow = HeaderValue::from_str(&route.allow_header()).expect("method names are ASCII");
    let methods = if route.has(Method::Options) {
        methods
    } else {
        let allow = allow.clone();
        methods.options(Guarded::new(route, move || {
            let allow = allow.clone();
            async move { (StatusCode::NO_CONTENT, [(header::ALLOW, allow)]).into_response() }
        }))
    };
    methods.fallback(Guarded::new(route, move |request: Request| {
        let allow = allow.clone();
        async move {
            let mut response = ApiError::method_not_allowed(request.method()).into_response();
            response.headers_mut().insert(header::ALLOW, allow);
            response
        }
    }))
}

#[doc(hidden)]
pub async fn not_found_fallback() -> Response {
    not_found_fallback_response()
}

/// The answer to a path no route serves: 404 `not_found`.
pub(crate) fn not_found_fallback_response() -> Response {
    ApiError::not_found("No route matches this path.").into_response()
}
