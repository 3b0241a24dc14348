//! What a handler's signature says about its HTTP interface, for the OpenAPI document: the
//! request body, query, path parameters and auth it takes, and the response it returns — with
//! every type path rewritten so it can be named from the generated code.
//!
//! Types are resolved the way the compiler would see them from the route file: through its
//! `use` items, its own `pub` items, and `crate::` / `super::` / `self::` paths. A type that
//! cannot be named from outside the file (a glob import, a private item) is left undescribed
//! rather than guessed: the route is still documented with what is known.

use std::collections::{HashMap, HashSet};

use syn::{GenericArgument, PathArguments, Type, UseTree};

use crate::route_file::type_text;

/// How a handler takes its request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    /// `Json<T>` / `Valid<Json<T>>`; the resolved `T` when it can be named.
    Json(Option<String>),
    /// `Form<T>` / `Valid<Form<T>>`.
    Form(Option<String>),
    /// `Multipart`.
    Multipart,
    /// `Bytes`, `Body`, `String`: raw bytes.
    Raw,
}

/// What a handler's `Path<T>` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathShape {
    /// One value per route parameter, in order: `Path<(A, B)>`, or `Path<A>` for a single value
    /// (a number, text, a bool, a UUID); each the resolved type when it can be named.
    Positional(Vec<Option<String>>),
    /// Values by name: `Path<T>` for any other `T` (a struct), resolved when it can be named.
    Named(Option<String>),
}

/// The single values a `Path<T>` can read as one parameter: their last path segment.
const SINGLE_VALUES: &[&str] = &[
    "bool",
    "char",
    "String",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "f32",
    "f64",
    "Uuid",
    "NonZeroU32",
    "NonZeroU64",
    "NonZeroUsize",
];

/// Whether a handler needs a signed-in caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthKind {
    /// No `Auth` / `MaybeAuth` argument.
    #[default]
    None,
    /// `Auth<U>`: 401 without credentials.
    Required,
    /// `MaybeAuth<U>`.
    Optional,
}

/// What a handler answers when it succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ResponseShape {
    /// `Json<T>` (200) or `Created<T>` (201), with the resolved `T` when it can be named.
    Json {
        /// The status.
        status: u16,
        /// The body type.
        ty: Option<String>,
    },
    /// `CreatedAt<T>` (`Created(x).at(url)`): 201 with a `Location` header.
    CreatedAt {
        /// The body type.
        ty: Option<String>,
    },
    /// `NoContent`: 204.
    NoContent,
    /// `FileDownload`: bytes.
    File,
    /// `ChunkedText`: a text stream.
    Text,
    /// A WebSocket handshake (the handler takes `WebSocketUpgrade`): 101, then a session.
    WebSocket,
    /// Anything else (`Response`, `impl IntoResponse`): the status and body are not known.
    #[default]
    Unknown,
}

/// The HTTP interface of one handler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandlerShape {
    /// The request body it reads.
    pub body: Option<RequestBody>,
    /// The resolved type of its `Query<T>` (or `Valid<Query<T>>`).
    pub query: Option<Option<String>>,
    /// What its `Path<T>` reads (`None`: it takes none, or the generated `Params`).
    pub path: Option<PathShape>,
    /// Whether it needs a signed-in caller.
    pub auth: AuthKind,
    /// What it answers on success.
    pub response: ResponseShape,
}

/// Names a route file's types from the generated code.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    uses: HashMap<String, Vec<String>>,
    locals: HashSet<String>,
    /// The route module below the generated root: `["app", "api", "posts", "route"]`.
    route_module: Vec<String>,
}

/// Types every module sees without an import.
const PRELUDE: &[&str] = &[
    "bool", "char", "str", "String", "Vec", "Option", "Box", "i8", "i16", "i32", "i64", "i128",
    "isize", "u8", "u16", "u32", "u64", "u128", "usize", "f32", "f64",
];

impl Resolver {
    pub(crate) fn new(file: &syn::File, folder_module: &[String]) -> Self {
        let mut resolver = Resolver {
            route_module: std::iter::once("app".to_owned())
                .chain(folder_module.iter().cloned())
                .chain(std::iter::once("route".to_owned()))
                .collect(),
            ..Resolver::default()
        };
        for item in &file.items {
            match item {
                syn::Item::Use(item) => resolver.add_use(&item.tree, Vec::new()),
                syn::Item::Struct(item) if is_pub(&item.vis) => {
                    resolver.locals.insert(item.ident.to_string());
                }
                syn::Item::Enum(item) if is_pub(&item.vis) => {
                    resolver.locals.insert(item.ident.to_string());
                }
                syn::Item::Type(item) if is_pub(&item.vis) => {
                    resolver.locals.insert(item.ident.to_string());
                }
                _ => {}
            }
        }
        resolver
    }

