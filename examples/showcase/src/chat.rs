//! Deep Chat's request shape and the built-in assistant that answers when no chat backend is
//! configured.

use std::{convert::Infallible, time::Duration};

use futures_util::{stream, StreamExt};
use garde::Validate;
use serde::Deserialize;
use serde_json::{json, Value};
use waypost::{axum::response::Response, stream::Event};

/// One message of the conversation. Required fields are optional at the parsing stage, as in
/// every body of the showcase, so that a missing one is a `validation_failed` naming it.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize, Validate)]
pub struct Message {
    /// `user` or `ai`.
    #[garde(required, length(chars, min = 1, max = 32))]
    pub role: Option<String>,
    /// The message text.
    #[garde(length(chars, max = 20_000))]
    #[serde(default)]
    pub text: String,
}

/// Deep Chat's request body.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize, Validate)]
pub struct ChatRequest {
    /// The conversation so far, at least one message.
    #[garde(required, length(min = 1, max = 200), dive)]
    pub messages: Option<Vec<Message>>,
    /// `1` or `true` asks for a text/event-stream answer.
    #[garde(skip)]
    #[serde(default)]
    pub stream: Option<Value>,
}

impl ChatRequest {
    /// Whether the client asked for a stream (`"stream": 1` or `true`).
    pub fn wants_stream(&self) -> bool {
        match &self.stream {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::Number(number)) => number.as_i64() == Some(1),
            Some(Value::String(text)) => text == "1" || text == "true",
            _ => false,
        }
    }
}

/// The built-in assistant's answer to `request`: a deterministic echo of the last user
/// message.
pub fn built_in_reply(request: &ChatRequest) -> String {
    let last = request
        .messages
        .iter()
        .flatten()
        .rev()
        .find(|message| message.role.as_deref() == Some("user"))
        .map_or("", |message| message.text.trim());
    if last.is_empty() {
        "Hello! Ask me anything.".to_owned()
    } else {
        format!("You said: {last}")
    }
}

/// The built-in reply as Deep Chat SSE events, one word per event.
pub fn built_in_stream(reply: String) -> Response {
    let words: Vec<String> = reply.split_inclusive(' ').map(str::to_owned).collect();
    let events = stream::iter(words).then(|word| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, Infallible>(Event::default().data(json!({ "text": word }).to_string()))
    });
    waypost::stream::sse(events)
}

/// A whole answer (`{"text"}` or `{"html"}`) as a Deep Chat SSE stream of one event.
pub fn single_event(answer: &Value) -> Response {
    let event = Ok::<_, Infallible>(Event::default().data(answer.to_string()));
    waypost::stream::sse(stream::iter([event]))
}
