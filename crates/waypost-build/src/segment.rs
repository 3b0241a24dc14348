//! The folder-name grammar of `src/app`: what one folder adds to the URL and to the generated
//! module tree.
//!
//! `posts` is a static segment, `[id]` a parameter, `[...slug]` a catch-all (one or more
//! segments), `[[...path]]` an optional catch-all (zero or more), `(admin)` a group that stays out
//! of the URL, and `_internal` a private folder that is never routed.

use std::fmt;

/// How a path parameter was declared by its folder name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParamKind {
    /// `[id]`: exactly one segment.
    Single,
    /// `[...slug]`: one or more segments.
    CatchAll,
    /// `[[...path]]`: zero or more segments.
    OptionalCatchAll,
}

impl ParamKind {
    /// Whether the parameter swallows the rest of the path, so nothing may follow it.
    pub const fn is_catch_all(self) -> bool {
        matches!(self, ParamKind::CatchAll | ParamKind::OptionalCatchAll)
    }
}

/// What one folder name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `posts`: matched literally.
    Static(String),
    /// `[id]`, `[...slug]` or `[[...path]]`: a path parameter.
    Dynamic {
        /// The name between the brackets.
        name: String,
        /// How many URL segments it takes.
        kind: ParamKind,
    },
    /// `(admin)`: organises files without appearing in the URL.
    Group(String),
    /// `_internal`: never routed, not even scanned.
    Private,
}

/// Why a folder name is not a valid segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// `[]`, `[...]`, `[[...]]`.
    #[error("the parameter has no name")]
    EmptyParamName,
    /// `[foo-bar]`, `[1x]`: the name becomes a Rust field of `Params`.
    #[error("parameter name `{name}` is not a Rust identifier (letters, digits and `_`, not starting with a digit)")]
    InvalidParamName {
        /// The name between the brackets.
        name: String,
    },
    /// `[type]`: the name becomes a Rust field of `Params`.
    #[error("parameter name `{name}` is a Rust keyword")]
    KeywordParamName {
        /// The name between the brackets.
        name: String,
    },
    /// `[[id]]`, `[..id]`, `a[b]`, `(x`: brackets that match no form of the grammar.
    #[error("brackets must be `[name]`, `[...name]`, `[[...name]]` or `(group)`")]
    Malformed,
    /// A static or group name with characters a URL path cannot carry unescaped.
    #[error("`{name}` may only contain the URL-safe characters `A-Z a-z 0-9 . _ ~ -`")]
    InvalidStaticName {
        /// The offending name.
        name: String,
    },
}

impl Segment {
    /// Reads a folder name.
    ///
    /// # Errors
    /// Returns why the name fits no form of the grammar.
    ///
    /// # Example
    /// ```
    /// use waypost_build::{ParamKind, Segment};
    ///
    /// assert_eq!(
    ///     Segment::parse("[...slug]"),
    ///     Ok(Segment::Dynamic { name: "slug".into(), kind: ParamKind::CatchAll })
    /// );
    /// assert_eq!(Segment::parse("(admin)"), Ok(Segment::Group("admin".into())));
    /// assert!(Segment::parse("[foo-bar]").is_err());
    /// ```
    pub fn parse(folder: &str) -> Result<Segment, SegmentError> {
        if folder.starts_with('_') {
            return Ok(Segment::Private);
        }
        if let Some(name) = folder
            .strip_prefix('(')
            .and_then(|rest| rest.strip_suffix(')'))
        {
            check_static_name(name)?;
            return Ok(Segment::Group(name.to_owned()));
        }
        let dynamic = if let Some(name) = strip_around(folder, "[[...", "]]") {
            Some((name, ParamKind::OptionalCatchAll))
        } else if let Some(name) = strip_around(folder, "[...", "]") {
            Some((name, ParamKind::CatchAll))
        } else {
            strip_around(folder, "[", "]").map(|name| (name, ParamKind::Single))
        };
        if let Some((name, kind)) = dynamic {
            if name.contains(['[', ']', '(', ')', '.']) {
                return Err(SegmentError::Malformed);
            }
            check_param_name(name)?;
            return Ok(Segment::Dynamic {
                name: name.to_owned(),
                kind,
            });
        }
        if folder.contains(['[', ']', '(', ')']) {
            return Err(SegmentError::Malformed);
        }
        check_static_name(folder)?;
        Ok(Segment::Static(folder.to_owned()))
    }