    fn add_use(&mut self, tree: &UseTree, prefix: Vec<String>) {
        match tree {
            UseTree::Path(path) => {
                let mut prefix = prefix;
                prefix.push(path.ident.to_string());
                self.add_use(&path.tree, prefix);
            }
            UseTree::Name(name) => {
                let ident = name.ident.to_string();
                if ident == "self" {
                    if let Some(last) = prefix.last() {
                        self.uses.insert(last.clone(), prefix.clone());
                    }
                } else {
                    let mut full = prefix;
                    full.push(ident.clone());
                    self.uses.insert(ident, full);
                }
            }
            UseTree::Rename(rename) => {
                let mut full = prefix;
                if rename.ident != "self" {
                    full.push(rename.ident.to_string());
                }
                self.uses.insert(rename.rename.to_string(), full);
            }
            UseTree::Group(group) => {
                for tree in &group.items {
                    self.add_use(tree, prefix.clone());
                }
            }
            UseTree::Glob(_) => {}
        }
    }

    /// `segments` (a path as written in the route file) as a path from the generated root,
    /// or `None` when it cannot be named there.
    fn absolute(&self, segments: &[String], depth: usize) -> Option<Vec<String>> {
        let (first, rest) = segments.split_first()?;
        if depth > 8 {
            return None;
        }
        match first.as_str() {
            "crate" => Some(segments.to_vec()),
            "self" => {
                let mut path = vec!["self".to_owned()];
                path.extend(self.route_module.iter().cloned());
                path.extend(rest.iter().cloned());
                Some(path)
            }
            "super" => {
                let supers = segments.iter().take_while(|s| *s == "super").count();
                let keep = self.route_module.len().checked_sub(supers)?;
                if keep == 0 {
                    return None;
                }
                let mut path = vec!["self".to_owned()];
                path.extend(self.route_module[..keep].iter().cloned());
                path.extend(segments[supers..].iter().cloned());
                Some(path)
            }
            _ => {
                if let Some(target) = self.uses.get(first) {
                    let mut full = target.clone();
                    full.extend(rest.iter().cloned());
                    if full
                        .first()
                        .is_some_and(|s| s == "crate" || s == "self" || s == "super")
                    {
                        return self.absolute(&full, depth + 1);
                    }
                    // An external crate's path (`serde_json::Value`).
                    return Some(full);
                }
                if self.locals.contains(first) {
                    let mut path = vec!["self".to_owned()];
                    path.extend(self.route_module.iter().cloned());
                    path.extend(segments.iter().cloned());
                    return Some(path);
                }
                if segments.len() == 1 && PRELUDE.contains(&first.as_str()) {
                    return Some(segments.to_vec());
                }
                // `serde_json::Value` written in full names an external crate; a lone unknown
                // name came from a glob import or a macro: not nameable from here.
                (segments.len() > 1).then(|| segments.to_vec())
            }
        }
    }

    /// `ty` with every path made nameable from the generated code, or `None`.
    pub(crate) fn resolve(&self, ty: &Type) -> Option<Type> {
        match ty {
            Type::Path(type_path) if type_path.qself.is_none() => {
                let segments: Vec<String> = type_path
                    .path
                    .segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect();
                let absolute = if type_path.path.leading_colon.is_some() {
                    segments.clone()
                } else {
                    self.absolute(&segments, 0)?
                };
                let last_args = &type_path.path.segments.last()?.arguments;
                let args = match last_args {
                    PathArguments::None => String::new(),
                    PathArguments::AngleBracketed(generics) => {
                        let mut resolved = Vec::new();
                        for arg in &generics.args {
                            match arg {
                                GenericArgument::Type(inner) => {
                                    resolved.push(type_text(&self.resolve(inner)?));
                                }
                                _ => return None,
                            }
                        }
                        format!("<{}>", resolved.join(", "))
                    }
                    PathArguments::Parenthesized(_) => return None,
                };
                let leading = if type_path.path.leading_colon.is_some() {
                    "::"
                } else {
                    ""
                };
                syn::parse_str(&format!("{leading}{}{args}", absolute.join("::"))).ok()
            }
            Type::Paren(inner) => self.resolve(&inner.elem),
            Type::Tuple(tuple) if tuple.elems.is_empty() => Some(ty.clone()),
            _ => None,
        }
    }
}

