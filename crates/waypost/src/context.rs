//! What the front layer settles about the request being served — its id and the app's security
//! settings — kept in a task-local for the length of the request, so everything inside (the
//! per-route layer, extractors, error rendering) reaches it without a lookup in the request's
//! extensions or an argument threaded through every call.

use std::{future::Future, sync::Arc};

use axum::http::HeaderValue;

use crate::{request_id::RequestId, security::Security};

/// The request being served.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    pub(crate) id: RequestId,
    pub(crate) security: Option<Arc<Security>>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Runs `future` as the request described by `context`.
pub(crate) async fn scope<F: Future>(context: RequestContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// The current request's id, or `-` outside a request.
pub(crate) fn request_id() -> RequestId {
    CURRENT
        .try_with(|context| context.id.clone())
        .unwrap_or_else(|_| RequestId::from_static("-"))
}

/// The security settings of the app serving the current request.
pub(crate) fn security() -> Option<Arc<Security>> {
    CURRENT
        .try_with(|context| context.security.clone())
        .ok()
        .flatten()
}

impl RequestId {
    pub(crate) fn from_static(id: &'static str) -> Self {
        RequestId::from_value(HeaderValue::from_static(id))
    }
}
