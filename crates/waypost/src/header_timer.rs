//! The timer behind the HTTP/1 header-read timeout, one per connection, re-armed lazily.
//!
//! hyper asks its timer for a new sleep each time it starts reading a request head and drops it
//! once the head is in. With a plain tokio sleep that is a timer-wheel insertion and removal, under
//! the driver's lock, for every request on every keep-alive connection. Here all the sleeps of
//! one connection share one tokio sleep. A new deadline is only ever later than the one armed
//! before it (each head starts after the last), so the armed sleep is left alone: when it fires
//! and a later deadline has taken its place, it is re-armed then, once per timeout period rather
//! than once per request. A deadline that has passed completes on the spot.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use hyper::rt::{Sleep, Timer};

/// One connection's timer: give each connection its own (see [`crate::App`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnectionTimer {
    armed: Arc<Mutex<Option<Armed>>>,
}

/// The connection's one tokio sleep, and the waker its last poll registered.
#[derive(Debug)]
struct Armed {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Polling the sleep again for the same task only registers the same waker again, so
    /// while it has not fired, a poll for that task can return at once.
    registered: Option<Waker>,
}

impl Armed {
    /// Whether the sleep's last poll registered `waker` (or one that wakes the same task).
    fn wakes(&self, waker: &Waker) -> bool {
        self.registered
            .as_ref()
            .is_some_and(|registered| registered.will_wake(waker))
    }
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    /// tokio's clock (the same as the system's, except in tests that pause time), so deadlines
    /// and the tokio sleep agree.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(Deadline {
            deadline,
            armed: self.armed.clone(),
        })
    }
}

/// A sleep of [`ConnectionTimer`]: completes at `deadline`, woken by the shared tokio sleep.
struct Deadline {
    deadline: Instant,
    armed: Arc<Mutex<Option<Armed>>>,
}

impl Sleep for Deadline {}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut shared = self
            .armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let armed = shared.get_or_insert_with(|| Armed {
            sleep: Box::pin(tokio::time::sleep_until(self.deadline.into())),
            registered: None,
        });
        if armed.sleep.deadline().into_std() > self.deadline {
            // Only a deadline from another use of the timer can be later than ours: wake in time.
            armed.sleep.as_mut().reset(self.deadline.into());
        } else if !armed.sleep.is_elapsed() && armed.wakes(cx.waker()) {
            // Armed no later than our deadline and set to wake this task: nothing to do yet.
            return Poll::Pending;
        }
        // The shared sleep is armed no later than our deadline, so while it is pending ours has
        // not passed either: the clock is only read once it fires.
        loop {
            // Unconstrained by tokio's co-operative budget: a sleep polled by a task out of
            // budget answers `Pending` without registering, and the cached waker above would
            // then wait for a wake that never comes.
            let polled = std::pin::pin!(tokio::task::unconstrained(armed.sleep.as_mut())).poll(cx);
            match polled {
                Poll::Pending => {
                    if !armed.wakes(cx.waker()) {
                        armed.registered = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                Poll::Ready(()) if tokio::time::Instant::now().into_std() >= self.deadline => {
                    return Poll::Ready(())
                }
                // It fired for an earlier deadline: arm it for ours.
                Poll::Ready(()) => armed.sleep.as_mut().reset(self.deadline.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn completes_within(sleep: Pin<Box<dyn Sleep>>, limit: Duration) -> bool {
        tokio::time::timeout(limit, sleep).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn each_sleep_completes_at_its_own_deadline() {
        let timer = ConnectionTimer::default();
        // The first request head: its sleep arms the shared tokio sleep for 10 s.
        let first = timer.sleep(Duration::from_secs(10));
        assert!(!completes_within(first, Duration::from_secs(9)).await);
        // A later head: its deadline (now + 10 s) is after the armed one, which fires first and
        // is re-armed — the sleep must neither complete early nor hang.
        let second = timer.sleep(Duration::from_secs(10));
        assert!(!completes_within(second, Duration::from_secs(9)).await);
        let third = timer.sleep(Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        third.await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_re_arms_the_shared_sleep() {
        let timer = ConnectionTimer::default();
        let long = timer.sleep(Duration::from_secs(60));
        assert!(!completes_within(long, Duration::from_secs(1)).await);
        let started = tokio::time::Instant::now();
        timer.sleep(Duration::from_secs(2)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_polled_by_another_task_wakes_that_task() {
        let timer = ConnectionTimer::default();
        // One task arms the shared sleep (and registers its waker), then gives up on it.
        let first = timer.sleep(Duration::from_secs(5));
        tokio::spawn(async move { completes_within(first, Duration::from_secs(1)).await })
            .await
            .unwrap();
        // This task's sleep must register this task, or it would never be woken.
        let started = tokio::time::Instant::now();
        let second = timer.sleep_until(timer.now() + Duration::from_secs(4));
        assert!(completes_within(second, Duration::from_secs(60)).await);
        assert_eq!(started.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_first_polled_by_a_task_out_of_budget_still_wakes_it() {
        let timer = ConnectionTimer::default();
        let mut deadline = timer.sleep(Duration::from_secs(5));
        // Spend the task's whole budget (128 units a poll), then poll the sleep once.
        for _ in 0..128 {
            tokio::task::consume_budget().await;
        }
        std::future::poll_fn(|cx| {
            let _ = deadline.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        let started = tokio::time::Instant::now();
        assert!(completes_within(deadline, Duration::from_secs(60)).await);
        assert!(started.elapsed() <= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_completes_at_once() {
        let timer = ConnectionTimer::default();
        let started = tokio::time::Instant::now();
        timer.sleep_until(timer.now()).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
