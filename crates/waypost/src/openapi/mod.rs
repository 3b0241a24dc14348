//! The OpenAPI 3.1 document, derived from the route table and the handlers' types.
//!
//! The build step records, per handler, what its signature says: the `Json`/`Form`/`Multipart`
//! body, the `Query` type, whether it takes `Auth`/`MaybeAuth`, and the success type. Each type
//! is described by `schemars` when it implements `JsonSchema` (a derive away; `garde` rules such
//! as `length` and `range` become `minLength` / `minimum`); a type that does not is still listed
//! with what is known — every route appears, none is dropped. Every operation documents the one
//! error shape as its `default` response, and the security schemes (session cookie, bearer JWT,
//! CSRF header) where a handler requires a caller.

mod docs_page;

use std::{fmt, marker::PhantomData, sync::OnceLock};

use axum::{
    body::{Body, Bytes},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use schemars::{generate::SchemaSettings, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

pub use docs_page::DocsPage;

use crate::routing::{Method, RouteInfo};

/// Describes one type, or says it cannot (`None`).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Option<Schema>;

/// Carries a type to the schema lookup; see [`schema_fn!`](crate::schema_fn).
pub struct Probe<T: ?Sized>(PhantomData<T>);

impl<T: ?Sized> Probe<T> {
    /// A probe for `T`.
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<T: ?Sized> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Picked for types that implement `JsonSchema`.
pub trait Described {
    /// The type's schema.
    fn schema(&self, generator: &mut SchemaGenerator) -> Option<Schema>;
}

impl<T: ?Sized + JsonSchema> Described for Probe<T> {
    fn schema(&self, generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(generator.subschema_for::<T>())
    }
}

/// Picked (one auto-reference later) for every other type.
pub trait Undescribed {
    /// No schema.
    fn schema(&self, generator: &mut SchemaGenerator) -> Option<Schema>;
}

impl<T: ?Sized> Undescribed for &Probe<T> {
    fn schema(&self, _generator: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
}

/// A [`SchemaFn`] for a type: its schema when it implements `JsonSchema`, `None` otherwise —
/// decided at compile time without requiring the impl (method resolution prefers the
/// `Described` impl on `Probe<T>` and falls back to `Undescribed` on `&Probe<T>`).
#[macro_export]
macro_rules! schema_fn {
    ($ty:ty) => {{
        fn describe(
            generator: &mut $crate::__private::schemars::SchemaGenerator,
        ) -> ::core::option::Option<$crate::__private::schemars::Schema> {
            #[allow(unused_imports)]
            use $crate::openapi::{Described as _, Undescribed as _};
            (&$crate::openapi::Probe::<$ty>::new()).schema(generator)
        }
        describe as $crate::openapi::SchemaFn
    }};
}

/// How a handler takes its body.
#[derive(Clone, Copy, Debug)]
pub enum BodyInfo {
    /// `application/json`.
    Json(Option<SchemaFn>),
    /// `application/x-www-form-urlencoded`.
    Form(Option<SchemaFn>),
    /// `multipart/form-data`.
    Multipart,
    /// Raw bytes.
    Raw,
}

/// Whether a handler needs a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthInfo {
    /// Public.
    None,
    /// `Auth<U>`.
    Required,
    /// `MaybeAuth<U>`.
    Optional,
}

/// What a handler answers on success.
#[derive(Clone, Copy, Debug)]
pub enum ResponseInfo {
    /// JSON with this status.
    Json {
        /// 200 for `Json<T>`, 201 for `Created<T>`.
        status: u16,
        /// The body's schema.
        schema: Option<SchemaFn>,
    },
    /// 201 with JSON and a `Location` header (`CreatedAt<T>`).
    CreatedAt {
        /// The body's schema.
        schema: Option<SchemaFn>,
    },
    /// 204.
    NoContent,
    /// A file download.
    File,
    /// A text stream.
    Text,
    /// A WebSocket handshake: 101, then a session.
    WebSocket,
    /// Not known from the signature.
    Unknown,
}

/// How a handler reads its path parameters, for their schemas.
#[derive(Clone, Copy, Debug, Default)]
pub enum PathInfo {
    /// As text: the generated `Params`, or no `Path` at all.
    #[default]
    Text,
    /// One value per parameter, in URL order: `Path<(A, B)>`, or `Path<A>`.
    Positional(&'static [Option<SchemaFn>]),
    /// By name, from a type's fields: `Path<T>` of a struct.
    Named(Option<SchemaFn>),
}

/// One handler's interface, as generated.
#[derive(Clone, Copy, Debug)]
pub struct OperationInfo {
    /// Index into the routes table.
    pub route: usize,
    /// The method.
    pub method: Method,
    /// The request body.
    pub body: Option<BodyInfo>,
    /// The query type (`Some(None)`: a query the document cannot describe).
    pub query: Option<Option<SchemaFn>>,
    /// How the path parameters are read.
    pub path: PathInfo,
    /// Auth.
    pub auth: AuthInfo,
    /// The success response.
    pub response: ResponseInfo,
}

/// An OpenAPI 3.1 document.
///
/// It answers a request as JSON, by value or as `&'static OpenApi` (what the generated
/// `routes::openapi()` returns), so a handler can serve the one document the app builds without
/// copying it.
#[derive(Clone)]
pub struct OpenApi {
    document: Value,
    /// The document serialized, made by the first response and kept: the document never changes
    /// after it is built, so every later request is answered with a shared copy of these bytes
    /// instead of serializing it again.
    rendered: OnceLock<Bytes>,
}

impl fmt::Debug for OpenApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OpenApi").field(&self.document).finish()
    }
}

/// Two documents are equal when their JSON is; whether either has been serialized yet does not
/// matter.
impl PartialEq for OpenApi {
    fn eq(&self, other: &Self) -> bool {
        self.document == other.document
    }
}

/// A header value of visible ASCII, spaces allowed inside: what the idempotency layer takes as
/// a key (`is_key` there).
const VISIBLE_ASCII: &str = "^[\\x21-\\x7E]([\\x20-\\x7E]*[\\x21-\\x7E])?$";

/// The optional `Idempotency-Key` header of a route declared
/// [`idempotent`](crate::RouteConfig::idempotent): what the idempotency layer accepts (its
/// header, its longest key, visible ASCII with spaces inside), and what a retry gets.
fn idempotency_key_parameter() -> Value {
    use crate::layers::idempotency::{KEEP, LONGEST_KEY};
    let hours = KEEP.as_secs() / 3600;
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": format!("Sent again with the same request, it gets the first answer back when that one succeeded (marked `Idempotent-Replayed: true`) instead of running the request again; after an error the request runs again. 409 `idempotency_in_progress` while the first still runs, 422 `idempotency_key_reused` for the same key with another request, 409 `idempotency_answer_not_kept` when the first succeeded with an answer streamed, too large or past the server's room to keep (it is not run again), 503 `idempotency_unavailable` when the server can keep no more keys (the request did not run). Kept for {hours} hours per caller and route."),
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": LONGEST_KEY,
            "pattern": VISIBLE_ASCII
        }
    })
}