fn is_pub(visibility: &syn::Visibility) -> bool {
    matches!(visibility, syn::Visibility::Public(_))
}

/// The last segment's name and its first type argument: `Valid<Json<T>>` → `("Valid", Json<T>)`.
fn outer(ty: &Type) -> Option<(String, Option<&Type>)> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    let inner = match &last.arguments {
        PathArguments::AngleBracketed(generics) => generics.args.iter().find_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        }),
        _ => None,
    };
    Some((last.ident.to_string(), inner))
}

/// What `Path<ty>` reads.
fn path_shape(ty: &Type, resolver: &Resolver) -> PathShape {
    let named = |ty: &Type| resolver.resolve(ty).map(|ty| type_text(&ty));
    match ty {
        Type::Tuple(tuple) => PathShape::Positional(tuple.elems.iter().map(named).collect()),
        Type::Paren(inner) => path_shape(&inner.elem, resolver),
        Type::Path(path)
            if path
                .path
                .segments
                .last()
                .is_some_and(|last| SINGLE_VALUES.contains(&last.ident.to_string().as_str())) =>
        {
            PathShape::Positional(vec![named(ty)])
        }
        _ => PathShape::Named(named(ty)),
    }
}

/// Reads the interface off a handler's argument and return types.
pub(crate) fn shape_of(
    arguments: &[&Type],
    returns: Option<&Type>,
    resolver: &Resolver,
) -> HandlerShape {
    let mut shape = HandlerShape::default();
    let mut websocket = false;
    let named = |ty: Option<&Type>| {
        ty.and_then(|ty| resolver.resolve(ty))
            .map(|ty| type_text(&ty))
    };
    for argument in arguments {
        let Some((name, inner)) = outer(argument) else {
            continue;
        };
        // `Valid<E>` validates what `E` extracts: look through it.
        let (name, inner) = if name == "Valid" {
            match inner.and_then(outer) {
                Some((name, inner)) => (name, inner),
                None => continue,
            }
        } else {
            (name, inner)
        };
        match name.as_str() {
            "Json" | "JsonWithBytes" => shape.body = Some(RequestBody::Json(named(inner))),
            "Form" => shape.body = Some(RequestBody::Form(named(inner))),
            "Multipart" => shape.body = Some(RequestBody::Multipart),
            "Bytes" | "Body" | "String" | "RawBody" => shape.body = Some(RequestBody::Raw),
            "Query" => shape.query = Some(named(inner)),
            "Path" => shape.path = inner.map(|inner| path_shape(inner, resolver)),
            "Auth" => shape.auth = AuthKind::Required,
            "MaybeAuth" if shape.auth == AuthKind::None => shape.auth = AuthKind::Optional,
            "WebSocketUpgrade" => websocket = true,
            _ => {}
        }
    }
    shape.response = match returns {
        // Whatever the signature says it returns, its success is the switch to a WebSocket.
        _ if websocket => ResponseShape::WebSocket,
        None => ResponseShape::Unknown,
        Some(ty) => {
            // `Result<X, E>`: the success type is `X`.
            let success = match outer(ty) {
                Some((name, Some(inner))) if name == "Result" => inner,
                _ => ty,
            };
            match outer(success) {
                Some((name, inner)) if name == "Json" => ResponseShape::Json {
                    status: 200,
                    ty: named(inner),
                },
                Some((name, inner)) if name == "Created" => ResponseShape::Json {
                    status: 201,
                    ty: named(inner),
                },
                Some((name, inner)) if name == "CreatedAt" => {
                    ResponseShape::CreatedAt { ty: named(inner) }
                }
                Some((name, _)) if name == "NoContent" => ResponseShape::NoContent,
                Some((name, _)) if name == "FileDownload" => ResponseShape::File,
                Some((name, _)) if name == "ChunkedText" => ResponseShape::Text,
                _ => ResponseShape::Unknown,
            }
        }
    };
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        let file: syn::File = syn::parse_quote! {
            use serde_json::{json, Value};
            use waypost::extract::{Json, Query};
            use crate::{posts::{self, Post, PostInput}, users::User as Account};
            use super::Params;
            use some::glob::*;
            pub struct ListParams;
            struct Private;
        };
        Resolver::new(&file, &["api".to_owned(), "posts".to_owned()])
    }

    fn resolved(ty: &str) -> Option<String> {
        let ty: Type = syn::parse_str(ty).unwrap();
        resolver().resolve(&ty).map(|ty| type_text(&ty))
    }

    #[test]
    fn paths_resolve_through_uses_locals_and_relatives() {
        assert_eq!(resolved("Post").as_deref(), Some("crate::posts::Post"));
        assert_eq!(
            resolved("posts::Page").as_deref(),
            Some("crate::posts::Page")
        );
        assert_eq!(resolved("Account").as_deref(), Some("crate::users::User"));
        assert_eq!(resolved("Value").as_deref(), Some("serde_json::Value"));
        assert_eq!(
            resolved("ListParams").as_deref(),
            Some("self::app::api::posts::route::ListParams")
        );
        assert_eq!(
            resolved("Params").as_deref(),
            Some("self::app::api::posts::Params")
        );
        assert_eq!(
            resolved("Vec<Post>").as_deref(),
            Some("Vec<crate::posts::Post>")
        );
        assert_eq!(resolved("String").as_deref(), Some("String"));
        assert_eq!(
            resolved("Private"),
            None,
            "private items are not nameable from outside"
        );
        assert_eq!(resolved("FromGlob"), None);
        assert_eq!(resolved("Vec<FromGlob>"), None);
        assert_eq!(resolved("&'static str"), None);
    }

    #[test]
    fn handler_signatures_give_their_interface() {
        let args: Vec<Type> = vec![
            syn::parse_quote!(State<AppState>),
            syn::parse_quote!(Auth<User>),
            syn::parse_quote!(Valid<Query<ListParams>>),
            syn::parse_quote!(Valid<Json<PostInput>>),
        ];
        let returns: Type = syn::parse_quote!(Result<Json<Post>, ApiError>);
        let shape = shape_of(
            &args.iter().collect::<Vec<_>>(),
            Some(&returns),
            &resolver(),
        );
        assert_eq!(shape.auth, AuthKind::Required);
        assert_eq!(
            shape.query,
            Some(Some("self::app::api::posts::route::ListParams".to_owned()))
        );
        assert_eq!(
            shape.body,
            Some(RequestBody::Json(Some(
                "crate::posts::PostInput".to_owned()
            )))
        );
        assert_eq!(
            shape.response,
            ResponseShape::Json {
                status: 200,
                ty: Some("crate::posts::Post".to_owned())
            }
        );
        let returns: Type = syn::parse_quote!(Result<NoContent, ApiError>);
        assert_eq!(
            shape_of(&[], Some(&returns), &resolver()).response,
            ResponseShape::NoContent
        );
        let returns: Type = syn::parse_quote!(Result<Created<Post>, ApiError>);
        assert_eq!(
            shape_of(&[], Some(&returns), &resolver()).response,
            ResponseShape::Json {
                status: 201,
                ty: Some("crate::posts::Post".to_owned())
            }
        );
        let returns: Type = syn::parse_quote!(Result<waypost::response::CreatedAt<Post>, ApiError>);
        assert_eq!(
            shape_of(&[], Some(&returns), &resolver()).response,
            ResponseShape::CreatedAt {
                ty: Some("crate::posts::Post".to_owned())
            }
        );
        let returns: Type = syn::parse_quote!(Response);
        assert_eq!(
            shape_of(&[], Some(&returns), &resolver()).response,
            ResponseShape::Unknown
        );
        // What a `Path<T>` reads: by position for tuples and single values, by name otherwise.
        let path_of = |ty: Type| shape_of(&[&ty], None, &resolver()).path;
        assert_eq!(
            path_of(syn::parse_quote!(Path<(String, u32)>)),
            Some(PathShape::Positional(vec![
                Some("String".to_owned()),
                Some("u32".to_owned())
            ]))
        );
        assert_eq!(
            path_of(syn::parse_quote!(waypost::extract::Path<uuid::Uuid>)),
            Some(PathShape::Positional(vec![Some("uuid::Uuid".to_owned())]))
        );
        assert_eq!(
            path_of(syn::parse_quote!(Path<ListParams>)),
            Some(PathShape::Named(Some(
                "self::app::api::posts::route::ListParams".to_owned()
            )))
        );
        assert_eq!(path_of(syn::parse_quote!(Params)), None);
        // A WebSocket handshake, whatever the return type says.
        let upgrade: Type = syn::parse_quote!(waypost::websocket::WebSocketUpgrade);
        for returns in [
            syn::parse_quote!(Response),
            syn::parse_quote!(Result<Response, ApiError>),
            syn::parse_quote!(impl IntoResponse),
        ] {
            let returns: Type = returns;
            assert_eq!(
                shape_of(&[&upgrade], Some(&returns), &resolver()).response,
                ResponseShape::WebSocket
            );
        }
    }
}
