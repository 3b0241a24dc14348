//! `waypost new`: a new app crate that builds, serves and passes its tests as generated — one
//! route with a parameterised sibling, an in-process test of every route, and a README.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::ExitCode,
};

use crate::scaffold::{self, CrateName, WaypostSource};

/// Arguments of `waypost new`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The app's name, a crate name such as `my-api`; or a path (`../apps/my-api`), as with
    /// `cargo new`, whose last part is the name.
    name: String,
    /// Where to create the app (default `./<name>`); it must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// The Waypost checkout the app depends on by path (default: the one this binary was
    /// built from).
    #[arg(long, value_name = "PATH")]
    waypost_path: Option<PathBuf>,
}

/// Writes the app; exit status 1 with the reason on stderr when it cannot.
pub(crate) fn run(args: &Args) -> ExitCode {
    match create(args) {
        Ok(dir) => {
            let name = Path::new(&args.name).file_name().map_or_else(
                || args.name.clone(),
                |name| name.to_string_lossy().into_owned(),
            );
            println!("Created `{name}` in {}", dir.display());
            println!();
            println!("  cd {}", dir.display());
            println!("  waypost dev   # http://127.0.0.1:3000, rebuilt on every change");
            println!("  cargo test");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The app's folder once written.
fn create(args: &Args) -> Result<PathBuf, String> {
    let given = Path::new(&args.name);
    // A path names the folder, and its last part the app (unless `--path` says where).
    let (name, named_dir) = match given.file_name().and_then(|last| last.to_str()) {
        Some(last) if given.components().count() > 1 => (last, Some(given.to_owned())),
        _ => (args.name.as_str(), None),
    };
    let name = CrateName::parse(name)?;
    let dir = args
        .path
        .clone()
        .or(named_dir)
        .unwrap_or_else(|| PathBuf::from(name.package()));
    let dir = std::path::absolute(&dir).map_err(|error| format!("`{}`: {error}", dir.display()))?;
    let source = WaypostSource::open(
        &args
            .waypost_path
            .clone()
            .unwrap_or_else(WaypostSource::built_from),
    )?;
    let files = scaffold::files(&name, &source)?;
    let existed = ensure_empty(&dir)?;
    write_all(&dir, &files).map_err(|error| {
        // Half an app is worse than none; only a folder this command made is removed.
        if !existed {
            let _ = fs::remove_dir_all(&dir);
        }
        format!("writing into `{}` failed: {error}", dir.display())
    })?;
    Ok(dir)
}

/// Whether `dir` already existed; an error when it holds anything.
fn ensure_empty(dir: &Path) -> Result<bool, String> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                Err(format!(
                    "`{}` already exists and is not empty; choose another --path",
                    dir.display()
                ))
            } else {
                Ok(true)
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(_) if dir.exists() => Err(format!(
            "`{}` already exists and is not a folder",
            dir.display()
        )),
        Err(error) => Err(format!("`{}`: {error}", dir.display())),
    }
}

fn write_all(dir: &Path, files: &[scaffold::File]) -> io::Result<()> {
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, &file.contents)?;
    }
    Ok(())
}