    /// The segment as it stands in an axum path: `posts`, `{id}`, `{*slug}`; `None` for groups
    /// and private folders, which add nothing.
    pub fn url_part(&self) -> Option<String> {
        match self {
            Segment::Static(name) => Some(name.clone()),
            Segment::Dynamic {
                name,
                kind: ParamKind::Single,
            } => Some(format!("{{{name}}}")),
            Segment::Dynamic { name, .. } => Some(format!("{{*{name}}}")),
            Segment::Group(_) | Segment::Private => None,
        }
    }

    /// The name of the generated module for this folder (`param_id`, `group_admin`, `r#type`).
    ///
    /// Modules are mounted with `#[path]`, so this name never has to match the folder; it only
    /// has to be a valid identifier that says where it came from.
    pub fn module_name(&self) -> String {
        match self {
            Segment::Static(name) => static_module_name(name),
            Segment::Dynamic {
                name,
                kind: ParamKind::Single,
            } => format!("param_{name}"),
            Segment::Dynamic {
                name,
                kind: ParamKind::CatchAll,
            } => format!("catch_all_{name}"),
            Segment::Dynamic {
                name,
                kind: ParamKind::OptionalCatchAll,
            } => format!("optional_{name}"),
            Segment::Group(name) => format!("group_{}", sanitize(name)),
            Segment::Private => "private".to_owned(),
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Static(name) => f.write_str(name),
            Segment::Dynamic {
                name,
                kind: ParamKind::Single,
            } => write!(f, "[{name}]"),
            Segment::Dynamic {
                name,
                kind: ParamKind::CatchAll,
            } => write!(f, "[...{name}]"),
            Segment::Dynamic {
                name,
                kind: ParamKind::OptionalCatchAll,
            } => write!(f, "[[...{name}]]"),
            Segment::Group(name) => write!(f, "({name})"),
            Segment::Private => f.write_str("_"),
        }
    }
}

fn strip_around<'a>(text: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)?.strip_suffix(suffix)
}

