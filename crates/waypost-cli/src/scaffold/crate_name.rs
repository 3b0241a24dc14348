//! Checking the name given to `waypost new`: it becomes the package name in `Cargo.toml` and,
//! with `-` turned into `_`, the library's name in Rust code, so it must be valid as both.

/// A name cargo accepts for a package whose library the scaffold's `main.rs` and tests import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CrateName {
    package: String,
}

/// Rust keywords (strict and reserved, all editions): a library cannot be named after one.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names that clash with a crate every app links (the standard library, the test harness, the
/// app's own Waypost dependencies) or with a folder cargo makes in the target directory.
const TAKEN: &[&str] = &[
    "alloc",
    "build",
    "core",
    "deps",
    "examples",
    "incremental",
    "proc_macro",
    "std",
    "test",
    "waypost",
    "waypost_build",
];

/// Long enough for any real name; crates.io's own limit.
const MAX_LEN: usize = 64;

impl CrateName {
    /// Checks `name`.
    ///
    /// # Errors
    /// A sentence saying what is wrong with it.
    pub(crate) fn parse(name: &str) -> Result<CrateName, String> {
        let refuse = |why: &str| Err(format!("`{name}` cannot be an app name: {why}"));
        let Some(first) = name.chars().next() else {
            return Err("the app name is empty".to_owned());
        };
        if !first.is_ascii_alphabetic() {
            return refuse("it must start with a letter");
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return refuse(&format!(
                "`{bad}` is not allowed; use letters, digits, `-` and `_`"
            ));
        }
        if name.len() > MAX_LEN {
            return refuse(&format!("it is longer than {MAX_LEN} characters"));
        }
        let ident = name.replace('-', "_");
        if KEYWORDS.contains(&ident.as_str()) {
            return refuse("it is a Rust keyword");
        }
        if TAKEN.contains(&ident.to_ascii_lowercase().as_str()) {
            return refuse("that name is taken by a crate every app uses or by cargo itself");
        }
        Ok(CrateName {
            package: name.to_owned(),
        })
    }

    /// The package name, as typed.
    pub(crate) fn package(&self) -> &str {
        &self.package
    }

    /// The library's name in Rust code (`my-api` → `my_api`).
    pub(crate) fn ident(&self) -> String {
        self.package.replace('-', "_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted_and_dashes_become_underscores_in_code() {
        let name = CrateName::parse("my-api2").unwrap();
        assert_eq!(name.package(), "my-api2");
        assert_eq!(name.ident(), "my_api2");
        assert_eq!(CrateName::parse("demo").unwrap().ident(), "demo");
    }

    #[test]
    fn names_that_are_not_crate_names_are_refused_with_the_reason() {
        let cases = [
            ("", "the app name is empty"),
            ("1st", "must start with a letter"),
            ("_x", "must start with a letter"),
            ("my app", "` ` is not allowed"),
            ("café", "`é` is not allowed"),
            ("a/b", "`/` is not allowed"),
            ("fn", "Rust keyword"),
            ("async", "Rust keyword"),
            ("test", "taken"),
            ("waypost-build", "taken"),
            ("Std", "taken"),
        ];
        for (name, why) in cases {
            let error = CrateName::parse(name).unwrap_err();
            assert!(error.contains(why), "{name}: {error}");
        }
        assert!(CrateName::parse(&"a".repeat(65)).is_err());
    }
}
