//! Reading one `route.rs` or `middleware.rs` with syn: its handlers, their signatures as written,
//! its `CONFIG` chain, and the mistakes a compiler would report less clearly (or not at all).

use std::{fs, path::Path};

use quote::ToTokens;
use syn::{Attribute, Expr, FnArg, Item, ReturnType, Visibility};

use crate::{
    errors::ScanError,
    shape::{shape_of, Resolver},
    table::{ConfigCall, ConfigExpr, Handler, Method},
};

/// What a valid `route.rs` exports.
#[derive(Debug)]
pub(crate) struct RouteFile {
    pub(crate) handlers: Vec<Handler>,
    pub(crate) config: Option<ConfigExpr>,
}

/// Reads a `route.rs`, pushing every mistake found; `None` when there was any.
pub(crate) fn read_route(
    path: &Path,
    file: &str,
    folder_module: &[String],
    errors: &mut Vec<ScanError>,
) -> Option<RouteFile> {
    let syntax = parse(path, file).map_err(|error| errors.push(error)).ok()?;
    let resolver = Resolver::new(&syntax, folder_module);
    let errors_before = errors.len();
    let mut handlers = Vec::new();
    let mut config = None;
    for item in &syntax.items {
        match item {
            Item::Fn(function) => {
                let Some(method) = Method::from_fn_name(&function.sig.ident.to_string()) else {
                    continue;
                };
                if let Some(reason) = unmountable(function, &handlers, method) {
                    errors.push(ScanError::HandlerUnsupported {
                        file: file.to_owned(),
                        function: method.fn_name().to_owned(),
                        reason,
                    });
                }
                let public = matches!(function.vis, Visibility::Public(_));
                if !public {
                    errors.push(ScanError::HandlerNotPublic {
                        file: file.to_owned(),
                        function: method.fn_name().to_owned(),
                    });
                }
                if function.sig.asyncness.is_none() {
                    errors.push(ScanError::HandlerNotAsync {
                        file: file.to_owned(),
                        function: method.fn_name().to_owned(),
                    });
                }
                let argument_types: Vec<&syn::Type> = function
                    .sig
                    .inputs
                    .iter()
                    .filter_map(|input| match input {
                        FnArg::Typed(typed) => Some(&*typed.ty),
                        FnArg::Receiver(_) => None,
                    })
                    .collect();
                let return_type = match &function.sig.output {
                    ReturnType::Default => None,
                    ReturnType::Type(_, ty) => Some(&**ty),
                };
                handlers.push(Handler {
                    method,
                    shape: shape_of(&argument_types, return_type, &resolver),
                    arguments: function
                        .sig
                        .inputs
                        .iter()
                        .map(|input| match input {
                            FnArg::Typed(typed) => type_text(&typed.ty),
                            FnArg::Receiver(receiver) => receiver.to_token_stream().to_string(),
                        })
                        .collect(),
                    returns: match &function.sig.output {
                        ReturnType::Default => "()".to_owned(),
                        ReturnType::Type(_, ty) => type_text(ty),
                    },
                    docs: doc_comment(&function.attrs),
                });
            }
            Item::Const(constant) if constant.ident == "CONFIG" => {
                check_config_type(&constant.ty, file, errors);
                config = Some(read_config(&constant.vis, &constant.expr, file, errors));
            }
            Item::Static(constant) if constant.ident == "CONFIG" => {
                check_config_type(&constant.ty, file, errors);
                config = Some(read_config(&constant.vis, &constant.expr, file, errors));
            }
            // `pub use`, `pub(crate) use`, …: a name the module exports. A private `use` of
            // one of these names is the file's own business (and clashes with a handler of
            // that name at compile time).
            Item::Use(import) if !matches!(import.vis, Visibility::Inherited) => {
                // A handler or `CONFIG` brought in from elsewhere is invisible to the scanner,
                // so the route would be mounted without it (or with default settings).
                let mut names = Vec::new();
                imported_names(&import.tree, &mut names);
                for name in names {
                    if name == "CONFIG" || Method::from_fn_name(&name).is_some() {
                        errors.push(ScanError::ReExported {
                            file: file.to_owned(),
                            name,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if handlers.is_empty() {
        errors.push(ScanError::NoHandler {
            file: file.to_owned(),
        });
    }
    if errors.len() > errors_before {
        return None;
    }
    handlers.sort_by_key(|handler| handler.method);
    Some(RouteFile { handlers, config })
}

/// Why `function`, a handler for `method`, cannot be mounted as written; `None` when it can.
fn unmountable(function: &syn::ItemFn, seen: &[Handler], method: Method) -> Option<String> {
    let signature = &function.sig;
    let reason = if function
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident("cfg"))
    {
        "it is behind `#[cfg]`, and the router mounts every handler the file declares; put the \
         condition inside the handler"
    } else if seen.iter().any(|handler| handler.method == method) {
        "it is declared twice"
    } else if signature.unsafety.is_some() {
        "an `unsafe fn` is no axum handler"
    } else if signature.abi.is_some() {
        "an `extern` function is no axum handler"
    } else if !signature.generics.params.is_empty() {
        "a generic function cannot be mounted without its type arguments"
    } else if signature
        .inputs
        .iter()
        .any(|input| matches!(input, FnArg::Receiver(_)))
    {
        "a handler takes extractors, not `self`"
    } else {
        return None;
    };
    Some(reason.to_owned())
}

/// The names a `use` tree brings in, as they are known in the file (renames applied).
fn imported_names(tree: &syn::UseTree, names: &mut Vec<String>) {
    match tree {
        syn::UseTree::Path(path) => imported_names(&path.tree, names),
        syn::UseTree::Name(name) => names.push(name.ident.to_string()),
        syn::UseTree::Rename(rename) => names.push(rename.rename.to_string()),
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                imported_names(tree, names);
            }
        }
        // A glob's names are unknown here; the compiler sees them.
        syn::UseTree::Glob(_) => {}
    }
}

/// Pushes an error unless `ty` names `RouteConfig` (by any path).
fn check_config_type(ty: &syn::Type, file: &str, errors: &mut Vec<ScanError>) {
    let is_route_config = matches!(ty, syn::Type::Path(path)
        if path.qself.is_none()
            && path.path.segments.last().is_some_and(|last| last.ident == "RouteConfig"));
    if !is_route_config {
        errors.push(ScanError::ConfigNotRouteConfig {
            file: file.to_owned(),
            ty: type_text(ty),
        });
    }
}

/// Checks that a `middleware.rs` exports `pub async fn middleware`; `false` when it does not
/// (the mistake is pushed).
pub(crate) fn check_middleware(path: &Path, file: &str, errors: &mut Vec<ScanError>) -> bool {
    let syntax = match parse(path, file) {
        Ok(syntax) => syntax,
        Err(error) => {
            errors.push(error);
            return false;
        }
    };
    let exported = syntax.items.iter().any(|item| {
        matches!(item, Item::Fn(function)
            if function.sig.ident == "middleware"
                && matches!(function.vis, Visibility::Public(_))
                && function.sig.asyncness.is_some())
    });
    if !exported {
        errors.push(ScanError::MissingMiddleware {
            file: file.to_owned(),
        });
    }
    exported
}

fn parse(path: &Path, file: &str) -> Result<syn::File, ScanError> {
    let source = fs::read_to_string(path).map_err(|error| ScanError::Io {
        path: file.to_owned(),
        message: error.to_string(),
    })?;
    syn::parse_file(&source).map_err(|error| {
        let start = error.span().start();
        // The lexer's own words say what failed, not why: a delimiter or literal left open.
        let message = match error.to_string().as_str() {
            "cannot parse string into token stream" => {
                "a bracket, brace, parenthesis or literal is not closed".to_owned()
            }
            message => message.to_owned(),
        };
        ScanError::Parse {
            file: file.to_owned(),
            message,
            line: start.line,
            // proc-macro2 counts columns from 0, editors and rustc from 1.
            column: start.column + 1,
        }
    })
}

fn read_config(
    visibility: &Visibility,
    initializer: &Expr,
    file: &str,
    errors: &mut Vec<ScanError>,
) -> ConfigExpr {
    if !matches!(visibility, Visibility::Public(_)) {
        errors.push(ScanError::ConfigNotPublic {
            file: file.to_owned(),
        });
    }
    let mut calls = Vec::new();
    let mut receiver = initializer;
    loop {
        match receiver {
            Expr::MethodCall(call) => {
                calls.push(ConfigCall {
                    method: call.method.to_string(),
                    args: call.args.iter().map(expr_text).collect(),
                });
                receiver = &call.receiver;
            }
            Expr::Paren(inner) => receiver = &inner.expr,
            Expr::Group(inner) => receiver = &inner.expr,
            _ => break,
        }
    }
    calls.reverse();
    ConfigExpr {
        base: expr_text(receiver),
        calls,
    }
}

fn doc_comment(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => Some(text.value()),
            _ => None,
        })
        // `split`, not `lines`: an empty `///` line is an empty string that must stay a line.
        .flat_map(|text| {
            text.split('\n')
                .map(|line| line.trim_end_matches('\r').to_owned())
                .collect::<Vec<_>>()
        })
        .map(|line| line.strip_prefix(' ').map(str::to_owned).unwrap_or(line))
        .collect();
    lines.join("\n").trim().to_owned()
}

/// A type as a person would write it (`State<AppState>`), not as tokens (`State < AppState >`).
pub(crate) fn type_text(ty: &syn::Type) -> String {
    let item: Item = syn::parse_quote!(type __Waypost = #ty;);
    unparse_between(item, "type __Waypost = ")
}

/// An expression as a person would write it (`8 * 1024 * 1024`).
pub(crate) fn expr_text(expr: &Expr) -> String {
    let item: Item = syn::parse_quote!(const __WAYPOST: () = #expr;);
    unparse_between(item, "const __WAYPOST: () = ")
}

/// Lets prettyplease print `item` and keeps what follows `prefix`, on one line.
fn unparse_between(item: Item, prefix: &str) -> String {
    let printed = prettyplease::unparse(&syn::File {
        shebang: None,
        attrs: Vec::new(),
        items: vec![item],
    });
    let lines: Vec<&str> = printed.lines().map(str::trim).collect();
    let one_line = if lines.len() == 1 {
        lines[0].to_owned()
    } else {
        // Long types and expressions come back broken over lines with trailing commas.
        lines
            .join(" ")
            .replace("( ", "(")
            .replace(", )", ")")
            .replace("< ", "<")
            .replace(", >", ">")
    };
    let text = one_line.strip_prefix(prefix).unwrap_or(&one_line);
    text.strip_suffix(';').unwrap_or(text).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_print_as_written() {
        let ty: syn::Type = syn::parse_quote!(Result<Json<Post>, ApiError>);
        assert_eq!(type_text(&ty), "Result<Json<Post>, ApiError>");
        let ty: syn::Type = syn::parse_quote!(&'static str);
        assert_eq!(type_text(&ty), "&'static str");
        let ty: syn::Type = syn::parse_quote!(impl IntoResponse);
        assert_eq!(type_text(&ty), "impl IntoResponse");
    }

    #[test]
    fn expressions_print_as_written() {
        let expr: Expr = syn::parse_quote!(8 * 1024 * 1024);
        assert_eq!(expr_text(&expr), "8 * 1024 * 1024");
        let expr: Expr = syn::parse_quote!(Duration::from_secs(30));
        assert_eq!(expr_text(&expr), "Duration::from_secs(30)");
    }

    #[test]
    fn config_chain_is_read_call_by_call() {
        let expr: Expr = syn::parse_quote!(RouteConfig::new()
            .body_limit(8 * 1024 * 1024)
            .max_duration(Duration::from_secs(30)));
        let mut errors = Vec::new();
        let config = read_config(&syn::parse_quote!(pub), &expr, "route.rs", &mut errors);
        assert!(errors.is_empty());
        assert_eq!(config.base, "RouteConfig::new()");
        assert_eq!(
            config.calls,
            [
                ConfigCall {
                    method: "body_limit".into(),
                    args: vec!["8 * 1024 * 1024".into()]
                },
                ConfigCall {
                    method: "max_duration".into(),
                    args: vec!["Duration::from_secs(30)".into()]
                },
            ]
        );
        assert_eq!(
            config.to_string(),
            "RouteConfig::new().body_limit(8 * 1024 * 1024).max_duration(Duration::from_secs(30))"
        );
    }

    #[test]
    fn doc_comments_lose_one_leading_space_per_line() {
        let function: syn::ItemFn = syn::parse_quote! {
            /// Fetch one post.
            ///
            ///   Indented.
            pub async fn get() {}
        };
        assert_eq!(
            doc_comment(&function.attrs),
            "Fetch one post.\n\n  Indented."
        );
    }
}
