//! The generator behind `/api/generate`: a configured backend (`GENERATE_BACKEND_URL`) or a
//! built-in deterministic one.

use serde_json::{json, Value};
use waypost::{
    proxy::{read_json, upstream_failed},
    ApiError,
};

use crate::AppState;

/// Runs the generator for `prompt`; its `result`.
///
/// # Errors
/// 502 `upstream_failed` when the backend fails, times out, redirects, or answers without a
/// `result`.
pub async fn run(
    state: &AppState,
    prompt: &str,
    project_id: Option<&str>,
) -> Result<Value, ApiError> {
    let Some(url) = &state.config().generate_backend_url else {
        return Ok(built_in(prompt, project_id));
    };
    let response = state
        .upstream()
        .post(url.clone())
        .timeout(state.config().generate_timeout)
        .json(&json!({ "prompt": prompt, "projectId": project_id }))
        .send()
        .await
        .map_err(upstream_failed)?;
    if !response.status().is_success() {
        return Err(upstream_failed(format!(
            "generator answered {}",
            response.status()
        )));
    }
    let body: Value = read_json(response).await?;
    // `null` is no result either: the client paid a credit for one.
    body.get("result")
        .filter(|result| !result.is_null())
        .cloned()
        .ok_or_else(|| upstream_failed("the generator's answer has no `result`"))
}

/// A deterministic stand-in: the same prompt always yields the same outline.
fn built_in(prompt: &str, project_id: Option<&str>) -> Value {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    let outline: Vec<String> = words
        .chunks(3)
        .enumerate()
        .map(|(index, chunk)| format!("{}. {}", index + 1, chunk.join(" ")))
        .collect();
    let heading = match project_id {
        Some(project) => format!("Draft for project {project}"),
        None => "Draft".to_owned(),
    };
    Value::String(format!(
        "{heading}: {} ({} words)",
        outline.join("; "),
        words.len()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_generator_is_deterministic() {
        let a = super::built_in("write a short poem about rust", Some("p1"));
        assert_eq!(
            a,
            super::built_in("write a short poem about rust", Some("p1"))
        );
        assert_eq!(
            a,
            "Draft for project p1: 1. write a short; 2. poem about rust (6 words)"
        );
    }
}
