//! `GET /api/hello`: the smallest route there is.

use serde_json::{json, Value};
use waypost::extract::Json;

/// Says hello.
pub async fn get() -> Json<Value> {
    Json(json!({ "message": "Hello" }))
}
