//! What can be wrong with a route tree. Every error names the files involved (relative to the
//! crate root), and the scanner reports all of them at once so one build shows every mistake.

use std::fmt;

use crate::segment::SegmentError;

/// One mistake in the route tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The app folder does not exist or is not a folder.
    #[error("`{path}` is not a folder; routes live in `src/app`")]
    AppDirMissing {
        /// The folder that was looked for.
        path: String,
    },
    /// A file or folder could not be read.
    #[error("cannot read `{path}`: {message}")]
    Io {
        /// The file or folder.
        path: String,
        /// The operating system's explanation.
        message: String,
    },
    /// A file is not valid Rust.
    #[error("`{file}` does not parse: {message} at {line}:{column}")]
    Parse {
        /// The file.
        file: String,
        /// syn's message.
        message: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
    },
    /// Two route files serve the same URL (route groups make this possible).
    #[error("`{first}` and `{second}` both serve `{url}`; keep one route file per URL")]
    DuplicateUrl {
        /// The URL both answer.
        url: String,
        /// One file.
        first: String,
        /// The other file.
        second: String,
    },
    /// Two dynamic folders at one URL level with different names: no request could tell which
    /// one it is meant for.
    #[error(
        "`{first}` and `{second}` are dynamic folders at the same level, which no request can tell apart; merge them into one (one name, one kind: `[x]`, `[...x]` or `[[...x]]`)"
    )]
    ConflictingDynamicSegments {
        /// One folder.
        first: String,
        /// The other folder.
        second: String,
    },
    /// A route below a catch-all folder, which would never be reached.
    #[error(
        "`{route}` is below the catch-all folder `{catch_all}`; a catch-all must be the last segment"
    )]
    CatchAllNotLast {
        /// The unreachable route file.
        route: String,
        /// The catch-all folder above it.
        catch_all: String,
    },
    /// A folder name outside the grammar.
    #[error("folder `{folder}` is not a valid route segment: {reason}")]
    InvalidSegment {
        /// The folder.
        folder: String,
        /// What is wrong with its name.
        reason: SegmentError,
    },
    /// One parameter name declared twice along a path, so `Params` would have two fields of one
    /// name.
    #[error("parameter `{name}` of `{second}` is already declared by `{first}`; rename one")]
    DuplicateParam {
        /// The parameter name.
        name: String,
        /// The outer folder declaring it.
        first: String,
        /// The inner folder declaring it again.
        second: String,
    },
    /// Two sibling entries that would become the same generated module.
    #[error("`{first}` and `{second}` would both become module `{module}`; rename one")]
    ModuleNameCollision {
        /// The module name both produce.
        module: String,
        /// One folder or file.
        first: String,
        /// The other.
        second: String,
    },
    /// A `route.rs` that exports no handler.
    #[error(
        "`{file}` exports no handler; add one of `pub async fn get`, `post`, `put`, `patch`, `delete`, `head`, `options`"
    )]
    NoHandler {
        /// The route file.
        file: String,
    },
    /// A handler that is not an `async fn`.
    #[error("handler `{function}` in `{file}` is not async; write `pub async fn {function}`")]
    HandlerNotAsync {
        /// The route file.
        file: String,
        /// The function name.
        function: String,
    },
    /// A function named after a method that is not `pub`: the router could not call it.
    #[error("handler `{function}` in `{file}` is not public; write `pub async fn {function}`")]
    HandlerNotPublic {
        /// The route file.
        file: String,
        /// The function name.
        function: String,
    },
    /// A handler whose `Path<T>` reads another number of values than its route has parameters:
    /// every request to it would be a 500.
    #[error("handler `{function}` in `{file}` takes {problem}")]
    PathArity {
        /// The route file.
        file: String,
        /// The function name.
        function: String,
        /// The `Path<…>` type as written, how many values it reads, what the route has, and
        /// what to write instead.
        problem: String,
    },
    /// A handler the router could not mount as written.
    #[error("handler `{function}` in `{file}` cannot be mounted: {reason}")]
    HandlerUnsupported {
        /// The route file.
        file: String,
        /// The function name.
        function: String,
        /// Why.
        reason: String,
    },
    /// A handler or `CONFIG` re-exported with a `pub` (or `pub(crate)`, …) `use`, which the
    /// scanner cannot see into.
    #[error(
        "`{name}` in `{file}` is re-exported with a `use`; declare it in the file itself (a `pub async fn` for a handler, `pub const CONFIG: RouteConfig = …`), or its route would be mounted without it"
    )]
    ReExported {
        /// The route file.
        file: String,
        /// The name re-exported.
        name: String,
    },
    /// A `CONFIG` of another type than `RouteConfig`.
    #[error("`CONFIG` in `{file}` is a `{ty}`; it must be a `RouteConfig`")]
    ConfigNotRouteConfig {
        /// The route file.
        file: String,
        /// The type as written.
        ty: String,
    },
    /// A folder that leads back to one it is inside (a symlink), which would make the tree
    /// endless.
    #[error("`{link}` leads back to `{target}`, a folder it is inside; remove the link or point it elsewhere")]
    SymlinkLoop {
        /// The folder (a link) that loops.
        link: String,
        /// The folder it leads back to.
        target: String,
    },
    /// A `CONFIG` that is not `pub`, whose settings would otherwise be silently ignored.
    #[error("`CONFIG` in `{file}` is not public; write `pub const CONFIG: RouteConfig = …`")]
    ConfigNotPublic {
        /// The route file.
        file: String,
    },
    /// A `middleware.rs` without its entry point.
    #[error(
        "`{file}` must export `pub async fn middleware` (an axum `from_fn_with_state` middleware)"
    )]
    MissingMiddleware {
        /// The middleware file.
        file: String,
    },
    /// The state type given to the builder is not a Rust type.
    #[error("state type `{ty}` is not a Rust type: {message}")]
    InvalidStateType {
        /// The type as given.
        ty: String,
        /// syn's message.
        message: String,
    },
}

