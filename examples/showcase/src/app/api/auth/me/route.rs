//! `GET /api/auth/me`: who am I (session cookie or bearer token)?

use waypost::{extract::Json, security::Auth};

use crate::users::{User, UserEnvelope};

/// 200 `{"user": …}`, or 401.
pub async fn get(Auth(user): Auth<User>) -> Json<UserEnvelope> {
    Json(UserEnvelope { user })
}
