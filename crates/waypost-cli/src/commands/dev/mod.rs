//! `waypost dev`: serves the app on one address and rebuilds and restarts it on every change
//! to its sources, with that address answering throughout.
//!
//! [`watch`] notices edits, [`cargo_build`] rebuilds, [`app_process`] runs each build on a
//! private loopback port, and [`proxy`] owns the public socket and forwards every request to
//! the current build. The app never owns the public socket, which is how it survives restarts:
//! until a new build listens, the previous one (or, before the first, a short wait) answers.

mod app_process;
mod cargo_build;
mod proxy;
mod watch;

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    net::TcpListener,
    sync::{mpsc, watch as state},
};

use self::{
    app_process::{AppProcess, Exit},
    proxy::Upstream,
    watch::Changes,
};
use crate::app_crate::AppCrate;

/// Arguments of `waypost dev`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The app crate's root, or its `src/app` folder.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The address to serve on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// The port to serve on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// The binary to run, when the crate has several.
    #[arg(long, value_name = "NAME")]
    bin: Option<String>,
    /// How long a replaced build may go on with the requests it still has (a stream, an
    /// upgraded connection) before it is stopped and they are cut.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    drain: u64,
}

/// How long a request waits for the first build before it is answered 503.
const REQUEST_WAIT: Duration = Duration::from_secs(60);
/// How long a new build may take to listen on its port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until Ctrl-C or SIGTERM; exit status 1 when it cannot start.
pub(crate) fn run(args: &Args) -> ExitCode {
    let result = AppCrate::locate(&args.dir)
        .and_then(|app| crate_root(&app.root))
        .and_then(|root| {
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|error| format!("cannot start the async runtime: {error}"))?;
            // Dropping the runtime drops every task, and with them any build still running.
            runtime.block_on(serve(root, args))
        });
    super::exit_status(result)
}

/// The crate root, canonical so that paths reported by cargo and the watcher compare equal.
fn crate_root(root: &Path) -> Result<PathBuf, String> {
    if !root.join("Cargo.toml").is_file() {
        return Err(format!("`{}` has no Cargo.toml", root.display()));
    }
    std::fs::canonicalize(root).map_err(|error| format!("`{}`: {error}", root.display()))
}

async fn serve(root: PathBuf, args: &Args) -> Result<(), String> {
    let address = SocketAddr::new(args.host, args.port);
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let (upstream, requests) = state::channel(Upstream::Building);
    tokio::spawn(proxy::serve(listener, requests, REQUEST_WAIT));
    let mut changes = Changes::watch(&root)
        .map_err(|error| format!("cannot watch `{}`: {error}", root.display()))?;
    say(&format!(
        "serving {} on http://{address} (Ctrl-C stops)",
        root.display()
    ));
    let (exits_sender, mut exits) = mpsc::unbounded_channel();
    let mut session = Session {
        address,
        manifest: root.join("Cargo.toml"),
        root,
        bin: args.bin.clone(),
        upstream,
        current: None,
        exits: exits_sender,
        drain: Duration::from_secs(args.drain),
    };
    let stop = stop_signal();
    tokio::pin!(stop);
    'session: loop {
        tokio::select! {
            () = &mut stop => break 'session,
            () = session.rebuild() => {}
        }
        loop {
            tokio::select! {
                () = &mut stop => break 'session,
                Some(exit) = exits.recv() => session.exited(exit),
                changed = changes.next() => {
                    let changed = changed.ok_or("watching the app's files stopped")?;
                    say(&format!("changed: {}", list(&changed)));
                    break;
                }
            }
        }
    }
    session.stop().await;
    Ok(())
}

/// The state of one `waypost dev` run.
struct Session {
    /// The public address, for messages (the app's own is private).
    address: SocketAddr,
    root: PathBuf,
    manifest: PathBuf,
    bin: Option<String>,
    upstream: state::Sender<Upstream>,
    /// The build requests go to, if one is running.
    current: Option<Arc<AppProcess>>,
    exits: mpsc::UnboundedSender<Exit>,
    /// How long a replaced build keeps the requests it still has.
    drain: Duration,
}

