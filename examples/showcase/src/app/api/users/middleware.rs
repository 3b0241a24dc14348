//! The audit trail of user records: every request under `/api/users` leaves one line — who asked
//! (a user id, an anonymous caller, or a credential that did not check out), for what, and how it
//! was answered — as rules on personal data ask of an app. It changes no answer: refusals are the
//! handlers' (401, 403, 404), and the route's guard (rate limit, CSRF) has run before it.

use waypost::{
    axum::{extract::Request, middleware::Next, response::Response},
    extract::State,
    security::Caller,
};

use crate::AppState;

/// Logs one `audit` line per request, at info level, after the answer.
pub async fn middleware(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    let caller = match Caller::of(request.extensions()) {
        Caller::Identified(identity) => format!("user {}", identity.user_id),
        Caller::Rejected(_) => "a credential that did not check out".to_owned(),
        Caller::Anonymous => "anonymous".to_owned(),
    };
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        target: "audit",
        %caller,
        %method,
        %path,
        status = response.status().as_u16(),
        "user records requested"
    );
    response
}