/// The optional `If-None-Match` header of a GET on a route declared
/// [`cached`](crate::RouteConfig::cache): the `ETag`s of the copies the client holds.
fn if_none_match_parameter() -> Value {
    json!({
        "name": "If-None-Match",
        "in": "header",
        "required": false,
        "description": "The `ETag` of a copy the client holds (several, comma-separated, or `*`): when one is current the answer is 304 without a body; a value that names no current copy, malformed or not, gets the full answer. Answers to callers who present no credentials carry `Cache-Control: public, max-age=…` and an `ETag`.",
        "schema": { "type": "string" }
    })
}

/// The response headers the framework sets, described once under `components/headers`.
fn standard_headers() -> Value {
    json!({
        "X-Request-Id": {
            "description": "The request's id, also in every error body as `requestId` and in the server's log: the client's own `X-Request-Id` when it sent a sane one (1–64 of `A-Z a-z 0-9 . _ -`), otherwise a fresh one.",
            "required": true,
            "schema": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$" }
        },
        "X-Content-Type-Options": {
            "description": "Browsers must not guess another type than the one sent.",
            "required": true,
            "schema": { "const": "nosniff" }
        },
        "RateLimit": {
            "description": "On rate-limited routes: the caller's window as `\"<policy>\";r=<requests left>;t=<seconds until it resets>` (IETF draft `RateLimit` header fields).",
            "schema": { "type": "string" }
        },
        "RateLimit-Policy": {
            "description": "On rate-limited routes: the limit as `\"<policy>\";q=<requests>;w=<window in seconds>`.",
            "schema": { "type": "string" }
        },
        "Retry-After": {
            "description": "On a 429 and on a 503 that will pass: seconds to wait before trying again.",
            "schema": { "type": "string", "pattern": "^[0-9]+$" }
        },
        "Idempotent-Replayed": {
            "description": "`true` when this is the kept answer to an earlier request with the same `Idempotency-Key`.",
            "schema": { "const": "true" }
        },
        "ETag": {
            "description": "The version of this answer, for `If-None-Match` (sent to callers who present no credentials).",
            "schema": { "type": "string" }
        },
        "Location": {
            "description": "Where the new resource is read.",
            "required": true,
            "schema": { "type": "string", "format": "uri-reference" }
        }
    })
}

