//! The Waypost checkout a new app depends on. Waypost is not on crates.io, so the app points at
//! `crates/waypost` and `crates/waypost-build` by path, takes its other dependencies' versions
//! from the checkout's `[workspace.dependencies]`, and starts from the checkout's `Cargo.lock`,
//! so it builds with the versions Waypost itself is tested with.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// A Waypost checkout: the workspace root holding `crates/waypost` and `crates/waypost-build`.
#[derive(Debug, Clone)]
pub(crate) struct WaypostSource {
    root: PathBuf,
    manifest: String,
    lock: Option<String>,
}

impl WaypostSource {
    /// The checkout this binary was built from.
    pub(crate) fn built_from() -> PathBuf {
        // `CARGO_MANIFEST_DIR` is `<root>/crates/waypost-cli`.
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Opens the checkout at `root`.
    ///
    /// # Errors
    /// `root` is not a Waypost checkout, or its manifest cannot be read.
    pub(crate) fn open(root: &Path) -> Result<WaypostSource, String> {
        let not_waypost = || {
            format!(
                "`{}` is not a Waypost checkout (no `crates/waypost/Cargo.toml`); \
                 point --waypost-path at one",
                root.display()
            )
        };
        // Canonical, so the app's Cargo.toml holds a clean absolute path.
        let root = fs::canonicalize(root).map_err(|_| not_waypost())?;
        for krate in ["waypost", "waypost-build"] {
            if !root.join("crates").join(krate).join("Cargo.toml").is_file() {
                return Err(not_waypost());
            }
        }
        let manifest_path = root.join("Cargo.toml");
        let manifest = fs::read_to_string(&manifest_path)
            .map_err(|error| format!("`{}`: {error}", manifest_path.display()))?;
        let lock = fs::read_to_string(root.join("Cargo.lock")).ok();
        Ok(WaypostSource {
            root,
            manifest,
            lock,
        })
    }

    /// `<root>/crates/<name>`.
    pub(crate) fn crate_dir(&self, name: &str) -> PathBuf {
        self.root.join("crates").join(name)
    }

    /// The checkout's `Cargo.lock`, if it has one.
    pub(crate) fn lock(&self) -> Option<&str> {
        self.lock.as_deref()
    }

    /// How the checkout's `[workspace.dependencies]` specifies `name`: the text after `=`,
    /// e.g. `{ version = "1.0.228", features = ["derive"] }`.
    ///
    /// # Errors
    /// The table has no single-line entry for `name`.
    pub(crate) fn dependency(&self, name: &str) -> Result<&str, String> {
        workspace_dependency(&self.manifest, name).ok_or_else(|| {
            format!(
                "`{}` has no `{name} = …` line in [workspace.dependencies]",
                self.root.join("Cargo.toml").display()
            )
        })
    }
}

/// The value of `name` in the `[workspace.dependencies]` table of `manifest`. The workspace
/// writes each dependency on one line, which is all this reads; a TOML parser would be one
/// more dependency for four lines.
fn workspace_dependency<'a>(manifest: &'a str, name: &str) -> Option<&'a str> {
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[workspace.dependencies]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim())
        .filter(|value| {
            (value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('{') && value.ends_with('}'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[workspace]
members = ["a"]

[workspace.dependencies]
serde = { version = "1.0.228", features = ["derive"] }
serde_json = "1.0.145"
broken = { version = "1",
  features = [] }

[workspace.lints.rust]
tokio = "not a dependency"
"#;

    #[test]
    fn dependency_specs_are_read_from_the_workspace_table() {
        assert_eq!(
            workspace_dependency(MANIFEST, "serde"),
            Some(r#"{ version = "1.0.228", features = ["derive"] }"#)
        );
        assert_eq!(
            workspace_dependency(MANIFEST, "serde_json"),
            Some(r#""1.0.145""#)
        );
    }

    #[test]
    fn entries_outside_the_table_or_over_several_lines_are_not_read() {
        assert_eq!(workspace_dependency(MANIFEST, "tokio"), None);
        assert_eq!(workspace_dependency(MANIFEST, "broken"), None);
        assert_eq!(workspace_dependency(MANIFEST, "members"), None);
    }

    #[test]
    fn this_checkout_is_a_waypost_source_with_the_scaffold_dependencies() {
        let source = WaypostSource::open(&WaypostSource::built_from()).unwrap();
        for name in ["serde", "serde_json", "tokio"] {
            source.dependency(name).unwrap();
        }
        assert!(source.crate_dir("waypost").join("src/lib.rs").is_file());
        assert!(source.lock().is_some());
    }

    #[test]
    fn a_folder_without_the_crates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = WaypostSource::open(dir.path()).unwrap_err();
        assert!(error.contains("is not a Waypost checkout"), "{error}");
    }
}
