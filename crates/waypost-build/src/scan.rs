//! Walking `src/app`: turning folders into URLs and generated modules, reading every `route.rs`
//! and `middleware.rs`, and checking the tree as a whole (duplicate URLs, clashing parameters,
//! catch-alls that are not last).

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::{Path, PathBuf},
};

use crate::{
    errors::{ScanError, ScanErrors},
    route_file,
    segment::{ParamKind, Segment},
    shape::PathShape,
    table::{Handler, Middleware, Param, Route, RouteTable},
};

/// Scans `app_dir` (usually `<crate_root>/src/app`) and returns its route table, or every mistake
/// in the tree.
///
/// A relative `app_dir` is taken relative to `crate_root`; file paths in the table and in errors
/// are relative to `crate_root`.
///
/// # Errors
/// Returns all mistakes found, each naming its files: see [`ScanError`].
///
/// # Example
/// ```
/// use std::path::Path;
///
/// let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample");
/// let table = waypost_build::scan(&root, Path::new("src/app")).unwrap();
/// let hello = table.routes.iter().find(|route| route.pattern == "/api/hello").unwrap();
/// assert_eq!(hello.file, "src/app/api/hello/route.rs");
/// ```
pub fn scan(crate_root: &Path, app_dir: &Path) -> Result<RouteTable, ScanErrors> {
    let crate_root = std::path::absolute(crate_root).unwrap_or_else(|_| crate_root.to_owned());
    let app_dir = crate_root.join(app_dir);
    let mut scanner = Scanner {
        crate_root: &crate_root,
        errors: Vec::new(),
        routes: Vec::new(),
        middleware: Vec::new(),
        dynamic_levels: BTreeMap::new(),
        visiting: Vec::new(),
        holds_route_files: HashMap::new(),
        looking_in: Vec::new(),
    };
    if !app_dir.is_dir() {
        return Err(ScanError::AppDirMissing {
            path: scanner.relative(&app_dir),
        }
        .into());
    }
    scanner.visit(&app_dir, Folder::default());
    scanner.check_dynamic_levels();
    scanner.check_duplicate_urls();
    let Scanner {
        errors,
        mut routes,
        middleware,
        ..
    } = scanner;
    if !errors.is_empty() {
        return Err(ScanErrors::new(errors));
    }
    routes.sort_by_cached_key(|route| sort_key(&route.pattern));
    Ok(RouteTable {
        crate_root,
        app_dir,
        routes,
        middleware,
    })
}

/// Orders patterns level by level: static segments, then parameters, then catch-alls, each
/// alphabetically; a route comes before the routes below it.
fn sort_key(pattern: &str) -> Vec<(u8, String)> {
    pattern
        .split('/')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let rank = if part.starts_with("{*") {
                2
            } else if part.starts_with('{') {
                1
            } else {
                0
            };
            (rank, part.to_owned())
        })
        .collect()
}

struct Scanner<'a> {
    crate_root: &'a Path,
    errors: Vec<ScanError>,
    routes: Vec<Route>,
    middleware: Vec<Middleware>,
    /// The dynamic folders under each URL prefix: prefix → folder name → first such folder.
    /// Kept across groups, since `(a)/[id]` and `(b)/[slug]` compete for the same segment.
    dynamic_levels: BTreeMap<String, BTreeMap<String, String>>,
    /// The folders being visited, outermost first: canonical path (symlinks resolved) and the
    /// path as the tree shows it. A folder that is its own ancestor is a symlink loop.
    visiting: Vec<(PathBuf, String)>,
    /// Whether each folder (canonical path) holds a route file somewhere below: asked once per
    /// folder, not once per ancestor.
    holds_route_files: HashMap<PathBuf, bool>,
    /// The folders [`Scanner::holds_route_files`] is looking into, to stop at a loop.
    looking_in: Vec<PathBuf>,
}

/// What a folder inherits from the folders above it.
#[derive(Debug, Clone)]
struct Folder {
    url: Vec<String>,
    module_path: Vec<String>,
    /// Each parameter with the folder that declares it.
    params: Vec<(Param, String)>,
    middleware: Vec<Middleware>,
    /// The first catch-all folder above, and whether a URL segment follows it.
    catch_all: Option<String>,
    below_catch_all: bool,
    /// False below a folder whose name is invalid: files are still checked so every mistake is
    /// reported, but nothing is routed.
    routed: bool,
}

impl Default for Folder {
    fn default() -> Self {
        Self {
            url: Vec::new(),
            module_path: Vec::new(),
            params: Vec::new(),
            middleware: Vec::new(),
            catch_all: None,
            below_catch_all: false,
            routed: true,
        }
    }
}

