//! `waypost client --ts`: a typed TypeScript client from the app's OpenAPI document (read as
//! `document` says: a file, stdin, or the running app).

use std::{path::PathBuf, process::ExitCode};

use super::document::{self, DEFAULT_SPEC};

/// Arguments of `waypost client`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Generate a TypeScript client (one self-contained module using `fetch`).
    #[arg(long, required = true)]
    ts: bool,
    /// The OpenAPI document: a file, `-` for stdin, or an `http://` URL on this machine.
    #[arg(long, value_name = "PATH_OR_URL", default_value = DEFAULT_SPEC)]
    spec: String,
    /// Write the client to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Writes the client; exit status 1 with the reason on stderr when it cannot.
pub(crate) fn run(args: &Args) -> ExitCode {
    super::exit_status(generate(args))
}

fn generate(args: &Args) -> Result<(), String> {
    // `--ts` is required by clap; it is the only target so far.
    debug_assert!(args.ts);
    let document = document::read(&args.spec)?;
    let client = waypost_build::typescript::generate(&document)
        .map_err(|e| format!("cannot generate a client from `{}`: {e}", args.spec))?;
    super::write_output(args.output.as_deref(), &client)
}
