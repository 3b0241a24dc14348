//! `waypost`: the command-line companion of a Waypost app.
//!
//! Each subcommand lives in its own module under `commands/`; `main` only parses the command
//! line and hands over.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod app_crate;
mod commands;
mod scaffold;

/// Work on a Waypost app.
#[derive(Debug, Parser)]
#[command(name = "waypost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new app crate: two routes, its OpenAPI document and docs page, an in-process test,
    /// a README.
    New(commands::new::Args),
    /// Serve the app on one address, rebuilding and restarting it on every change.
    Dev(commands::dev::Args),
    /// List the app's routes with their methods, files and settings, without compiling.
    Routes(commands::routes::Args),
    /// Write the app's OpenAPI document, or check a committed copy against it.
    Openapi(commands::openapi::Args),
    /// Generate a typed API client from the app's OpenAPI document.
    Client(commands::client::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::New(args) => commands::new::run(&args),
        Command::Dev(args) => commands::dev::run(&args),
        Command::Routes(args) => commands::routes::run(&args),
        Command::Openapi(args) => commands::openapi::run(&args),
        Command::Client(args) => commands::client::run(&args),
    }
}
