//! `GET /api/auth/me`: who am I (session cookie or bearer token)?

use serde_json::{json, Value};
use waypost::{extract::Json, security::Auth};

use crate::users::User;

/// 200 `{"user": …}`, or 401.
pub async fn get(Auth(user): Auth<User>) -> Json<Value> {
    Json(json!({ "user": user }))
}