/// A response's `headers`: those every answer has, then `extra`.
fn response_headers(extra: &[(&str, Value)]) -> Value {
    let mut headers = Map::new();
    for name in [
        "X-Request-Id",
        "X-Content-Type-Options",
        "RateLimit",
        "RateLimit-Policy",
    ] {
        headers.insert(
            name.into(),
            json!({ "$ref": format!("#/components/headers/{name}") }),
        );
    }
    for (name, header) in extra {
        headers.insert((*name).into(), header.clone());
    }
    Value::Object(headers)
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .into_generator()
}

/// `/api/docs/{*slug}` → `/api/docs/{slug}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn operation_id(method: Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(
            part.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .filter(|c| *c != '_' || !part.starts_with('{')),
        );
    }
    id
}

/// Suffixes `_2`, `_3`, … to an operation id already taken, in the order of the paths (sorted)
/// and their methods: OpenAPI requires them unique, and ids made from paths can meet
/// (`/a_b/c` and `/a/b_c`, `/posts/{id}` and `/posts/id`).
fn make_operation_ids_unique(paths: &mut Map<String, Value>) {
    let mut taken = std::collections::HashSet::new();
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            let Some(Value::String(id)) = operation.get_mut("operationId") else {
                continue;
            };
            if !taken.insert(id.clone()) {
                let unique = (2..)
                    .map(|n| format!("{id}_{n}"))
                    .find(|candidate| !taken.contains(candidate))
                    .expect("an unused suffix exists");
                taken.insert(unique.clone());
                *id = unique;
            }
        }
    }
}

/// Gives every integer schema with a Rust `format` the bounds of that type, so a document
/// reader (or a fuzzer) knows `u32` stops at 4 294 967 295 instead of meeting a 400 there.
fn bound_integers(map: &mut Map<String, Value>) {
    for value in map.values_mut() {
        bound_integers_in(value);
    }
}

fn bound_integers_in(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let bounds: Option<(i128, i128)> = match object.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0, u8::MAX.into())),
                Some("uint16") => Some((0, u16::MAX.into())),
                Some("uint32") => Some((0, u32::MAX.into())),
                Some("uint64" | "uint") => Some((0, u64::MAX.into())),
                Some("int8") => Some((i8::MIN.into(), i8::MAX.into())),
                Some("int16") => Some((i16::MIN.into(), i16::MAX.into())),
                Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                Some("int64" | "int") => Some((i64::MIN.into(), i64::MAX.into())),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                if !object.contains_key("minimum") {
                    object.insert("minimum".into(), number(min));
                }
                if !object.contains_key("maximum") {
                    object.insert("maximum".into(), number(max));
                }
            }
            bound_integers(object);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers_in),
        _ => {}
    }
}

fn number(value: i128) -> Value {
    i64::try_from(value)
        .map(Value::from)
        .or_else(|_| u64::try_from(value).map(Value::from))
        .unwrap_or(Value::Null)
}

