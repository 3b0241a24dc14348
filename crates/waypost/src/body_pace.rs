//! The pace a request body must keep: no pause longer than the body read timeout, and — once a
//! grace period is over — an average rate no lower than a minimum, so a client cannot hold a
//! connection for hours by dripping a body a byte at a time, each just inside the pause limit.
//!
//! Only the time a handler spends waiting for the body counts (as in ASP.NET Core's
//! `MinRequestBodyDataRate`): a handler that stops to write a chunk to disk or to ask the
//! database between reads is not the client's delay. (A wait counts from the read that found
//! nothing to the read that finds the next bytes: a handler that gives up on a read and reads
//! again later has its own time in between counted too.) The rate is kept over a rolling
//! stretch, not from the start: bytes buy waiting time ahead only up to the pause limit (30 s
//! unless set otherwise), so a burst of a megabyte does not let the rest drip in for an hour.
//! A body that falls behind ends with
//! [`BodyStalled`] — from then on, whatever arrives — which Waypost's extractors and uploads
//! answer 408 `timeout` (axum's own `Bytes` and `String` answer 400).

use std::{
    error::Error,
    fmt,
    future::Future,
    num::NonZeroU64,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// The lowest average rate a request body may arrive at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinBodyRate {
    /// Bytes a second, averaged over the time the handler waited for the body.
    pub bytes_per_second: NonZeroU64,
    /// How long the body may take before the rate counts at all: the connection's slow start,
    /// a client's `Expect: 100-continue` round trip.
    pub grace: Duration,
}

impl MinBodyRate {
    /// The default: 240 bytes a second after 5 seconds (ASP.NET Core's). A 1 MiB body then
    /// gets at least 73 minutes, a client on the slowest mobile link is far above it, and one
    /// dripping a byte every few seconds is cut off after 5.
    pub const DEFAULT: Self = Self {
        bytes_per_second: NonZeroU64::new(240).expect("not zero"),
        grace: Duration::from_secs(5),
    };

    /// The waiting time `bytes` earn at this rate.
    fn earned_by(self, bytes: u64) -> Duration {
        let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(self.bytes_per_second.get());
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// How far ahead of its waiting a body's bytes may buy time when no pause limit is set.
const CREDIT_CAP_WITHOUT_PAUSE_LIMIT: Duration = Duration::from_secs(30);

/// What a request body must keep up; [`FrontLayer`](crate::layers::FrontLayer) holds
/// every request body to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodyPace {
    /// The longest a handler waits for the body's next bytes (`None`: no limit).
    pub max_pause: Option<Duration>,
    /// The lowest average rate (`None`: no minimum).
    pub min_rate: Option<MinBodyRate>,
}

impl BodyPace {
    /// Whether a body is held to anything at all.
    pub fn is_set(&self) -> bool {
        self.max_pause.is_some() || self.min_rate.is_some()
    }

    /// The waiting time a body has earned (`credited`, after waiting `waited` in all) once
    /// `bytes` more arrive: what they earn at the minimum rate, but never more than the pause
    /// limit ahead of the waiting done.
    fn credit(&self, credited: Duration, bytes: u64, waited: Duration) -> Duration {
        let Some(rate) = self.min_rate else {
            return credited;
        };
        let cap = self.max_pause.unwrap_or(CREDIT_CAP_WITHOUT_PAUSE_LIMIT);
        credited
            .saturating_add(rate.earned_by(bytes))
            .min(waited.saturating_add(cap))
    }

    /// How long a wait that begins now may last, having earned `credited` waiting time (see
    /// [`credit`](Self::credit)) and waited `waited` in all, and whether it is the rate (not
    /// the pause) that ends it.
    fn wait_limit(&self, credited: Duration, waited: Duration) -> Option<(Duration, Stall)> {
        let by_rate = self.min_rate.map(|rate| {
            let left = rate.grace.max(credited).saturating_sub(waited);
            (left, Stall::TooSlow)
        });
        let by_pause = self.max_pause.map(|pause| (pause, Stall::Paused));
        match (by_rate, by_pause) {
            (Some(rate), Some(pause)) => Some(if rate.0 < pause.0 { rate } else { pause }),
            (one, other) => one.or(other),
        }
    }
}

/// Why a body was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stall {
    Paused,
    TooSlow,
}

/// The error a request body ends with when it fell behind its [`BodyPace`].
#[derive(Debug)]
pub struct BodyStalled {
    stall: Stall,
}

impl BodyStalled {
    /// Whether the body kept arriving, only too slowly (else it paused past the limit).
    pub fn was_too_slow(&self) -> bool {
        self.stall == Stall::TooSlow
    }
}