fn check_static_name(name: &str) -> Result<(), SegmentError> {
    let url_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-');
    if name.is_empty() || !name.chars().all(url_safe) {
        return Err(SegmentError::InvalidStaticName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

fn check_param_name(name: &str) -> Result<(), SegmentError> {
    if name.is_empty() {
        return Err(SegmentError::EmptyParamName);
    }
    // ASCII only: the name is also a URL placeholder and a serde field name.
    let identifier = name != "_"
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(SegmentError::InvalidParamName {
            name: name.to_owned(),
        });
    }
    if is_keyword(name) {
        return Err(SegmentError::KeywordParamName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Whether `name` (already made of identifier characters) is reserved by Rust; syn knows the
/// list, including the words reserved for the future, but for `gen`, reserved by the 2024
/// edition (an app may be on either edition).
fn is_keyword(name: &str) -> bool {
    name == "gen" || syn::parse_str::<syn::Ident>(name).is_err()
}

fn sanitize(name: &str) -> String {
    let mut module: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if module == "_" || module.starts_with(|c: char| c.is_ascii_digit()) {
        module.insert(0, '_');
    }
    module
}

fn static_module_name(name: &str) -> String {
    let module = sanitize(name);
    match module.as_str() {
        // The path keywords cannot be raw identifiers.
        "self" | "Self" | "super" | "crate" => format!("{module}_"),
        // What the generator itself puts in a folder's module: the route and middleware files
        // and the `Params` type.
        "route" | "middleware" | "Params" => format!("{module}_"),
        _ if is_keyword(&module) => format!("r#{module}"),
        _ => module,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(name: &str, kind: ParamKind) -> Segment {
        Segment::Dynamic {
            name: name.to_owned(),
            kind,
        }
    }

    #[test]
    fn plain_folder_is_a_static_segment() {
        assert_eq!(Segment::parse("posts"), Ok(Segment::Static("posts".into())));
        assert_eq!(
            Segment::parse("robots.txt"),
            Ok(Segment::Static("robots.txt".into()))
        );
        assert_eq!(Segment::parse("a~b-c"), Ok(Segment::Static("a~b-c".into())));
    }

    #[test]
    fn brackets_declare_parameters_of_three_kinds() {
        assert_eq!(Segment::parse("[id]"), Ok(dynamic("id", ParamKind::Single)));
        assert_eq!(
            Segment::parse("[...slug]"),
            Ok(dynamic("slug", ParamKind::CatchAll))
        );
        assert_eq!(
            Segment::parse("[[...path]]"),
            Ok(dynamic("path", ParamKind::OptionalCatchAll))
        );
        assert_eq!(
            Segment::parse("[_id2]"),
            Ok(dynamic("_id2", ParamKind::Single))
        );
    }

    #[test]
    fn parentheses_make_a_group_and_underscore_a_private_folder() {
        assert_eq!(
            Segment::parse("(admin)"),
            Ok(Segment::Group("admin".into()))
        );
        assert_eq!(Segment::parse("_internal"), Ok(Segment::Private));
        assert_eq!(Segment::parse("_[id]"), Ok(Segment::Private));
    }

    #[test]
    fn parameter_names_must_be_non_keyword_identifiers() {
        assert_eq!(Segment::parse("[]"), Err(SegmentError::EmptyParamName));
        assert_eq!(Segment::parse("[...]"), Err(SegmentError::EmptyParamName));
        assert_eq!(Segment::parse("[[...]]"), Err(SegmentError::EmptyParamName));
        for name in ["foo-bar", "1x", "_", "é", "r#id"] {
            assert_eq!(
                Segment::parse(&format!("[{name}]")),
                Err(SegmentError::InvalidParamName { name: name.into() }),
                "{name}"
            );
        }
        for name in ["type", "self", "async", "fn", "gen"] {
            assert_eq!(
                Segment::parse(&format!("[{name}]")),
                Err(SegmentError::KeywordParamName { name: name.into() }),
                "{name}"
            );
        }
    }

    #[test]
    fn stray_brackets_are_malformed() {
        for folder in ["[[id]]", "[..id]", "a[b]", "[id", "(x", "x)", "[[...id]"] {
            assert_eq!(
                Segment::parse(folder),
                Err(SegmentError::Malformed),
                "{folder}"
            );
        }
    }

    #[test]
    fn static_names_must_be_url_safe() {
        for folder in ["hello world", "a+b", "café", "%20"] {
            assert_eq!(
                Segment::parse(folder),
                Err(SegmentError::InvalidStaticName {
                    name: folder.into()
                }),
                "{folder}"
            );
        }
        assert_eq!(
            Segment::parse("(a b)"),
            Err(SegmentError::InvalidStaticName { name: "a b".into() })
        );
        assert_eq!(
            Segment::parse("()"),
            Err(SegmentError::InvalidStaticName { name: "".into() })
        );
    }

    #[test]
    fn url_parts_follow_axum_syntax() {
        let part = |folder: &str| Segment::parse(folder).unwrap().url_part();
        assert_eq!(part("posts").as_deref(), Some("posts"));
        assert_eq!(part("[id]").as_deref(), Some("{id}"));
        assert_eq!(part("[...slug]").as_deref(), Some("{*slug}"));
        assert_eq!(part("[[...path]]").as_deref(), Some("{*path}"));
        assert_eq!(part("(admin)"), None);
    }

    #[test]
    fn module_names_are_identifiers_that_say_where_they_came_from() {
        let module = |folder: &str| Segment::parse(folder).unwrap().module_name();
        assert_eq!(module("posts"), "posts");
        assert_eq!(module("user-profile"), "user_profile");
        assert_eq!(module("robots.txt"), "robots_txt");
        assert_eq!(module("v1.2~x"), "v1_2_x");
        assert_eq!(module("2024"), "_2024");
        assert_eq!(module("-"), "__");
        assert_eq!(module("type"), "r#type");
        assert_eq!(module("self"), "self_");
        assert_eq!(module("gen"), "r#gen");
        // Names the generator uses inside a folder's module.
        assert_eq!(module("route"), "route_");
        assert_eq!(module("middleware"), "middleware_");
        assert_eq!(module("Params"), "Params_");
        assert_eq!(module("[id]"), "param_id");
        assert_eq!(module("[...slug]"), "catch_all_slug");
        assert_eq!(module("[[...path]]"), "optional_path");
        assert_eq!(module("(admin)"), "group_admin");
        assert_eq!(module("(my-group)"), "group_my_group");
    }

    #[test]
    fn display_gives_back_the_folder_name() {
        for folder in ["posts", "[id]", "[...slug]", "[[...path]]", "(admin)"] {
            assert_eq!(Segment::parse(folder).unwrap().to_string(), folder);
        }
    }
}