impl ScanError {
    /// The file or folder an error is sorted by: the first one it names.
    fn primary_path(&self) -> &str {
        match self {
            ScanError::AppDirMissing { path } | ScanError::Io { path, .. } => path,
            ScanError::Parse { file, .. }
            | ScanError::NoHandler { file }
            | ScanError::HandlerNotAsync { file, .. }
            | ScanError::HandlerNotPublic { file, .. }
            | ScanError::ConfigNotPublic { file }
            | ScanError::HandlerUnsupported { file, .. }
            | ScanError::PathArity { file, .. }
            | ScanError::ReExported { file, .. }
            | ScanError::ConfigNotRouteConfig { file, .. }
            | ScanError::MissingMiddleware { file } => file,
            ScanError::SymlinkLoop { link, .. } => link,
            ScanError::DuplicateUrl { first, .. }
            | ScanError::ConflictingDynamicSegments { first, .. }
            | ScanError::DuplicateParam { first, .. }
            | ScanError::ModuleNameCollision { first, .. } => first,
            ScanError::CatchAllNotLast { route, .. } => route,
            ScanError::InvalidSegment { folder, .. } => folder,
            ScanError::InvalidStateType { ty, .. } => ty,
        }
    }
}

/// Every mistake found in one scan, sorted by the path they name first.
///
/// Displays one error per line, each starting with `error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanErrors {
    errors: Vec<ScanError>,
}

impl ScanErrors {
    /// Sorts the errors so the same tree always reports them in the same order.
    pub(crate) fn new(mut errors: Vec<ScanError>) -> Self {
        errors.sort_by_cached_key(|error| (error.primary_path().to_owned(), error.to_string()));
        errors.dedup();
        Self { errors }
    }

    /// The errors, sorted.
    pub fn errors(&self) -> &[ScanError] {
        &self.errors
    }

    /// How many errors there are (at least one).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always `false`: a scan with no errors returns its table instead.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl From<ScanError> for ScanErrors {
    fn from(error: ScanError) -> Self {
        Self::new(vec![error])
    }
}

impl IntoIterator for ScanErrors {
    type Item = ScanError;
    type IntoIter = std::vec::IntoIter<ScanError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a> IntoIterator for &'a ScanErrors {
    type Item = &'a ScanError;
    type IntoIter = std::slice::Iter<'a, ScanError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ScanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "error: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScanErrors {}
