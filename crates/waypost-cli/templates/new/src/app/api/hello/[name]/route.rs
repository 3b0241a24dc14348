//! `GET /api/hello/{name}`: the folder `[name]` makes that segment a parameter.

use serde_json::{json, Value};
use waypost::extract::Json;

// Generated from the folder names: `Params { name: String }`.
use super::Params;

/// Says hello to `name`.
pub async fn get(params: Params) -> Json<Value> {
    Json(json!({ "message": format!("Hello, {}", params.name) }))
}
