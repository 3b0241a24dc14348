//! Serves {{name}} on `HOST:PORT` (default 127.0.0.1:3000) until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use {{crate_name}}::{router, AppState};

#[tokio::main]
async fn main() -> ExitCode {
    waypost::init_tracing();
    let app = match waypost::App::from_env(router(AppState::default())) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match app.serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