impl fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.stall {
            Stall::Paused => "the request body paused longer than the body read timeout",
            Stall::TooSlow => "the request body arrived slower than the minimum rate",
        })
    }
}

impl Error for BodyStalled {}

pin_project! {
    /// A request body held to a [`BodyPace`].
    pub struct PacedBody<B> {
        #[pin]
        inner: B,
        pace: BodyPace,
        // The waiting time the bytes received so far have earned (see `BodyPace::credit`).
        credited: Duration,
        // Time the handler spent waiting for them, the current wait not included.
        waited: Duration,
        // The current wait: when it began, and why its alarm would go off.
        waiting: Option<(Instant, Stall)>,
        // Why the body was given up, once it was: it stays given up.
        stalled: Option<Stall>,
        // Goes off when the current wait has lasted too long.
        #[pin]
        alarm: Option<Sleep>,
    }
}

impl<B> PacedBody<B> {
    /// `inner`, held to `pace`.
    pub fn new(inner: B, pace: BodyPace) -> Self {
        Self {
            inner,
            pace,
            credited: Duration::ZERO,
            waited: Duration::ZERO,
            waiting: None,
            stalled: None,
            alarm: None,
        }
    }
}

impl<B> Body for PacedBody<B>
where
    B: Body,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        if let Some(stall) = *this.stalled {
            return Poll::Ready(Some(Err(Box::new(BodyStalled { stall }))));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                // Bytes that were already there cost no clock reading.
                if let Some((began, _)) = this.waiting.take() {
                    *this.waited += began.elapsed();
                    this.alarm.set(None);
                }
                if let Some(data) = frame
                    .as_ref()
                    .and_then(|frame| frame.as_ref().ok()?.data_ref())
                {
                    *this.credited =
                        this.pace
                            .credit(*this.credited, data.remaining() as u64, *this.waited);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                if this.waiting.is_none() {
                    let Some((limit, stall)) = this.pace.wait_limit(*this.credited, *this.waited)
                    else {
                        return Poll::Pending;
                    };
                    let now = Instant::now();
                    *this.waiting = Some((now, stall));
                    // A limit past what the clock can count (`WAYPOST_BODY_READ_TIMEOUT=
                    // 99999999999`) is as good as none: a year is as long as any waits.
                    let year = Duration::from_secs(365 * 24 * 3600);
                    let deadline = now.checked_add(limit).unwrap_or(now + year);
                    this.alarm.set(Some(tokio::time::sleep_until(deadline)));
                }
                let alarm = this.alarm.as_pin_mut().expect("armed with the wait");
                match (alarm.poll(cx), *this.waiting) {
                    (Poll::Ready(()), Some((_, stall))) => {
                        *this.stalled = Some(stall);
                        Poll::Ready(Some(Err(Box::new(BodyStalled { stall }))))
                    }
                    _ => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stalled.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(bytes_per_second: u64, grace_ms: u64) -> Option<MinBodyRate> {
        Some(MinBodyRate {
            bytes_per_second: NonZeroU64::new(bytes_per_second).unwrap(),
            grace: Duration::from_millis(grace_ms),
        })
    }

    #[test]
    fn a_wait_ends_at_the_pause_limit_or_where_the_rate_falls_behind() {
        let secs = Duration::from_secs;
        let pace = BodyPace {
            max_pause: Some(secs(30)),
            min_rate: rate(100, 5000),
        };
        // Within the grace period only the grace period is left.
        assert_eq!(
            pace.wait_limit(secs(0), secs(0)),
            Some((secs(5), Stall::TooSlow))
        );
        assert_eq!(
            pace.wait_limit(secs(0), secs(2)),
            Some((secs(3), Stall::TooSlow))
        );
        // 100 s earned, 80 of them spent waiting: 20 are left, under the pause.
        assert_eq!(
            pace.wait_limit(secs(100), secs(80)),
            Some((secs(20), Stall::TooSlow))
        );
        // Well ahead of the rate, the pause limit ends a wait first.
        assert_eq!(
            pace.wait_limit(secs(40), secs(10)),
            Some((secs(30), Stall::Paused))
        );
        // Behind already (an empty frame arrived at the last moment): no time left.
        assert_eq!(
            pace.wait_limit(secs(5), secs(6)),
            Some((Duration::ZERO, Stall::TooSlow))
        );
        // Either one alone, or neither.
        let pause_only = BodyPace {
            max_pause: Some(secs(30)),
            min_rate: None,
        };
        assert_eq!(
            pause_only.wait_limit(secs(0), secs(100)),
            Some((secs(30), Stall::Paused))
        );
        assert_eq!(BodyPace::default().wait_limit(secs(0), secs(0)), None);
        assert!(!BodyPace::default().is_set());
    }

    type BoxError = Box<dyn Error + Send + Sync>;

    /// A paced body (pause limit 30 s, minimum `rate`) whose chunks are sent on the channel.
    fn body_from_channel(
        rate: Option<MinBodyRate>,
    ) -> (
        tokio::sync::mpsc::Sender<bytes::Bytes>,
        Pin<Box<impl Body<Data = bytes::Bytes, Error = BoxError>>>,
    ) {
        let (sender, chunks) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
        let frames = futures_util::stream::unfold(chunks, |mut chunks| async move {
            let chunk = chunks.recv().await?;
            Some((Ok::<_, std::io::Error>(Frame::data(chunk)), chunks))
        });
        let pace = BodyPace {
            max_pause: Some(Duration::from_secs(30)),
            min_rate: rate,
        };
        let body = PacedBody::new(http_body_util::StreamBody::new(frames), pace);
        (sender, Box::pin(body))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_fell_behind_stays_given_up_whatever_arrives_later() {
        use http_body_util::BodyExt;

        let (sender, mut body) = body_from_channel(rate(100, 1000));
        sender
            .send(bytes::Bytes::from_static(b"early"))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "early");
        // Nothing more for the grace period (5 bytes earn 50 ms): given up, as too slow.
        let error = body.frame().await.unwrap().unwrap_err();
        let stalled = error.downcast_ref::<BodyStalled>().unwrap();
        assert!(stalled.was_too_slow());
        // Bytes that arrive now change nothing: the handler already answered 408.
        sender
            .send(bytes::Bytes::from_static(b"late"))
            .await
            .unwrap();
        assert!(body.frame().await.unwrap().is_err());
        assert!(!body.is_end_stream());
    }

    #[test]
    fn bytes_buy_waiting_time_no_further_ahead_than_the_pause_limit() {
        let secs = Duration::from_secs;
        let pace = BodyPace {
            max_pause: Some(secs(30)),
            min_rate: rate(100, 5000),
        };
        // 1 000 bytes earn 10 s.
        assert_eq!(pace.credit(secs(0), 1_000, secs(0)), secs(10));
        assert_eq!(pace.credit(secs(10), 1_000, secs(8)), secs(20));
        // A megabyte would earn 10 000 s; after 12 s of waiting it buys 30 s ahead, no more.
        assert_eq!(pace.credit(secs(10), 1_000_000, secs(12)), secs(42));
        // Without a pause limit the cap is 30 s all the same.
        let rate_only = BodyPace {
            max_pause: None,
            min_rate: rate(100, 5000),
        };
        assert_eq!(rate_only.credit(secs(0), 1_000_000, secs(1)), secs(31));
        // Without a rate nothing is earned; a huge count does not overflow.
        assert_eq!(BodyPace::default().credit(secs(3), 1_000, secs(1)), secs(3));
        let slowest = BodyPace {
            max_pause: Some(Duration::MAX),
            min_rate: rate(1, 0),
        };
        assert_eq!(
            slowest.credit(Duration::ZERO, u64::MAX, Duration::ZERO),
            Duration::from_nanos(u64::MAX)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_a_drip_is_given_up_within_the_pause_limit() {
        use http_body_util::BodyExt;

        let (sender, mut body) = body_from_channel(rate(240, 5000));
        // A megabyte at once (worth over an hour at 240 B/s), then a byte every 10 s: each
        // pause within the limit, the rate far below the minimum.
        let started = Instant::now();
        sender
            .send(bytes::Bytes::from(vec![b'x'; 1 << 20]))
            .await
            .unwrap();
        let drip = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                if sender.send(bytes::Bytes::from_static(b"x")).await.is_err() {
                    break;
                }
            }
        });
        let mut received = 0;
        let error = loop {
            match body.frame().await.unwrap() {
                Ok(frame) => received += frame.into_data().unwrap().len(),
                Err(error) => break error,
            }
        };
        drip.abort();
        assert!(error.downcast_ref::<BodyStalled>().unwrap().was_too_slow());
        assert!(received > 1 << 20, "the drip began");
        // Given up once the 30 s bought ahead ran out: not after the hour the burst was worth.
        let taken = started.elapsed();
        assert!(
            taken >= Duration::from_secs(30) && taken <= Duration::from_secs(40),
            "{taken:?}"
        );
    }
}