impl Scanner<'_> {
    fn relative(&self, path: &Path) -> String {
        let shown = path.strip_prefix(self.crate_root).unwrap_or(path);
        shown
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn visit(&mut self, dir: &Path, folder: Folder) {
        let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        if let Some((_, target)) = self.visiting.iter().find(|(seen, _)| *seen == canonical) {
            self.errors.push(ScanError::SymlinkLoop {
                link: self.relative(dir),
                target: target.clone(),
            });
            return;
        }
        self.visiting.push((canonical, self.relative(dir)));
        self.visit_entries(dir, folder);
        self.visiting.pop();
    }

    fn visit_entries(&mut self, dir: &Path, mut folder: Folder) {
        let entries = match read_dir_sorted(dir) {
            Ok(entries) => entries,
            Err(error) => {
                self.errors.push(ScanError::Io {
                    path: self.relative(dir),
                    message: error.to_string(),
                });
                return;
            }
        };
        // Generated module name → the entry it came from, to catch siblings that collide.
        let mut modules: BTreeMap<String, String> = BTreeMap::new();

        let file_named = |name: &str| {
            entries
                .iter()
                .find(|entry| !entry.is_dir && entry.name == name)
        };
        if let Some(entry) = file_named("middleware.rs") {
            let file = self.relative(&entry.path);
            modules.insert("middleware".to_owned(), file.clone());
            if route_file::check_middleware(&entry.path, &file, &mut self.errors) && folder.routed {
                let middleware = Middleware {
                    file,
                    module_path: folder.module_path.clone(),
                };
                self.middleware.push(middleware.clone());
                folder.middleware.push(middleware);
            }
        }
        if let Some(entry) = file_named("route.rs") {
            let file = self.relative(&entry.path);
            modules.insert("route".to_owned(), file.clone());
            self.visit_route(&entry.path, file, &folder);
        }

        for entry in entries.iter().filter(|entry| entry.is_dir) {
            // Folders of assets or helpers are not part of the tree, whatever their names.
            if !self.holds_route_files(&entry.path) {
                continue;
            }
            let folder_path = self.relative(&entry.path);
            let segment = match Segment::parse(&entry.name) {
                Ok(Segment::Private) => continue,
                Ok(segment) => segment,
                Err(reason) => {
                    self.errors.push(ScanError::InvalidSegment {
                        folder: folder_path,
                        reason,
                    });
                    let mut child = folder.clone();
                    child.routed = false;
                    self.visit(&entry.path, child);
                    continue;
                }
            };
            let module = segment.module_name();
            match modules.get(&module) {
                Some(first) => self.errors.push(ScanError::ModuleNameCollision {
                    module: module.clone(),
                    first: first.clone(),
                    second: folder_path.clone(),
                }),
                None => {
                    modules.insert(module.clone(), folder_path.clone());
                }
            }
            let child = self.enter(&folder, &segment, module, folder_path);
            self.visit(&entry.path, child);
        }
    }

    /// What `segment` adds to the folder it sits in.
    fn enter(
        &mut self,
        parent: &Folder,
        segment: &Segment,
        module: String,
        path: String,
    ) -> Folder {
        let mut child = parent.clone();
        child.module_path.push(module);
        if let Some(part) = segment.url_part() {
            child.url.push(part);
            child.below_catch_all = parent.catch_all.is_some();
        }
        if let Segment::Dynamic { name, kind } = segment {
            if let Some((_, first)) = parent.params.iter().find(|(param, _)| &param.name == name) {
                self.errors.push(ScanError::DuplicateParam {
                    name: name.clone(),
                    first: first.clone(),
                    second: path.clone(),
                });
                child.routed = false;
            } else if parent.routed {
                self.dynamic_levels
                    .entry(url_of(&parent.url))
                    .or_default()
                    .entry(segment.to_string())
                    .or_insert_with(|| path.clone());
            }
            if kind.is_catch_all() && child.catch_all.is_none() {
                child.catch_all = Some(path.clone());
            }
            child.params.push((
                Param {
                    name: name.clone(),
                    kind: *kind,
                },
                path,
            ));
        }
        child
    }

    fn visit_route(&mut self, path: &Path, file: String, folder: &Folder) {
        if folder.below_catch_all {
            if let Some(catch_all) = &folder.catch_all {
                self.errors.push(ScanError::CatchAllNotLast {
                    route: file.clone(),
                    catch_all: catch_all.clone(),
                });
            }
        }
        let Some(contents) =
            route_file::read_route(path, &file, &folder.module_path, &mut self.errors)
        else {
            return;
        };
        if !folder.routed || folder.below_catch_all {
            return;
        }
        let pattern = url_of(&folder.url);
        let mut paths = Vec::new();
        if let Some((
            Param {
                kind: ParamKind::OptionalCatchAll,
                ..
            },
            _,
        )) = folder.params.last()
        {
            // Zero segments: the folder's URL without the tail.
            paths.push(url_of(&folder.url[..folder.url.len() - 1]));
        }
        paths.push(pattern.clone());
        let params: Vec<Param> = folder
            .params
            .iter()
            .map(|(param, _)| param.clone())
            .collect();
        for handler in &contents.handlers {
            if let Some(error) = path_arity_error(&file, &pattern, &params, handler) {
                self.errors.push(error);
            }
        }
        self.routes.push(Route {
            pattern,
            paths,
            file,
            module_path: folder.module_path.clone(),
            params,
            handlers: contents.handlers,
            middleware: folder.middleware.clone(),
            config: contents.config,
        });
    }

    fn check_dynamic_levels(&mut self) {
        for folders in self.dynamic_levels.values() {
            let mut folders: Vec<&String> = folders.values().collect();
            folders.sort();
            if let Some((first, others)) = folders.split_first() {
                for second in others {
                    self.errors.push(ScanError::ConflictingDynamicSegments {
                        first: (*first).clone(),
                        second: (*second).clone(),
                    });
                }
            }
        }
    }

    fn check_duplicate_urls(&mut self) {
        for (index, first) in self.routes.iter().enumerate() {
            for second in &self.routes[index + 1..] {
                let Some(shared) = first.paths.iter().find(|path| second.paths.contains(path))
                else {
                    continue;
                };
                let url = if first.pattern == second.pattern {
                    &first.pattern
                } else {
                    shared
                };
                let (first, second) = if first.file <= second.file {
                    (first, second)
                } else {
                    (second, first)
                };
                self.errors.push(ScanError::DuplicateUrl {
                    url: url.clone(),
                    first: first.file.clone(),
                    second: second.file.clone(),
                });
            }
        }
    }
}

