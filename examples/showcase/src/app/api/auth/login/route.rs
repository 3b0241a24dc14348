//! `POST /api/auth/login`: check a password, start a server-side session (cookie) and issue a
//! bearer JWT. Limited to 10 attempts a minute per client IP.

use serde_json::json;
use waypost::{
    axum::{http::HeaderMap, response::Response},
    extract::{Json, State, Valid},
    response,
    security::{password, request_cookie, AppSecurity, SESSION_COOKIE},
    ApiError, RateLimit, RouteConfig,
};

use crate::{
    users::{self, Credentials},
    AppState,
};

/// Brute force is slowed per IP, whoever the attempts are for.
pub const CONFIG: RouteConfig = RouteConfig::new()
    .rate_limit(RateLimit::per_minute(10))
    .rate_limit_per_ip();

fn invalid_credentials() -> ApiError {
    ApiError::new(
        waypost::axum::http::StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "The email or password is wrong.",
    )
}

/// 200 `{"user", "token"}` and the `session` cookie; 401 `invalid_credentials` alike for an
/// unknown email and a wrong password (same answer, same time spent hashing).
pub async fn post(
    State(state): State<AppState>,
    security: AppSecurity,
    headers: HeaderMap,
    Valid(Json(input)): Valid<Json<Credentials>>,
) -> Result<Response, ApiError> {
    let email = input.email.unwrap_or_default();
    let given = input.password.unwrap_or_default();
    let Some((user, hash)) = users::find_with_hash(state.db(), &email).await? else {
        password::verify_against_nothing(&given).await?;
        return Err(invalid_credentials());
    };
    if !password::verify_password(&given, &hash).await? {
        return Err(invalid_credentials());
    }
    let previous = request_cookie(&headers, SESSION_COOKIE);
    let cookie = security.start_session(&user.id, previous.as_deref()).await?;
    let token = security.jwt().issue(&user.id)?;
    let mut response = response::json(
        waypost::axum::http::StatusCode::OK,
        json!({ "user": user, "token": token }),
    );
    response::set_cookie(&mut response, &cookie);
    Ok(response)
}