/// Follows a `$ref` into the generator's definitions.
fn resolve<'a>(schema: &'a Value, definitions: &'a Map<String, Value>) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .rsplit('/')
            .next()
            .and_then(|name| definitions.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

/// A query parameter's schema: no `null` (an absent parameter is how "none" is said).
/// The schema of each of the path parameters `names`, as the handler reads them: text unless
/// its `Path<T>` says more (and says it for exactly these parameters).
fn path_schemas(generator: &mut SchemaGenerator, path: PathInfo, names: &[&str]) -> Vec<Value> {
    let text = || json!({ "type": "string" });
    match path {
        PathInfo::Positional(values) if values.len() == names.len() => values
            .iter()
            .map(|schema| {
                schema
                    .and_then(|schema| schema(generator))
                    .map_or_else(text, |schema| without_null(schema.to_value()))
            })
            .collect(),
        PathInfo::Named(Some(schema)) => match schema(generator) {
            Some(schema) => {
                let schema = schema.to_value();
                let definitions = generator.definitions().clone();
                let properties = resolve(&schema, &definitions).get("properties");
                names
                    .iter()
                    .map(|name| {
                        properties
                            .and_then(|properties| properties.get(*name))
                            .map_or_else(text, |property| without_null(property.clone()))
                    })
                    .collect()
            }
            None => names.iter().map(|_| text()).collect(),
        },
        _ => names.iter().map(|_| text()).collect(),
    }
}

fn without_null(mut schema: Value) -> Value {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            schema["type"] = only;
        }
    }
    if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array) {
        let rest: Vec<Value> = any_of
            .iter()
            .filter(|s| s.get("type") != Some(&json!("null")))
            .cloned()
            .collect();
        if rest.len() == 1 {
            return rest[0].clone();
        }
    }
    schema
}

impl OpenApi {
    /// The document for `routes`, with the interfaces of `operations`.
    pub fn build(
        title: &str,
        version: &str,
        routes: &[RouteInfo],
        operations: &[OperationInfo],
    ) -> Self {
        let mut generator = generator();
        let mut paths = Map::new();
        for (index, route) in routes.iter().enumerate() {
            for path in route.paths {
                let path = openapi_path(path);
                let mut item = Map::new();
                for handler in route.handlers {
                    let operation = operations
                        .iter()
                        .find(|op| op.route == index && op.method == handler.method);
                    let value = Self::operation(
                        &mut generator,
                        route,
                        &path,
                        handler.method,
                        handler.docs,
                        operation,
                    );
                    item.insert(handler.method.as_str().to_ascii_lowercase(), value);
                }
                paths.insert(path, Value::Object(item));
            }
        }
        bound_integers(&mut paths);
        make_operation_ids_unique(&mut paths);
        let mut schemas = generator.take_definitions(true);
        bound_integers(&mut schemas);
        schemas.insert(
            "Error".into(),
            json!({
                "type": "object",
                "description": "The one error shape every failure is answered with.",
                "required": ["error", "code", "requestId"],
                "properties": {
                    "error": { "type": "string", "description": "A sentence for people." },
                    "code": { "type": "string", "description": "A snake_case code for programs." },
                    "requestId": { "type": "string" },
                    "details": { "description": "Per-field messages for validation_failed, or other detail." }
                }
            }),
        );
        OpenApi::from_document(json!({
            "openapi": "3.1.0",
            "info": { "title": title, "version": version },
            "paths": paths,
            "components": {
                "schemas": schemas,
                "responses": {
                    "Error": {
                        "description": "An error, in the one JSON error shape.",
                        "headers": response_headers(&[
                            ("Retry-After", json!({ "$ref": "#/components/headers/Retry-After" })),
                            ("WWW-Authenticate", json!({
                                "description": "On a 401: the scheme that would do — `Bearer`, or `Bearer error=\"invalid_token\"` for a bearer token that did not check out.",
                                "schema": { "type": "string" }
                            })),
                        ]),
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                    }
                },
                "headers": standard_headers(),
                "securitySchemes": {
                    "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                    "sessionCookie": { "type": "apiKey", "in": "cookie", "name": crate::security::SESSION_COOKIE },
                    "csrfToken": { "type": "apiKey", "in": "header", "name": "X-CSRF-Token" }
                }
            }
        }))
    }

    fn from_document(document: Value) -> Self {
        OpenApi {
            document,
            rendered: OnceLock::new(),
        }
    }

