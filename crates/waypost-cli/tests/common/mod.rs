//! What the command tests share: running the built `waypost` binary, and the sample document.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// `waypost <command> <args…>`, run to completion.
pub(crate) fn waypost(command: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_waypost"))
        .arg(command)
        .args(args)
        .output()
        .expect("the waypost binary runs")
}

/// The OpenAPI document of the build crate's sample app.
pub(crate) fn sample_document() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../waypost-build/tests/fixtures/openapi/sample.json")
}
