//! One module per `waypost` subcommand.

pub(crate) mod client;
pub(crate) mod dev;
pub(crate) mod document;
pub(crate) mod new;
pub(crate) mod openapi;
pub(crate) mod routes;

/// A command's exit status: success, or status 1 with `error: <why>` on stderr.
pub(crate) fn exit_status(result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes a command's product to `path`, or to stdout without one.
pub(crate) fn write_output(path: Option<&std::path::Path>, text: &str) -> Result<(), String> {
    use std::io::Write;
    match path {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display())),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write to stdout: {e}")),
    }
}
