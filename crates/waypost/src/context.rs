//! What the front layer settles about the request being served — its id and the app's security
//! settings — kept in a task-local for the length of the request, so everything inside (the
//! per-route guard, extractors, error rendering) reaches it without a lookup in the request's
//! extensions or an argument threaded through every call.

use std::sync::Arc;

use crate::{request_id::RequestId, security::Security};

/// The request being served.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    pub(crate) id: RequestId,
    pub(crate) security: Option<Arc<Security>>,
}

tokio::task_local! {
    pub(crate) static CURRENT: RequestContext;
}

/// The current request's id, or `-` outside a request.
pub(crate) fn request_id() -> RequestId {
    CURRENT
        .try_with(|context| context.id)
        .unwrap_or(RequestId::NONE)
}

/// The security settings of the app serving the current request.
pub(crate) fn security() -> Option<Arc<Security>> {
    with_security(|security| security.cloned())
}

/// Runs `f` with the security settings of the app serving the current request, borrowed: the
/// hot path reads them without touching the shared reference count.
pub(crate) fn with_security<R>(f: impl FnOnce(Option<&Arc<Security>>) -> R) -> R {
    let mut f = Some(f);
    let inside = CURRENT.try_with(|context| {
        let f = f.take().expect("called once");
        f(context.security.as_ref())
    });
    match inside {
        Ok(result) => result,
        Err(_) => (f.take().expect("not called inside a request"))(None),
    }
}
