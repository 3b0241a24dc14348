//! Work a request leaves behind when it ends unfinished — a credit given back, an idempotency key
//! freed, a partial upload removed — run in a task of its own that the server waits for as it
//! stops, so that stopping does not lose it; and work of a request that must not stop with its
//! connection, cut short at the shutdown deadline like the requests still open then.
//!
//! Cleanup starts from `Drop`, when a request's future is dropped: the client went away, the
//! handler panicked, or the server gave up on the request at its shutdown deadline. A bare
//! `tokio::spawn` there is lost when the runtime ends right after — a refund never made is a
//! credit taken for nothing. Request work ([`spawn_request_work`]: an idempotent handler, an
//! upload's record) goes on when its client leaves, since what it has begun may already be
//! committed; at the shutdown deadline it is aborted while the runtime still runs, so the cleanup
//! its drop starts is run and waited for too. The counts are process-wide: a server that stops
//! waits (for a bounded time) for all such work, whichever server's requests started it.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, PoisonError,
    },
    time::Duration,
};

use tokio::{
    sync::Notify,
    task::{AbortHandle, JoinHandle},
};

/// Tasks that have not ended, and a note for when none is left.
struct Tally {
    unfinished: AtomicUsize,
    all_finished: Notify,
}

impl Tally {
    const fn new() -> Self {
        Self {
            unfinished: AtomicUsize::new(0),
            all_finished: Notify::const_new(),
        }
    }

    /// Waits until no task is left, or `limit` has passed; whether none is left.
    async fn finished_within(&self, limit: Duration) -> bool {
        let all_finished = async {
            loop {
                let told = self.all_finished.notified();
                tokio::pin!(told);
                // Registered before the count is read, so a drop to zero in between is not
                // missed.
                told.as_mut().enable();
                if self.unfinished.load(Ordering::Acquire) == 0 {
                    return;
                }
                told.await;
            }
        };
        tokio::time::timeout(limit, all_finished).await.is_ok()
    }
}

/// Every task started here, cleanup and request work alike.
static ALL: Tally = Tally::new();
/// The request work among them.
static REQUEST_WORK: Tally = Tally::new();
/// How to stop the request work still running.
static REQUEST_WORK_HANDLES: Mutex<Vec<AbortHandle>> = Mutex::new(Vec::new());

/// Runs `work` in a task of its own on the current runtime, counted until it ends (or is
/// dropped with the runtime); `None` outside a runtime, where `work` is dropped unrun.
pub(crate) fn spawn<F>(work: F) -> Option<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let counted = Counted::new(&ALL);
    Some(runtime.spawn(async move {
        let _counted = counted;
        work.await
    }))
}

/// Runs `work`, part of a request, in a task of its own that goes on when the request's future
/// is dropped, until [`abort_request_work`] (at the shutdown deadline); `None` outside a
/// runtime.
pub(crate) fn spawn_request_work<F>(work: F) -> Option<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let counted = Counted::new(&REQUEST_WORK);
    let task = spawn(async move {
        let _counted = counted;
        work.await
    })?;
    let mut handles = REQUEST_WORK_HANDLES
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // Ended tasks' handles go as new ones come: the list holds about what is running.
    handles.retain(|handle| !handle.is_finished());
    handles.push(task.abort_handle());
    Some(task)
}

/// `work`'s output, with the current request's context, the work run in a task of its own that
/// goes on when the returned future is dropped — request work ([`spawn_request_work`], cut
/// short at the shutdown deadline) when `request_work`, else work a stopping server lets finish
/// ([`spawn`]). A panic in it is resumed here; `None` when it was cut short or its runtime
/// stopped. Outside a runtime, `work` runs here.
pub(crate) async fn run_apart<F>(work: F, request_work: bool) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return Some(work.await);
    }
    let work = crate::context::carried(work);
    // Inside a runtime, both start the task.
    let task = if request_work {
        spawn_request_work(work)
    } else {
        spawn(work)
    }?;
    match task.await {
        Ok(output) => Some(output),
        Err(failure) => match failure.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}

/// Waits until the request work has ended, or `limit` has passed; whether it has.
pub(crate) async fn request_work_finished_within(limit: Duration) -> bool {
    REQUEST_WORK.finished_within(limit).await
}

/// Cuts short the request work still running (its futures are dropped, and what they leave
/// behind starts); how many tasks were told.
pub(crate) fn abort_request_work() -> usize {
    let handles = std::mem::take(
        &mut *REQUEST_WORK_HANDLES
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let running: Vec<_> = handles
        .into_iter()
        .filter(|handle| !handle.is_finished())
        .collect();
    for handle in &running {
        handle.abort();
    }
    running.len()
}

/// Waits until no work started here is left, or `limit` has passed; whether none is left.
pub(crate) async fn finished_within(limit: Duration) -> bool {
    ALL.finished_within(limit).await
}

/// How many tasks started here have not ended.
pub(crate) fn unfinished() -> usize {
    ALL.unfinished.load(Ordering::Acquire)
}

/// One unfinished task of `tally`, for as long as its future lives.
struct Counted(&'static Tally);

impl Counted {
    fn new(tally: &'static Tally) -> Self {
        tally.unfinished.fetch_add(1, Ordering::AcqRel);
        Self(tally)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.unfinished.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_finished.notify_waiters();
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
        assert!(spawn_request_work(async {}).is_none());
    }

    #[tokio::test]
    async fn request_work_is_aborted_and_the_cleanup_its_drop_starts_is_waited_for() {
        /// Starts cleanup when dropped, as a refund guard does.
        struct Guard(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Guard {
            fn drop(&mut self) {
                let cleaned = self.0.clone();
                spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    cleaned.store(true, Ordering::SeqCst);
                });
            }
        }
        let cleaned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = Guard(cleaned.clone());
        let work = spawn_request_work(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        })
        .expect("inside a runtime");
        assert!(!request_work_finished_within(Duration::from_millis(50)).await);
        assert!(abort_request_work() >= 1);
        assert!(work.await.unwrap_err().is_cancelled());
        assert!(request_work_finished_within(Duration::from_secs(5)).await);
        assert!(finished_within(Duration::from_secs(5)).await);
        assert!(cleaned.load(Ordering::SeqCst), "the cleanup ran");
    }
}
