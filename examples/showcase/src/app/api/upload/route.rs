//! `POST /api/upload`: a multipart upload (part `file`), streamed to disk within
//! `UPLOAD_MAX_BYTES`, under a server-made name.

use waypost::{
    axum::response::Response,
    extract::State,
    response,
    security::Auth,
    upload::Multipart,
    ApiError, RouteConfig,
};

use crate::{config::UPLOAD_ROUTE_LIMIT, files, users::User, AppState};

/// The body may be as large as the largest file `UPLOAD_MAX_BYTES` can allow; the file limit
/// itself is checked while streaming.
pub const CONFIG: RouteConfig = RouteConfig::new().body_limit(UPLOAD_ROUTE_LIMIT);

/// 201 `{"fileId", "originalName", "size", "type", "uploadedAt"}`; 400 without a `file` part;
/// 413 over the limit, with nothing stored.
pub async fn post(
    State(state): State<AppState>,
    Auth(user): Auth<User>,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    while let Some(field) = form.next_field().await? {
        if field.name() != Some("file") {
            continue;
        }
        let stored = match state
            .uploads()
            .store(field, state.config().upload_max_bytes)
            .await
        {
            Ok(stored) => stored,
            Err(error) => {
                // Read the rest so the client gets the answer, not a reset connection.
                form.drain().await;
                return Err(error.into());
            }
        };
        let record = match files::record(state.db(), &stored, &user.id).await {
            Ok(record) => record,
            Err(error) => {
                let _ = state.uploads().remove(&stored.id).await;
                return Err(error);
            }
        };
        form.drain().await;
        return Ok(response::created(record));
    }
    Err(ApiError::invalid_field("file", "is required"))
}
