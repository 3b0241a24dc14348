//! One build of the app, running: a child process serving on a private loopback port that
//! only the dev proxy talks to.
//!
//! The process lives as long as something holds its [`AppProcess`]: the dev loop while it is
//! the current build, and each request forwarded to it until its response has been sent. So a
//! replaced build is stopped once nothing is still talking to it — or, when a stream or an
//! upgraded connection keeps talking, once its drain time is over ([`AppProcess::retire`]), so
//! builds held by open streams cannot pile up and a client that reconnects reaches the new code.
//!
//! Stopping is asked first, as a process manager asks: SIGTERM, so a Waypost app shuts down
//! gracefully — what it still has in flight is answered or cut by its own rules, and the work
//! cut requests leave behind (a credit refund, a removed partial upload) is done — and only a
//! process still running after a grace period is killed.

use std::{
    fmt, io,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::Path,
    process::{ExitStatus, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    net::TcpStream,
    process::{Child, Command},
    sync::{mpsc, watch},
};

/// How often a starting app is checked for listening.
const POLL: Duration = Duration::from_millis(25);

/// How long a process asked to stop gets to end by itself before it is killed, when nothing
/// says otherwise: the requests it had are done by then, so a Waypost app ends in milliseconds.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long a replaced build gets, once its drain time is over, to end by itself: what it still
/// holds is long-lived by then (a stream, a WebSocket), so it mostly has its leftover work to do.
const RETIRED_GRACE: Duration = Duration::from_secs(2);

/// A running build of the app.
#[derive(Debug)]
pub(crate) struct AppProcess {
    port: u16,
    // Set to the grace to stop with (see [`stop_process`]), or dropped with `self` to stop with
    // [`STOP_GRACE`].
    stop: watch::Sender<Option<Duration>>,
    exited: watch::Receiver<bool>,
}

/// The app ended by itself (a crash, or `main` returning).
#[derive(Debug)]
pub(crate) struct Exit {
    /// The port of the process that ended.
    pub(crate) port: u16,
    /// How it ended.
    pub(crate) status: io::Result<ExitStatus>,
}

/// Why a build could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum StartError {
    /// No port, or the executable could not be run.
    Spawn(io::Error),
    /// It ended before listening (a bad setting, a panic in `main`).
    Exited(ExitStatus),
    /// It ran but did not listen on `PORT` in time.
    NotListening(Duration),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Spawn(error) => write!(f, "the app could not be run: {error}"),
            StartError::Exited(status) => write!(f, "the app ended before listening ({status})"),
            StartError::NotListening(after) => write!(
                f,
                "the app did not listen on $PORT within {}s (does main serve with `App::from_env`?)",
                after.as_secs()
            ),
        }
    }
}

impl AppProcess {
    /// Runs `executable` in `dir` with `HOST=127.0.0.1` and `PORT` a free port, and waits until
    /// it accepts connections there, at most `timeout`. An exit after that is reported on
    /// `exits`.
    ///
    /// # Errors
    /// See [`StartError`]; the process is gone when this returns an error.
    pub(crate) async fn start(
        executable: &Path,
        dir: &Path,
        timeout: Duration,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> Result<Arc<AppProcess>, StartError> {
        let port = free_port().map_err(StartError::Spawn)?;
        let mut command = Command::new(executable);
        command
            .current_dir(dir)
            .env("HOST", Ipv4Addr::LOCALHOST.to_string())
            .env("PORT", port.to_string());
        if std::env::var_os("JWT_SECRET").is_none() {
            // One secret for every build of this dev session: a restart after an edit keeps
            // the browser's bearer and CSRF tokens good (an app would pick a fresh one each
            // start). Sessions kept in memory still end with their process.
            command.env("JWT_SECRET", dev_session_secret());
        }
        let mut child = command
            .stdin(Stdio::null())
            // Dropped without being stopped (the dev command ends): no orphan keeps the port.
            .kill_on_drop(true)
            .spawn()
            .map_err(StartError::Spawn)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().map_err(StartError::Spawn)? {
                return Err(StartError::Exited(status));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .is_ok()
            {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill().await;
                return Err(StartError::NotListening(timeout));
            }
            tokio::time::sleep(POLL).await;
        }
        let (stop, stopping) = watch::channel(None);
        let (ended, exited) = watch::channel(false);
        tokio::spawn(supervise(child, port, stopping, ended, exits));
        Ok(Arc::new(AppProcess { port, stop, exited }))
    }

    /// A stand-in for a build already listening on `port` (a test's own server): nothing to
    /// supervise or stop.
    #[cfg(test)]
    pub(crate) fn listening_on(port: u16) -> Arc<AppProcess> {
        let (stop, _) = watch::channel(None);
        let (_, exited) = watch::channel(true);
        Arc::new(AppProcess { port, stop, exited })
    }

    /// The loopback port it serves on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Asks the process to stop and gives it [`STOP_GRACE`] to end by itself, then kills it;
    /// returns once it is gone.
    pub(crate) async fn stop(&self) {
        let mut exited = self.exited.clone();
        self.stop.send_replace(Some(STOP_GRACE));
        let _ = exited.wait_for(|ended| *ended).await;
    }

    /// Lets go of a replaced build: it stops as soon as its last request is done, and at the
    /// latest after `drain`, cutting what is still open then.
    pub(crate) fn retire(self: Arc<Self>, drain: Duration) {
        let mut exited = self.exited.clone();
        // Held weakly, so the last request to finish still stops the process at once.
        let process = Arc::downgrade(&self);
        drop(self);
        tokio::spawn(async move {
            let ended = tokio::time::timeout(drain, exited.wait_for(|ended| *ended)).await;
            if ended.is_err() {
                if let Some(process) = process.upgrade() {
                    process.stop.send_replace(Some(RETIRED_GRACE));
                }
            }
        });
    }
}

/// Owns the child: reports an exit of its own, or stops it when asked or when its
/// [`AppProcess`] is dropped.
async fn supervise(
    mut child: Child,
    port: u16,
    mut stop: watch::Receiver<Option<Duration>>,
    ended: watch::Sender<bool>,
    exits: mpsc::UnboundedSender<Exit>,
) {
    tokio::select! {
        status = child.wait() => {
            let _ = exits.send(Exit { port, status });
        }
        // `None`: the `AppProcess` was dropped, nothing uses this build any more.
        grace = asked_to_stop(&mut stop) => {
            stop_process(&mut child, grace.unwrap_or(STOP_GRACE)).await;
        }
    }
    ended.send_replace(true);
}

/// The grace the process is asked to stop with, or `None` once its [`AppProcess`] is dropped.
async fn asked_to_stop(stop: &mut watch::Receiver<Option<Duration>>) -> Option<Duration> {
    // The guard `wait_for` returns is let go of here, before the stop is awaited.
    stop.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|grace| *grace)
}

/// Sends `child` SIGTERM, waits at most `grace` for it to end, then kills it (SIGKILL); on
/// platforms without signals, kills it at once.
async fn stop_process(child: &mut Child, grace: Duration) {
    #[cfg(unix)]
    {
        let asked = child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?))
            .is_some_and(|pid| {
                rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
            });
        if asked && tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    #[cfg(not(unix))]
    let _ = grace;
    let _ = child.kill().await;
}

/// A loopback port nothing listens on right now. Another process could take it before the app
/// binds it; the app then fails to start and the next change tries again.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// A random secret made once per `waypost dev` run (64 hex digits).
fn dev_session_secret() -> &'static str {
    static SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    })
}
