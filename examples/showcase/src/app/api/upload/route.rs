//! `POST /api/upload`: a multipart upload (part `file`), streamed to disk within
//! `UPLOAD_MAX_BYTES`, under a server-made name.

use waypost::{
    axum::{http::HeaderMap, response::Response},
    extract::{declared_length, State},
    response,
    security::Auth,
    upload::{Multipart, UploadError},
    ApiError, RouteConfig,
};

use crate::{
    config::{UPLOAD_ENVELOPE_BYTES, UPLOAD_ROUTE_LIMIT},
    files,
    users::User,
    AppState,
};

/// The body may be as large as the largest file `UPLOAD_MAX_BYTES` can allow, with its
/// envelope; the configured file limit itself is checked before reading (by the declared
/// length) and while streaming.
pub const CONFIG: RouteConfig = RouteConfig::new().body_limit(UPLOAD_ROUTE_LIMIT);

/// 201 `{"fileId", "originalName", "size", "type", "uploadedAt"}`; 400 without a `file` part or
/// with two; 413 over the limit. Other parts (a description a form sends along) are skipped
/// unread. Whenever the answer is not 201, nothing is stored.
pub async fn post(
    State(state): State<AppState>,
    Auth(user): Auth<User>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let limit = state.config().upload_max_bytes;
    if declared_length(&headers).is_some_and(|length| length > limit + UPLOAD_ENVELOPE_BYTES) {
        // Too large whatever the form holds: refused before a byte of it is read.
        return Err(UploadError::TooLarge { limit }.into());
    }
    // A file written is removed again unless kept, also when the client goes away mid-way.
    let mut stored = None;
    let outcome = async {
        while let Some(field) = form.next_field().await? {
            let name = field.name().unwrap_or_default().to_owned();
            if name != "file" {
                // A browser form's CSRF token (the route's guard has checked it already) or a
                // field of the client's own: none of this route's business. The next part is
                // found without reading this one into memory; the route's body limit bounds all.
                continue;
            }
            if stored.is_some() {
                return Err(ApiError::invalid_field(
                    "file",
                    "must be one file: the form holds more than one",
                ));
            }
            match field.file_name() {
                // A plain form value under the name, not a file.
                None => {
                    return Err(ApiError::invalid_field(
                        "file",
                        "must be a file (a part with a filename)",
                    ))
                }
                // What a browser sends for a file input left empty: no file was chosen.
                Some("") => continue,
                Some(_) => {}
            }
            stored = Some(
                state
                    .uploads()
                    .store(field, limit)
                    .await?,
            );
        }
        Ok(())
    }
    .await;
    if let Err(error) = outcome {
        // Read the rest so the client gets the answer, not a reset connection; keep nothing.
        form.drain().await;
        if let Some(file) = stored {
            file.discard().await;
        }
        return Err(error);
    }
    let Some(file) = stored else {
        return Err(ApiError::invalid_field("file", "is required"));
    };
    // The record is written and the file kept (or removed, when the write fails) in one step
    // that a client going away mid-write cannot split.
    let (db, uploader) = (state.db().clone(), user.id);
    let record = file
        .keep_if(move |file| async move { files::record(&db, &file, &uploader).await })
        .await?;
    Ok(response::created(record))
}
