//! Uploaded files' metadata: who uploaded what, under which server-made id.

use serde::Serialize;
use sqlx::Row;
use waypost::{database::Database, upload::StoredFile, ApiError};

use crate::timestamp;

/// A stored file as the API shows it.
#[derive(schemars::JsonSchema, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    /// The server-made id.
    pub file_id: String,
    /// The client's filename (metadata only).
    pub original_name: String,
    /// Bytes.
    pub size: u64,
    /// The stored content type.
    #[serde(rename = "type")]
    pub content_type: String,
    /// RFC 3339 UTC.
    pub uploaded_at: String,
    /// The uploader.
    #[serde(skip)]
    pub owner_id: String,
}

/// Records `file` as uploaded by `owner`.
///
/// # Errors
/// The database failed.
pub async fn record(db: &Database, file: &StoredFile, owner: &str) -> Result<FileRecord, ApiError> {
    let record = FileRecord {
        file_id: file.id.clone(),
        original_name: file.original_name.clone(),
        size: file.size,
        content_type: file.content_type.clone(),
        uploaded_at: timestamp::now(),
        owner_id: owner.to_owned(),
    };
    sqlx::query(
        "INSERT INTO files (id, owner_id, original_name, content_type, size, uploaded_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&record.file_id)
    .bind(owner)
    .bind(&record.original_name)
    .bind(&record.content_type)
    .bind(i64::try_from(record.size).unwrap_or(i64::MAX))
    .bind(&record.uploaded_at)
    .execute(db)
    .await?;
    Ok(record)
}

/// The file with `id`.
///
/// # Errors
/// The database failed.
pub async fn find(db: &Database, id: &str) -> Result<Option<FileRecord>, ApiError> {
    let row = sqlx::query(
        "SELECT id, owner_id, original_name, content_type, size, uploaded_at FROM files \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(FileRecord {
        file_id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        original_name: row.try_get("original_name")?,
        content_type: row.try_get("content_type")?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        uploaded_at: row.try_get("uploaded_at")?,
    }))
}