    fn operation(
        generator: &mut SchemaGenerator,
        route: &RouteInfo,
        path: &str,
        method: Method,
        docs: &str,
        info: Option<&OperationInfo>,
    ) -> Value {
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(operation_id(method, path)));
        if let Some(summary) = docs.lines().next().filter(|line| !line.is_empty()) {
            operation.insert("summary".into(), json!(summary));
            operation.insert("description".into(), json!(docs));
        }
        if let Some(tag) = route.pattern.split('/').filter(|s| !s.is_empty()).nth(1) {
            if !tag.starts_with('{') {
                operation.insert("tags".into(), json!([tag]));
            }
        }
        let names: Vec<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let schemas = path_schemas(generator, info.map_or(PathInfo::Text, |i| i.path), &names);
        let mut parameters: Vec<Value> = names
            .iter()
            .zip(schemas)
            .map(|(name, schema)| {
                json!({ "name": name, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        if let Some(Some(query)) = info.and_then(|i| i.query) {
            if let Some(schema) = query(generator) {
                let schema = schema.to_value();
                let definitions = generator.definitions().clone();
                let object = resolve(&schema, &definitions);
                let required: Vec<&str> = object
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if let Some(properties) = object.get("properties").and_then(Value::as_object) {
                    for (name, property) in properties {
                        let mut parameter = json!({
                            "name": name,
                            "in": "query",
                            "required": required.contains(&name.as_str()),
                            "schema": without_null(property.clone()),
                        });
                        if let Some(text) = property.get("description") {
                            parameter["description"] = text.clone();
                        }
                        parameters.push(parameter);
                    }
                }
            }
        }
        let unsafe_method = matches!(
            method,
            Method::Post | Method::Put | Method::Patch | Method::Delete
        );
        let idempotent = route.config.idempotent && unsafe_method;
        if idempotent {
            parameters.push(idempotency_key_parameter());
        }
        let cached = route.config.cache.is_some() && method == Method::Get;
        if cached {
            parameters.push(if_none_match_parameter());
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        let any = || json!({});
        let describe = |generator: &mut SchemaGenerator, schema: Option<SchemaFn>| {
            schema
                .and_then(|f| f(generator))
                .map_or_else(any, |s| s.to_value())
        };
        if let Some(body) = info.and_then(|i| i.body) {
            let (media, schema) = match body {
                BodyInfo::Json(schema) => ("application/json", describe(generator, schema)),
                BodyInfo::Form(schema) => (
                    "application/x-www-form-urlencoded",
                    describe(generator, schema),
                ),
                // The upload battery's convention: one file, in the part named `file`.
                BodyInfo::Multipart => (
                    "multipart/form-data",
                    json!({
                        "type": "object",
                        "required": ["file"],
                        "properties": { "file": { "type": "string", "format": "binary", "contentMediaType": "application/octet-stream" } },
                        // Other fields may come along (the route skips them); their names must
                        // fit in a part's header, so no control characters and no quotes.
                        "propertyNames": { "pattern": "^[^\\x00-\\x1F\\x7F\"\\\\]+$" }
                    }),
                ),
                BodyInfo::Raw => ("application/json", any()),
            };
            operation.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { media: { "schema": schema } } }),
            );
        }
        let mut responses = Map::new();
        let mut success_headers = Vec::new();
        if idempotent {
            success_headers.push((
                "Idempotent-Replayed",
                json!({ "$ref": "#/components/headers/Idempotent-Replayed" }),
            ));
        }
        if cached {
            success_headers.push(("ETag", json!({ "$ref": "#/components/headers/ETag" })));
        }
        match info.map_or(ResponseInfo::Unknown, |i| i.response) {
            ResponseInfo::Json { status, schema } => {
                let schema = describe(generator, schema);
                responses.insert(
                    status.to_string(),
                    json!({ "description": "Success.", "content": { "application/json": { "schema": schema } } }),
                );
            }
            ResponseInfo::CreatedAt { schema } => {
                let schema = describe(generator, schema);
                responses.insert(
                    "201".into(),
                    json!({ "description": "Created.", "content": { "application/json": { "schema": schema } } }),
                );
            }
            ResponseInfo::NoContent => {
                responses.insert("204".into(), json!({ "description": "Done; no body." }));
            }
            ResponseInfo::File => {
                responses.insert(
                    "200".into(),
                    json!({ "description": "The file's bytes.", "content": { "application/octet-stream": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } } }),
                );
            }
            ResponseInfo::Text => {
                responses.insert(
                    "200".into(),
                    json!({ "description": "A text stream.", "content": { "text/plain": { "schema": { "type": "string" } } } }),
                );
            }
            ResponseInfo::WebSocket => {
                responses.insert(
                    "101".into(),
                    json!({ "description": "Switching Protocols: the connection is now a WebSocket session. A request that is no WebSocket handshake is answered 426 `upgrade_required`." }),
                );
            }
            ResponseInfo::Unknown => {
                responses.insert("2XX".into(), json!({ "description": "Success." }));
            }
        }
        if cached {
            responses.insert(
                "304".into(),
                json!({ "description": "Not modified: the copy `If-None-Match` names is current; no body." }),
            );
        }
        let headers = response_headers(&success_headers);
        for response in responses.values_mut() {
            response["headers"] = headers.clone();
        }
        if let Some(ResponseInfo::CreatedAt { .. }) = info.map(|i| i.response) {
            responses["201"]["headers"]["Location"] =
                json!({ "$ref": "#/components/headers/Location" });
        }
        responses.insert(
            "default".into(),
            json!({ "$ref": "#/components/responses/Error" }),
        );
        operation.insert("responses".into(), Value::Object(responses));
        let cookie = if unsafe_method {
            json!({ "sessionCookie": [], "csrfToken": [] })
        } else {
            json!({ "sessionCookie": [] })
        };
        match info.map_or(AuthInfo::None, |i| i.auth) {
            AuthInfo::None => {}
            AuthInfo::Required => {
                operation.insert("security".into(), json!([{ "bearerAuth": [] }, cookie]));
            }
            AuthInfo::Optional => {
                operation.insert("security".into(), json!([{}, { "bearerAuth": [] }, cookie]));
            }
        }
        Value::Object(operation)
    }

