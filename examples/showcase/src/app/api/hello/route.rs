//! `GET /api/hello`: the smallest route there is.

use serde::Serialize;
use waypost::extract::Json;

/// A greeting.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Greeting {
    /// Always `Hello`.
    pub message: &'static str,
}

/// Says hello.
pub async fn get() -> Json<Greeting> {
    Json(Greeting { message: "Hello" })
}
