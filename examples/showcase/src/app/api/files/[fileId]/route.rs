//! `GET /api/files/{fileId}`: the exact bytes of an upload, for its uploader or an admin.

use waypost::{
    extract::State,
    security::Auth,
    upload::FileDownload,
    ApiError,
};

use super::Params;
use crate::{files, users::User, AppState};

/// The file as an attachment with its stored type; 404 when unknown, 403 when it is another
/// user's (and the caller no admin).
pub async fn get(
    State(state): State<AppState>,
    Auth(user): Auth<User>,
    params: Params,
) -> Result<FileDownload, ApiError> {
    let record = files::find(state.db(), &params.fileId)
        .await?
        .ok_or_else(|| ApiError::not_found("No file with this id."))?;
    if record.owner_id != user.id && !user.is_admin() {
        return Err(ApiError::forbidden("Only the uploader or an admin can download this file."));
    }
    state
        .uploads()
        .download(&record.file_id, &record.original_name, &record.content_type)
        .await
}