    /// The document as JSON.
    pub fn as_json(&self) -> &Value {
        &self.document
    }

    /// The documented paths, in order.
    pub fn paths(&self) -> Vec<String> {
        self.document["paths"]
            .as_object()
            .map(|paths| paths.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The answer to a request for the document: 200, `application/json`, the document as
    /// compact JSON — what [`Json`](crate::extract::Json) of it would answer — from the bytes
    /// serialized once.
    fn response(&self) -> Response {
        let rendered = self.rendered.get_or_init(|| {
            // A `Value` has only string keys and the writer is a `Vec`: nothing can fail.
            Bytes::from(serde_json::to_vec(&self.document).expect("a JSON value serializes"))
        });
        let mut response = Response::new(Body::from(rendered.clone()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl IntoResponse for OpenApi {
    fn into_response(self) -> Response {
        self.response()
    }
}

/// The app's one document (the generated `routes::openapi()`), answered without copying it.
impl IntoResponse for &'static OpenApi {
    fn into_response(self) -> Response {
        self.response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Described2 {
        name: String,
    }

    #[allow(dead_code)]
    struct NotDescribed;

    #[test]
    fn the_probe_describes_what_it_can_and_says_so_otherwise() {
        let mut generator = generator();
        let described: SchemaFn = crate::schema_fn!(Described2);
        let not_described: SchemaFn = crate::schema_fn!(NotDescribed);
        assert!(described(&mut generator).is_some());
        assert!(not_described(&mut generator).is_none());
    }

    #[test]
    fn operation_ids_that_meet_are_made_unique_in_path_order() {
        let mut paths = Map::new();
        for path in ["/a/b_c", "/a_b/c", "/posts/id", "/posts/{id}"] {
            paths.insert(
                path.to_owned(),
                json!({ "get": { "operationId": operation_id(Method::Get, path) } }),
            );
        }
        make_operation_ids_unique(&mut paths);
        let ids: Vec<&str> = paths
            .values()
            .map(|item| item["get"]["operationId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["get_a_b_c", "get_a_b_c_2", "get_posts_id", "get_posts_id_2"]
        );
    }

    async fn answer(response: Response) -> (u16, Option<String>, Bytes) {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, content_type, body)
    }

    #[tokio::test]
    async fn the_static_document_answers_as_the_json_of_it_would_every_time() {
        let document: &'static OpenApi =
            Box::leak(Box::new(OpenApi::build("app", "1.0.0", &[], &[])));
        let expected =
            answer(crate::extract::Json(document.as_json().clone()).into_response()).await;
        assert_eq!(expected.0, 200);
        assert_eq!(expected.1.as_deref(), Some("application/json"));
        assert_eq!(answer(document.into_response()).await, expected);
        assert_eq!(
            answer(document.into_response()).await,
            expected,
            "the kept bytes answer again"
        );
        assert_eq!(answer(document.clone().into_response()).await, expected);
        assert_eq!(
            answer(OpenApi::build("app", "1.0.0", &[], &[]).into_response()).await,
            expected
        );
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct RepoPath {
        org: String,
        stars: u32,
    }

    #[test]
    fn path_parameters_are_described_as_the_handler_reads_them() {
        use crate::{routing::HandlerInfo, RouteConfig};
        const GET: &[HandlerInfo] = &[HandlerInfo::of(Method::Get)];
        let routes = [
            RouteInfo::at(&["/items/{id}/{size}"], GET, RouteConfig::new()),
            RouteInfo::at(&["/repos/{org}/{stars}"], GET, RouteConfig::new()),
            // A tuple of another length than the route has parameters: text, not a guess.
            RouteInfo::at(&["/one/{only}"], GET, RouteConfig::new()),
        ];
        const ITEM: &[Option<SchemaFn>] = &[Some(crate::schema_fn!(i64)), None];
        const TWO: &[Option<SchemaFn>] =
            &[Some(crate::schema_fn!(u8)), Some(crate::schema_fn!(u8))];
        let operation = |route, path| OperationInfo {
            route,
            method: Method::Get,
            body: None,
            query: None,
            path,
            auth: AuthInfo::None,
            response: ResponseInfo::Unknown,
        };
        let document = OpenApi::build(
            "app",
            "1.0.0",
            &routes,
            &[
                operation(0, PathInfo::Positional(ITEM)),
                operation(1, PathInfo::Named(Some(crate::schema_fn!(RepoPath)))),
                operation(2, PathInfo::Positional(TWO)),
            ],
        );
        let schemas = |path: &str| -> Vec<(String, Value)> {
            document.as_json()["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["name"].as_str().unwrap().to_owned(), p["schema"].clone()))
                .collect()
        };
        let items = schemas("/items/{id}/{size}");
        assert_eq!(items[0].0, "id");
        assert_eq!(items[0].1["type"], "integer");
        assert_eq!(items[1], ("size".to_owned(), json!({ "type": "string" })));
        let repos = schemas("/repos/{org}/{stars}");
        assert_eq!(repos[0], ("org".to_owned(), json!({ "type": "string" })));
        assert_eq!(repos[1].1["type"], "integer");
        assert_eq!(repos[1].1["minimum"], 0);
        assert_eq!(
            schemas("/one/{only}"),
            [("only".to_owned(), json!({ "type": "string" }))]
        );
    }

    #[test]
    fn a_websocket_route_is_documented_as_its_switch_of_protocols() {
        use crate::{routing::HandlerInfo, RouteConfig};
        const GET: &[HandlerInfo] = &[HandlerInfo::of(Method::Get)];
        let routes = [
            RouteInfo::at(&["/api/echo"], GET, RouteConfig::new()),
            RouteInfo::at(&["/api/page"], GET, RouteConfig::new()),
        ];
        let operation = |route, response| OperationInfo {
            route,
            method: Method::Get,
            body: None,
            query: None,
            path: PathInfo::Text,
            auth: AuthInfo::None,
            response,
        };
        let document = OpenApi::build(
            "app",
            "1.0.0",
            &routes,
            &[
                operation(0, ResponseInfo::WebSocket),
                operation(1, ResponseInfo::Unknown),
            ],
        );
        let responses = |path: &str| {
            let mut codes: Vec<String> = document.as_json()["paths"][path]["get"]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            codes.sort();
            codes
        };
        assert_eq!(responses("/api/echo"), ["101", "default"]);
        assert!(
            document.as_json()["paths"]["/api/echo"]["get"]["responses"]["101"]["description"]
                .as_str()
                .unwrap()
                .contains("WebSocket")
        );
        assert_eq!(responses("/api/page"), ["2XX", "default"]);
    }

    #[test]
    fn catch_all_paths_and_operation_ids_are_openapi_shaped() {
        assert_eq!(openapi_path("/api/docs/{*slug}"), "/api/docs/{slug}");
        assert_eq!(
            operation_id(Method::Get, "/api/posts/{id}"),
            "get_api_posts_id"
        );
        assert_eq!(
            operation_id(Method::Post, "/api/openapi.json"),
            "post_api_openapi_json"
        );
    }
}
