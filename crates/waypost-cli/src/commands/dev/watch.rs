//! Noticing edits to the app: its `src/` tree, `Cargo.toml` and `build.rs`, with a burst of
//! events (an editor's save is often several) gathered into one change.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the files must stay quiet before a burst of events counts as one change.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(200);

/// One path an event was about.
struct Touched {
    path: PathBuf,
    /// The event created it.
    created: bool,
}

/// The files of an app crate that a rebuild depends on, watched.
pub(crate) struct Changes {
    root: PathBuf,
    events: mpsc::UnboundedReceiver<Touched>,
    /// The burst being gathered, per path whether its first event created it. Kept here, not
    /// in `next`, so a `next` cancelled by `select!` loses nothing.
    burst: BTreeMap<PathBuf, bool>,
    // Watching stops when the watcher is dropped.
    _watcher: RecommendedWatcher,
}

impl Changes {
    /// Starts watching the crate at `root` (an absolute path).
    ///
    /// # Errors
    /// The operating system refused a watch.
    pub(crate) fn watch(root: &Path) -> notify::Result<Changes> {
        let (sender, events) = mpsc::unbounded_channel();
        let filter_root = root.to_owned();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if is_a_change(event.kind) => {
                    let created = matches!(event.kind, EventKind::Create(_));
                    for path in event.paths {
                        if is_watched(&filter_root, &path) {
                            let _ = sender.send(Touched { path, created });
                        }
                    }
                }
                Ok(_) => {}
                Err(error) => eprintln!("[waypost] watching files: {error}"),
            })?;
        watcher.watch(&root.join("src"), RecursiveMode::Recursive)?;
        // The root itself, not the two files: editors that save by replacing a file would
        // leave a watch on the file itself pointing at the deleted original.
        watcher.watch(root, RecursiveMode::NonRecursive)?;
        Ok(Changes {
            root: root.to_owned(),
            events,
            burst: BTreeMap::new(),
            _watcher: watcher,
        })
    }

    /// Waits for a change, then until the files have been quiet for [`DEBOUNCE`]; the paths
    /// that changed, relative to the crate root. Files that came and went within the burst (an
    /// editor's temporary copy, renamed over the real file) are left out, and a burst of only
    /// those is no change. `None` when watching has stopped.
    pub(crate) async fn next(&mut self) -> Option<BTreeSet<PathBuf>> {
        loop {
            if self.burst.is_empty() {
                let first = self.events.recv().await?;
                self.burst.insert(first.path, first.created);
            }
            while let Ok(Some(touched)) = tokio::time::timeout(DEBOUNCE, self.events.recv()).await {
                self.burst.entry(touched.path).or_insert(touched.created);
            }
            let changed: BTreeSet<PathBuf> = std::mem::take(&mut self.burst)
                .into_iter()
                .filter(|(path, created)| !created || path.exists())
                .map(|(path, _)| self.relative(path))
                .collect();
            if !changed.is_empty() {
                return Some(changed);
            }
        }
    }

    fn relative(&self, path: PathBuf) -> PathBuf {
        path.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .unwrap_or(path)
    }
}

/// Anything but reading: cargo and editors open sources without changing them.
fn is_a_change(kind: EventKind) -> bool {
    !matches!(kind, EventKind::Access(_))
}

/// `src/**` (except editors' scratch files), `Cargo.toml` and `build.rs`.
fn is_watched(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    if relative == Path::new("Cargo.toml") || relative == Path::new("build.rs") {
        return true;
    }
    relative.starts_with("src") && !is_scratch_file(relative)
}

/// Swap, backup and lock files editors write beside the file being edited.
fn is_scratch_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        // Vim writes and deletes this to test whether a folder is writable.
        || name == "4913"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_manifest_and_build_script_are_watched_and_nothing_else() {
        let root = Path::new("/app");
        for watched in [
            "/app/src/lib.rs",
            "/app/src/app/api/hello/route.rs",
            "/app/src/app/api/new",
            "/app/Cargo.toml",
            "/app/build.rs",
        ] {
            assert!(is_watched(root, Path::new(watched)), "{watched}");
        }
        for ignored in [
            "/app/target/debug/app",
            "/app/Cargo.lock",
            "/app/README.md",
            "/app/srcs/x.rs",
            "/app/src/app/api/hello/.route.rs.swp",
            "/app/src/lib.rs~",
            "/app/src/4913",
            "/elsewhere/src/lib.rs",
        ] {
            assert!(!is_watched(root, Path::new(ignored)), "{ignored}");
        }
    }

    #[tokio::test]
    async fn a_burst_of_edits_arrives_as_one_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("src/app")).unwrap();
        let mut changes = Changes::watch(&root).unwrap();
        std::fs::write(root.join("src/lib.rs"), "// one").unwrap();
        std::fs::write(root.join("src/app/route.rs"), "// two").unwrap();
        std::fs::write(root.join("Cargo.lock"), "# ignored").unwrap();
        let changed = tokio::time::timeout(Duration::from_secs(10), changes.next())
            .await
            .expect("a change within 10 s")
            .unwrap();
        assert_eq!(
            changed,
            BTreeSet::from([
                PathBuf::from("src/app/route.rs"),
                PathBuf::from("src/lib.rs")
            ])
        );
    }

    #[tokio::test]
    async fn a_temporary_copy_renamed_over_the_file_is_not_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/lib.rs"), "// before").unwrap();
        let mut changes = Changes::watch(&root).unwrap();
        // What `sed -i` and many editors do.
        std::fs::write(root.join("src/sedXYZ"), "// after").unwrap();
        std::fs::rename(root.join("src/sedXYZ"), root.join("src/lib.rs")).unwrap();
        let changed = tokio::time::timeout(Duration::from_secs(10), changes.next())
            .await
            .expect("a change within 10 s")
            .unwrap();
        assert_eq!(changed, BTreeSet::from([PathBuf::from("src/lib.rs")]));
    }
}
