//! What `waypost new` writes: a complete app crate from templates embedded in the binary
//! (`templates/new/`), so scaffolding needs no network and no files beside the binary.
//!
//! Templates hold `{{key}}` placeholders, filled from the app's name and the Waypost checkout it
//! depends on; nothing else about them is special.

mod crate_name;
mod waypost_source;

use std::path::{Path, PathBuf};

pub(crate) use crate_name::CrateName;
pub(crate) use waypost_source::WaypostSource;

/// Each file of a new app: its path in the app and its template.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/new/Cargo.toml.tmpl"),
    ),
    ("build.rs", include_str!("../../templates/new/build.rs")),
    (".gitignore", include_str!("../../templates/new/gitignore")),
    ("README.md", include_str!("../../templates/new/README.md")),
    ("src/lib.rs", include_str!("../../templates/new/src/lib.rs")),
    (
        "src/main.rs",
        include_str!("../../templates/new/src/main.rs"),
    ),
    (
        "src/app/api/hello/route.rs",
        include_str!("../../templates/new/src/app/api/hello/route.rs"),
    ),
    (
        "src/app/api/hello/[name]/route.rs",
        include_str!("../../templates/new/src/app/api/hello/[name]/route.rs"),
    ),
    (
        "src/app/api/openapi.json/route.rs",
        include_str!("../../templates/new/src/app/api/openapi.json/route.rs"),
    ),
    (
        "src/app/docs/route.rs",
        include_str!("../../templates/new/src/app/docs/route.rs"),
    ),
    (
        "tests/hello.rs",
        include_str!("../../templates/new/tests/hello.rs"),
    ),
];

/// The dependencies whose versions come from the Waypost workspace.
const PINNED: [&str; 3] = ["serde", "serde_json", "tokio"];

/// A file to write, relative to the app's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    pub(crate) path: PathBuf,
    pub(crate) contents: String,
}

/// Every file of an app named `name` depending on the Waypost checkout `source`.
///
/// # Errors
/// The checkout's workspace lacks a dependency the app needs.
pub(crate) fn files(name: &CrateName, source: &WaypostSource) -> Result<Vec<File>, String> {
    let mut values = vec![
        ("name", name.package().to_owned()),
        ("crate_name", name.ident()),
        ("waypost_path", toml_string(&source.crate_dir("waypost"))),
        (
            "waypost_build_path",
            toml_string(&source.crate_dir("waypost-build")),
        ),
    ];
    for dependency in PINNED {
        values.push((dependency, source.dependency(dependency)?.to_owned()));
    }
    let mut files: Vec<File> = TEMPLATES
        .iter()
        .map(|(path, template)| File {
            path: PathBuf::from(path),
            contents: render(template, &values),
        })
        .collect();
    if let Some(lock) = source.lock() {
        // Cargo keeps the entries the app uses and drops the rest at the first build.
        files.push(File {
            path: PathBuf::from("Cargo.lock"),
            contents: lock.to_owned(),
        });
    }
    Ok(files)
}

/// `template` with each `{{key}}` replaced by its value; unknown keys are left as written.
fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let key = &after[..end];
            values
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| (value, end))
        });
        match value {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `path` as a TOML basic string.
fn toml_string(path: &Path) -> String {
    let mut out = String::from("\"");
    for c in path.to_string_lossy().chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_unknown_ones_kept() {
        let values = [("name", "demo".to_owned()), ("x", "1".to_owned())];
        assert_eq!(
            render("a {{name}} b {{x}}{{x}} {{other}} {{", &values),
            "a demo b 11 {{other}} {{"
        );
        assert_eq!(render("no placeholders {}", &values), "no placeholders {}");
    }

    #[test]
    fn every_template_is_filled_completely() {
        let source = WaypostSource::open(&WaypostSource::built_from()).unwrap();
        let files = files(&CrateName::parse("my-app").unwrap(), &source).unwrap();
        for file in &files {
            assert!(
                !file.contents.contains("{{"),
                "{} keeps a placeholder",
                file.path.display()
            );
        }
        let manifest = &files[0].contents;
        assert!(manifest.contains("name = \"my-app\""), "{manifest}");
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        let main = files.iter().find(|f| f.path.ends_with("main.rs")).unwrap();
        assert!(main.contents.contains("use my_app::{router, AppState};"));
    }

    #[test]
    fn paths_are_quoted_for_toml() {
        assert_eq!(toml_string(Path::new(r#"/a "b"\c"#)), r#""/a \"b\"\\c""#);
    }
}
