//! `POST /api/chat`: a Deep Chat endpoint — proxied to the Drupal backend (`CHAT_BACKEND_URL`)
//! with a per-user token, or answered by the built-in assistant.

use serde_json::{json, Value};
use waypost::{
    axum::{
        http::HeaderMap,
        response::{IntoResponse, Response},
    },
    extract::{validate, Json, JsonWithBytes, State},
    proxy::{media_type, relay_event_stream, upstream_failed},
    security::{Auth, Identity},
    ApiError,
};

use crate::{
    chat::{self, ChatRequest},
    chat_bearer,
    users::User,
    AppState,
};

/// The backend's JSON (`{"text"}` or `{"html"}`) or its event stream relayed as it arrives;
/// 502 `upstream_failed` when the backend fails. The backend gets the client's body as sent,
/// once it is known to be a valid chat request. A streaming request answered with whole JSON
/// gets it as one event; one answered with anything but events or JSON is 502.
pub async fn post(
    State(state): State<AppState>,
    // The account must still exist (as on every signed-in route); the identity says how the
    // caller signed in, for the bearer handed to the backend.
    Auth(_user): Auth<User>,
    Auth(identity): Auth<Identity>,
    headers: HeaderMap,
    JsonWithBytes {
        value: request,
        bytes: body,
    }: JsonWithBytes<ChatRequest>,
) -> Result<Response, ApiError> {
    validate(&request)?;
    let stream = request.wants_stream();
    let Some(backend) = state.chat() else {
        let reply = chat::built_in_reply(&request);
        return Ok(if stream {
            chat::built_in_stream(reply)
        } else {
            Json(json!({ "text": reply })).into_response()
        });
    };
    let bearer = chat_bearer(&state, &identity, &headers)?;
    if stream {
        let upstream = backend.call(&identity.user_id, &bearer, body).await?;
        if media_type(&upstream).as_deref() != Some("application/json") {
            // An event stream, relayed as it arrives; anything else but JSON is refused.
            return relay_event_stream(upstream);
        }
        // A backend that does not stream answered whole: its answer becomes the one event.
        let answer = chat_answer(backend.read_json(upstream).await?)?;
        return Ok(chat::single_event(&answer));
    }
    let answer = chat_answer(backend.call_json(&identity.user_id, &bearer, body).await?)?;
    Ok(Json(answer).into_response())
}

/// The backend's answer when it is one Deep Chat shows: `{"text"}` or `{"html"}`.
fn chat_answer(answer: Value) -> Result<Value, ApiError> {
    if answer.get("text").is_none() && answer.get("html").is_none() {
        return Err(upstream_failed("the chat backend answered neither text nor html"));
    }
    Ok(answer)
}
