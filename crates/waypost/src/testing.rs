//! Test support: serve an app on a real loopback socket and talk to it.

use std::net::SocketAddr;

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::App;

/// An app served on `127.0.0.1:<free port>` for the length of a test. Dropping it shuts the
/// server down.
#[derive(Debug)]
pub struct TestServer {
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Serves `app` on a fresh loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(app: App) -> Self {
        Self::start_on(app, "127.0.0.1:0".parse().expect("a valid address")).await
    }

    /// Serves `app` on `address` (port 0 picks a free one).
    ///
    /// # Panics
    /// When the address cannot be bound.
    pub async fn start_on(app: App, address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address)
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve_with_shutdown(listener, async move {
            let _ = signal.await;
        }));
        Self {
            address,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The socket address served on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Asks the server to stop and waits until it has (in-flight requests finish first).
    ///
    /// # Panics
    /// When the server task panicked.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task did not panic")
                .expect("server ended cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
