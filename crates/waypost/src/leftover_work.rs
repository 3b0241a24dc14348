//! Work a request leaves behind when it ends unfinished — a credit given back, an idempotency key
//! freed, a partial upload removed — run in a task of its own that the server waits for as it
//! stops, so that stopping does not lose it.
//!
//! Such work starts from `Drop`, when a request's future is dropped: the client went away, the
//! handler panicked, or the server gave up on the request at its shutdown deadline. A bare
//! `tokio::spawn` there is lost when the runtime ends right after — a refund never made is a
//! credit taken for nothing. The count of such tasks is process-wide: a server that stops waits
//! (for a bounded time) for all of them, whichever server's requests started them.

use std::{
    future::Future,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::{sync::Notify, task::JoinHandle};

/// Tasks started by [`spawn`] that have not ended.
static UNFINISHED: AtomicUsize = AtomicUsize::new(0);
/// Told when [`UNFINISHED`] drops to zero.
static ALL_FINISHED: Notify = Notify::const_new();

/// Runs `work` in a task of its own on the current runtime, counted until it ends (or is
/// dropped with the runtime); `None` outside a runtime, where `work` is dropped unrun.
pub(crate) fn spawn<F>(work: F) -> Option<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let counted = Counted::new();
    Some(runtime.spawn(async move {
        let _counted = counted;
        work.await
    }))
}

/// Waits until no work started by [`spawn`] is left, or `limit` has passed; whether none is left.
pub(crate) async fn finished_within(limit: Duration) -> bool {
    let all_finished = async {
        loop {
            let told = ALL_FINISHED.notified();
            tokio::pin!(told);
            // Registered before the count is read, so a drop to zero in between is not missed.
            told.as_mut().enable();
            if UNFINISHED.load(Ordering::Acquire) == 0 {
                return;
            }
            told.await;
        }
    };
    tokio::time::timeout(limit, all_finished).await.is_ok()
}

/// How many tasks started by [`spawn`] have not ended.
pub(crate) fn unfinished() -> usize {
    UNFINISHED.load(Ordering::Acquire)
}

/// One unfinished task, for as long as its future lives.
struct Counted;

impl Counted {
    fn new() -> Self {
        UNFINISHED.fetch_add(1, Ordering::AcqRel);
        Self
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if UNFINISHED.fetch_sub(1, Ordering::AcqRel) == 1 {
            ALL_FINISHED.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_the_work_and_no_longer() {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        spawn(async move {
            let _ = released.await;
            flag.store(true, Ordering::SeqCst);
        })
        .expect("inside a runtime");
        assert!(
            !finished_within(Duration::from_millis(50)).await,
            "still running"
        );
        release.send(()).unwrap();
        assert!(finished_within(Duration::from_secs(5)).await);
        assert!(done.load(Ordering::SeqCst));
    }

    #[test]
    fn outside_a_runtime_nothing_starts() {
        assert!(spawn(async {}).is_none());
    }
}
