//! What the front layer settles about the request being served — its id and the app's security
//! settings — made current while the request's future runs, so everything inside (the per-route
//! guard, extractors, error rendering) reaches it without a lookup in the request's extensions or
//! an argument threaded through every call.
//!
//! It works like a tokio task-local, but the front future owns the value and makes it current
//! around each poll (and around the synchronous call into the router) itself, so the request
//! needs no extra future wrapped around it. Being current costs a pointer in a thread-local
//! (`scoped-tls`): nothing is moved in and out, on a path every request takes several times.
//! Like a task-local, it does not follow work onto spawned tasks or blocking threads.

use std::{cell::Cell, net::IpAddr, sync::Arc};

use crate::{request_id::RequestId, security::Security, shutdown::Shutdown};

/// The request being served.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    pub(crate) id: RequestId,
    /// What the connection's requests share (`None` when the app runs without security).
    pub(crate) connection: Option<Arc<ConnectionShared>>,
    /// The connection's peer, when the app's own server serves it (else `ConnectInfo`, if any,
    /// is read from the request).
    pub(crate) peer: Option<IpAddr>,
    /// Whether the request presented credentials, so an [`crate::security::Identity`] may be
    /// among its extensions; without, nobody looks.
    pub(crate) presented_credentials: bool,
    /// The most pairs `Query` and `Form` read: the route's `max_fields`, set once routing has
    /// found the route (see [`set_max_fields`]), while the context is current (so in a cell).
    pub(crate) max_fields: Cell<usize>,
}

/// What one connection's requests share: the app's security settings and the server's stop.
/// Every request takes a reference to its context; counted on a per-connection `Arc`, that
/// reference count stays in the cache of the core serving the connection instead of bouncing
/// between cores on every request.
#[derive(Debug)]
pub(crate) struct ConnectionShared {
    pub(crate) security: Arc<Security>,
    pub(crate) shutdown: Shutdown,
}

scoped_tls::scoped_thread_local!(static CURRENT: RequestContext);

/// Runs `f` with `context` current on this thread (with none, whatever is current stays so).
/// Nests: an outer request's context is current again after, also when `f` panics.
pub(crate) fn enter<R>(context: Option<&RequestContext>, f: impl FnOnce() -> R) -> R {
    match context {
        Some(context) => CURRENT.set(context, f),
        None => f(),
    }
}

pin_project_lite::pin_project! {
    /// `future` with a request's context current around each of its polls: for work of the
    /// request that runs in a task of its own, where the context would not follow.
    pub(crate) struct InContext<F> {
        context: Option<RequestContext>,
        // The request's log span, so the work's own log lines name the request too.
        span: tracing::Span,
        #[pin]
        future: F,
    }
}

impl<F: std::future::Future> std::future::Future for InContext<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        let _in_span = this.span.enter();
        enter(this.context.as_ref(), || future.poll(cx))
    }
}

/// `future`, carrying the current request's context (if any) to wherever it is polled.
pub(crate) fn carried<F: std::future::Future>(future: F) -> InContext<F> {
    Captured::now().carry(future)
}

/// The current request's context and log span, kept for work that only starts later (a
/// WebSocket session, once its connection is upgraded).
#[derive(Clone, Debug)]
pub(crate) struct Captured {
    context: Option<RequestContext>,
    span: tracing::Span,
}

impl Captured {
    /// What is current now.
    pub(crate) fn now() -> Self {
        Self {
            context: with_current(|context| context.cloned()),
            span: tracing::Span::current(),
        }
    }

    /// `future`, with the captured context current around each of its polls.
    pub(crate) fn carry<F: std::future::Future>(&self, future: F) -> InContext<F> {
        InContext {
            context: self.context.clone(),
            span: self.span.clone(),
            future,
        }
    }
}

/// Reads the current context, if a request is being served on this thread.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&RequestContext>) -> R) -> R {
    if CURRENT.is_set() {
        CURRENT.with(|context| f(Some(context)))
    } else {
        f(None)
    }
}

/// Gives the current request its route's `max_fields` (nothing outside a request).
pub(crate) fn set_max_fields(max_fields: usize) {
    with_current(|context| {
        if let Some(context) = context {
            context.max_fields.set(max_fields);
        }
    });
}

/// The current request's id, or `-` outside a request.
pub(crate) fn request_id() -> RequestId {
    with_current(|context| context.map_or(RequestId::NONE, |context| context.id))
}

/// The security settings of the app serving the current request.
pub(crate) fn security() -> Option<Arc<Security>> {
    with_current(|context| {
        context
            .and_then(|context| context.connection.as_ref())
            .map(|connection| connection.security.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(id: &str) -> Option<RequestContext> {
        Some(RequestContext {
            id: RequestId::from_header(Some(&axum::http::HeaderValue::from_str(id).unwrap())),
            connection: None,
            peer: None,
            presented_credentials: false,
            max_fields: Cell::new(crate::DEFAULT_MAX_FIELDS),
        })
    }

    #[test]
    fn a_context_is_current_only_inside_and_comes_back() {
        let outer = context("outer");
        let inner = context("inner");
        assert_eq!(request_id().as_str(), "-");
        enter(outer.as_ref(), || {
            assert_eq!(request_id().as_str(), "outer");
            enter(inner.as_ref(), || {
                assert_eq!(request_id().as_str(), "inner")
            });
            assert_eq!(request_id().as_str(), "outer");
            set_max_fields(7);
        });
        assert_eq!(request_id().as_str(), "-");
        assert_eq!(outer.unwrap().max_fields.get(), 7, "set while current");
        assert_eq!(inner.unwrap().max_fields.get(), crate::DEFAULT_MAX_FIELDS);
    }

    #[tokio::test]
    async fn a_carried_future_sees_its_requests_context_in_another_task() {
        let slot = context("carried");
        let work = enter(slot.as_ref(), || {
            carried(async { request_id().as_str().to_owned() })
        });
        assert_eq!(request_id().as_str(), "-");
        let seen = tokio::spawn(work).await.unwrap();
        assert_eq!(seen, "carried");
    }

    #[test]
    fn a_panic_inside_leaves_nothing_behind() {
        let outer = context("outer");
        let slot = context("panics");
        enter(outer.as_ref(), || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                enter(slot.as_ref(), || panic!("inside"));
            }));
            assert!(outcome.is_err());
            assert_eq!(request_id().as_str(), "outer");
        });
        assert_eq!(request_id().as_str(), "-");
    }
}
