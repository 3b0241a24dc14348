//! Finding the app crate a command works on, from whatever folder the user pointed at.

use std::path::{Path, PathBuf};

/// An app crate: its root and the folder its routes live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppCrate {
    /// The crate root, which file paths are shown relative to.
    pub(crate) root: PathBuf,
    /// `<root>/src/app`.
    pub(crate) app_dir: PathBuf,
}

impl AppCrate {
    /// Accepts the crate root or its `src/app` folder itself.
    ///
    /// # Errors
    /// A message when `dir` is neither.
    pub(crate) fn locate(dir: &Path) -> Result<AppCrate, String> {
        // Absolute, so the scanner does not read a relative app folder as below the root twice.
        let dir =
            &std::path::absolute(dir).map_err(|error| format!("`{}`: {error}", dir.display()))?;
        if dir.join("src").join("app").is_dir() || dir.join("Cargo.toml").is_file() {
            // A crate without `src/app` still goes to the scanner, which says what is missing.
            return Ok(AppCrate {
                root: dir.to_owned(),
                app_dir: dir.join("src").join("app"),
            });
        }
        let is_named = |path: &Path, name: &str| path.file_name().is_some_and(|n| n == name);
        if dir.is_dir() && is_named(dir, "app") {
            if let Some(src) = dir.parent().filter(|src| is_named(src, "src")) {
                return Ok(AppCrate {
                    root: src.parent().unwrap_or(src).to_owned(),
                    app_dir: dir.to_owned(),
                });
            }
        }
        Err(format!(
            "`{}` is neither an app crate (a folder with `src/app` or `Cargo.toml`) nor its `src/app` folder",
            dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../waypost-build/tests/fixtures/sample")
    }

    #[test]
    fn crate_root_is_accepted() {
        let app = AppCrate::locate(&sample()).unwrap();
        assert_eq!(app.root, sample());
        assert_eq!(app.app_dir, sample().join("src/app"));
    }

    #[test]
    fn src_app_folder_leads_back_to_the_crate_root() {
        let app = AppCrate::locate(&sample().join("src/app")).unwrap();
        assert_eq!(app.root, sample());
        assert_eq!(app.app_dir, sample().join("src/app"));
    }

    #[test]
    fn other_folders_are_refused() {
        let error = AppCrate::locate(&sample().join("src")).unwrap_err();
        assert!(error.contains("is neither an app crate"), "{error}");
    }
}