impl Session {
    /// Builds, and when that produced a new executable, starts it and switches requests to it.
    async fn rebuild(&mut self) {
        if self.current.is_none() {
            // Requests wait for this build instead of being told the last one failed.
            self.upstream.send_replace(Upstream::Building);
        }
        say("building…");
        let started = Instant::now();
        let built = cargo_build::build(&self.manifest, self.bin.as_deref()).await;
        let build_time = started.elapsed();
        let built = match built {
            Ok(built) => built,
            Err(error) => {
                say(&format!(
                    "{error} after {}; {}",
                    seconds(build_time),
                    self.meanwhile()
                ));
                self.down("The app does not build; the errors are in the `waypost dev` terminal.");
                return;
            }
        };
        if built.fresh && self.current.is_some() {
            say(&format!(
                "nothing to recompile ({}); the running build stays",
                seconds(build_time)
            ));
            return;
        }
        let starting = Instant::now();
        let exits = self.exits.clone();
        match AppProcess::start(&built.executable, &self.root, START_TIMEOUT, exits).await {
            Ok(app) => {
                say(&format!(
                    "built in {}, started in {}: http://{} serves the new build",
                    seconds(build_time),
                    seconds(starting.elapsed()),
                    self.address
                ));
                self.upstream.send_replace(Upstream::Serving(app.clone()));
                if let Some(previous) = self.current.replace(app) {
                    previous.retire(self.drain);
                }
            }
            Err(error) => {
                say(&format!(
                    "built in {}, but {error}; {}",
                    seconds(build_time),
                    self.meanwhile()
                ));
                self.down("The app does not start; see the `waypost dev` terminal.");
            }
        }
    }

    /// What requests get while the latest change cannot be served.
    fn meanwhile(&self) -> &'static str {
        if self.current.is_some() {
            "still serving the previous build"
        } else {
            "requests are answered 502 until a change fixes it"
        }
    }

    /// Answers requests with `reason` when no build is running.
    fn down(&self, reason: &'static str) {
        if self.current.is_none() {
            self.upstream.send_replace(Upstream::Down(reason));
        }
    }

    /// The app ended by itself; when it was the current build, nothing serves until the next
    /// change.
    fn exited(&mut self, exit: Exit) {
        if self
            .current
            .as_ref()
            .is_none_or(|app| app.port() != exit.port)
        {
            return;
        }
        self.current = None;
        self.down("The app has stopped; it restarts on the next change.");
        let status = match exit.status {
            Ok(status) => status.to_string(),
            Err(error) => error.to_string(),
        };
        say(&format!(
            "the app exited ({status}); it restarts on the next change"
        ));
    }

    /// Stops the app gracefully, as a process manager would (a Ctrl-C in the terminal has
    /// reached it already; SIGTERM then changes nothing for a Waypost app).
    async fn stop(self) {
        self.upstream
            .send_replace(Upstream::Down("waypost dev is stopping."));
        if let Some(app) = self.current {
            app.stop().await;
        }
        say("stopped");
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// One status line, set apart from the app's and the compiler's output.
fn say(message: &str) {
    println!("[waypost] {message}");
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// `a, b, c` — at most five paths, then how many more.
fn list(paths: &BTreeSet<PathBuf>) -> String {
    const SHOWN: usize = 5;
    let mut out: Vec<String> = paths
        .iter()
        .take(SHOWN)
        .map(|path| path.display().to_string())
        .collect();
    if paths.len() > SHOWN {
        out.push(format!("and {} more", paths.len() - SHOWN));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_paths_are_listed_up_to_five() {
        let paths: BTreeSet<PathBuf> = (1..=7)
            .map(|n| PathBuf::from(format!("src/{n}.rs")))
            .collect();
        assert_eq!(
            list(&paths),
            "src/1.rs, src/2.rs, src/3.rs, src/4.rs, src/5.rs, and 2 more"
        );
        assert_eq!(
            list(&BTreeSet::from([PathBuf::from("build.rs")])),
            "build.rs"
        );
    }

    #[test]
    fn durations_read_in_tenths_of_seconds() {
        assert_eq!(seconds(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(seconds(Duration::ZERO), "0.0s");
    }
}
