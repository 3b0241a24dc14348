//! Building the app with cargo: compiler output goes straight to the terminal, rendered as
//! cargo renders it, while cargo's JSON messages name the executable that was built.

use std::{
    ffi::OsString,
    fmt, fs, io,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

/// The app's executable after a successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Built {
    /// Where cargo put it.
    pub(crate) executable: PathBuf,
    /// Nothing was recompiled: the executable is the one already running, if any.
    pub(crate) fresh: bool,
}

/// Why there is no executable to run.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum BuildError {
    /// The compiler's errors have been printed already.
    Compile(ExitStatus),
    /// Cargo could not be run.
    Cargo(io::Error),
    /// The crate has no binary target.
    NoBinary,
    /// The crate has several and `--bin` did not say which.
    SeveralBinaries(Vec<String>),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Compile(status) => write!(f, "cargo build failed ({status})"),
            BuildError::Cargo(error) => write!(f, "cargo could not be run: {error}"),
            BuildError::NoBinary => f.write_str("the crate has no binary to serve (src/main.rs)"),
            BuildError::SeveralBinaries(names) => write!(
                f,
                "the crate has several binaries ({}); choose one with --bin",
                names.join(", ")
            ),
        }
    }
}

/// `cargo build` of the crate whose manifest is `manifest` (absolute, canonical), and of its
/// binary `bin` when given.
///
/// # Errors
/// See [`BuildError`].
pub(crate) async fn build(manifest: &Path, bin: Option<&str>) -> Result<Built, BuildError> {
    // The cargo that ran us when there is one (`cargo run -p waypost-cli -- dev`), so the app
    // builds with the same toolchain.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(manifest)
        // Diagnostics rendered by cargo on stderr as usual; only the artifact list is JSON.
        .arg("--message-format=json-render-diagnostics");
    if let Some(bin) = bin {
        command.args(["--bin", bin]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(BuildError::Cargo)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut binaries = Vec::new();
    while let Some(line) = lines.next_line().await.map_err(BuildError::Cargo)? {
        match serde_json::from_str::<Value>(&line) {
            Ok(message) => binaries.extend(binary_artifact(&message, manifest)),
            // Not a cargo message: pass it on rather than lose it.
            Err(_) => println!("{line}"),
        }
    }
    let status = child.wait().await.map_err(BuildError::Cargo)?;
    if !status.success() {
        return Err(BuildError::Compile(status));
    }
    choose(binaries)
}

/// A binary of the crate at `manifest` that cargo reports having built.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BinaryArtifact {
    name: String,
    built: Built,
}

fn binary_artifact(message: &Value, manifest: &Path) -> Option<BinaryArtifact> {
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let target = &message["target"];
    let is_bin = target["kind"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"));
    let executable = message["executable"].as_str()?;
    let reported = Path::new(message["manifest_path"].as_str()?);
    let same_crate =
        reported == manifest || fs::canonicalize(reported).is_ok_and(|path| path == manifest);
    (is_bin && same_crate).then(|| BinaryArtifact {
        name: target["name"].as_str().unwrap_or_default().to_owned(),
        built: Built {
            executable: PathBuf::from(executable),
            fresh: message["fresh"].as_bool().unwrap_or(false),
        },
    })
}

fn choose(mut binaries: Vec<BinaryArtifact>) -> Result<Built, BuildError> {
    match binaries.len() {
        0 => Err(BuildError::NoBinary),
        1 => Ok(binaries.remove(0).built),
        _ => Err(BuildError::SeveralBinaries(
            binaries.into_iter().map(|binary| binary.name).collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn artifact(kind: &str, manifest: &str, fresh: bool) -> Value {
        json!({
            "reason": "compiler-artifact",
            "manifest_path": manifest,
            "target": { "kind": [kind], "name": "demo" },
            "executable": if kind == "bin" { json!("/app/target/debug/demo") } else { Value::Null },
            "fresh": fresh,
        })
    }

    #[test]
    fn the_crate_binary_is_found_among_cargo_messages() {
        let manifest = Path::new("/app/Cargo.toml");
        assert_eq!(
            binary_artifact(&artifact("bin", "/app/Cargo.toml", true), manifest),
            Some(BinaryArtifact {
                name: "demo".to_owned(),
                built: Built {
                    executable: PathBuf::from("/app/target/debug/demo"),
                    fresh: true,
                },
            })
        );
        assert_eq!(
            binary_artifact(&artifact("lib", "/app/Cargo.toml", false), manifest),
            None
        );
        assert_eq!(
            binary_artifact(&artifact("bin", "/dep/Cargo.toml", false), manifest),
            None
        );
        assert_eq!(
            binary_artifact(
                &json!({ "reason": "build-finished", "success": true }),
                manifest
            ),
            None
        );
    }

    #[test]
    fn several_binaries_need_a_choice() {
        let binary = |name: &str| BinaryArtifact {
            name: name.to_owned(),
            built: Built {
                executable: PathBuf::from(name),
                fresh: false,
            },
        };
        assert!(matches!(choose(vec![]), Err(BuildError::NoBinary)));
        assert_eq!(
            choose(vec![binary("a")]).unwrap().executable,
            Path::new("a")
        );
        let error = choose(vec![binary("a"), binary("b")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the crate has several binaries (a, b); choose one with --bin"
        );
    }
}