fn url_of(parts: &[String]) -> String {
    format!("/{}", parts.join("/"))
}

impl Scanner<'_> {
    /// Whether a `route.rs` or `middleware.rs` lies somewhere below `dir`, outside private
    /// folders. A folder that is unreadable, or leads back to one being looked into (a symlink
    /// loop), counts as holding one: the visit then reports it.
    fn holds_route_files(&mut self, dir: &Path) -> bool {
        let Ok(canonical) = fs::canonicalize(dir) else {
            return true;
        };
        if let Some(&known) = self.holds_route_files.get(&canonical) {
            return known;
        }
        if self.looking_in.contains(&canonical) {
            return true;
        }
        let Ok(entries) = read_dir_sorted(dir) else {
            return true;
        };
        self.looking_in.push(canonical.clone());
        let holds = entries.iter().any(|entry| {
            if entry.is_dir {
                !entry.name.starts_with('_') && self.holds_route_files(&entry.path)
            } else {
                entry.name == "route.rs" || entry.name == "middleware.rs"
            }
        });
        self.looking_in.pop();
        self.holds_route_files.insert(canonical, holds);
        holds
    }
}

struct Entry {
    name: String,
    path: PathBuf,
    is_dir: bool,
}

/// The folder's entries sorted by name, so scans (and their errors) are reproducible.
fn read_dir_sorted(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        entries.push(Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            // Follows symlinks, so a linked folder is scanned like a real one.
            is_dir: path.is_dir(),
            path,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The error for a handler whose `Path<…>` reads values by position and not one per parameter of
/// its route (`pattern`), or that is mounted also without its optional catch-all's tail, where
/// it would read none.
fn path_arity_error(
    file: &str,
    pattern: &str,
    params: &[Param],
    handler: &Handler,
) -> Option<ScanError> {
    let Some(PathShape::Positional(values)) = &handler.shape.path else {
        return None;
    };
    let path_type = handler
        .arguments
        .iter()
        .find(|argument| argument.starts_with("Path") || argument.contains("::Path"))
        .cloned()
        .unwrap_or_else(|| "Path<…>".to_owned());
    let count = |n: usize, one: &str, many: &str| match n {
        0 => format!("no {many}"),
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let names = params
        .iter()
        .map(|param| format!("`{}`", param.name))
        .collect::<Vec<_>>()
        .join(", ");
    let optional_tail = params
        .last()
        .is_some_and(|param| param.kind == ParamKind::OptionalCatchAll);
    let (route, fix) = if optional_tail {
        (
            format!("`{pattern}` is served without its optional tail too, where there is none"),
            "take the generated `Params`, whose tail is an `Option`".to_owned(),
        )
    } else if values.len() != params.len() {
        let route = if params.is_empty() {
            format!("`{pattern}` has no parameters")
        } else {
            format!(
                "`{pattern}` has {} ({names})",
                count(params.len(), "parameter", "parameters")
            )
        };
        let fix = match params.len() {
            0 => "take no `Path`".to_owned(),
            1 => "take one value, or the generated `Params`".to_owned(),
            n => format!("take a tuple of {n} values in URL order, or the generated `Params`"),
        };
        (route, fix)
    } else {
        return None;
    };
    let takes = count(values.len(), "value", "values");
    Some(ScanError::PathArity {
        file: file.to_owned(),
        function: handler.method.fn_name().to_owned(),
        problem: format!("`{path_type}`, {takes}, but {route}; {fix}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_sorts_before_parameter_before_catch_all() {
        let mut patterns = vec![
            "/api/{*rest}",
            "/api/{id}",
            "/api/zebra",
            "/api",
            "/",
            "/api/alpha/{id}",
            "/api/alpha",
        ];
        patterns.sort_by_key(|pattern| sort_key(pattern));
        assert_eq!(
            patterns,
            [
                "/",
                "/api",
                "/api/alpha",
                "/api/alpha/{id}",
                "/api/zebra",
                "/api/{id}",
                "/api/{*rest}"
            ]
        );
    }
}
