//! Uploads: multipart bodies streamed to disk within limits, under names the server makes.
//!
//! A file part is written chunk by chunk to a temporary file in the upload folder and renamed
//! into place only when it is complete and within its limit, so a reader never sees half a
//! file and a refused upload leaves nothing behind. The client's filename is kept as metadata
//! only: it never takes part in a path (`../../etc/passwd` is stored like any other name).
//!
//! When a part is over its limit the rest of the request body is read and discarded (it is
//! already bounded by the route's body limit) before the 413 is sent, so the client finishes
//! sending and reads the answer instead of a connection reset.

use std::path::{Path, PathBuf};

use axum::{
    body::Body,
    extract::{FromRequest, Request},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use tokio::io::AsyncWriteExt;

use crate::ApiError;

/// A `multipart/form-data` body, read part by part.
#[derive(Debug)]
pub struct Multipart(axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for Multipart {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        crate::extract::refuse_content_encoding(request.headers())?;
        axum::extract::Multipart::from_request(request, state)
            .await
            .map(Multipart)
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
                _ => ApiError::unsupported_media_type("multipart/form-data"),
            })
    }
}

/// One part of a multipart body.
pub type Field<'a> = axum::extract::multipart::Field<'a>;

impl Multipart {
    /// The next part, or `None` at the end.
    ///
    /// # Errors
    /// 413 when the body passes the route's limit, 400 when it is malformed.
    pub async fn next_field(&mut self) -> Result<Option<Field<'_>>, ApiError> {
        self.0.next_field().await.map_err(multipart_error)
    }

    /// Reads and discards what is left of the body (bounded by the route's body limit).
    pub async fn drain(&mut self) {
        while let Ok(Some(mut field)) = self.0.next_field().await {
            while let Ok(Some(_chunk)) = field.chunk().await {}
        }
    }
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large()
    } else {
        ApiError::bad_request(format!(
            "The multipart body is malformed: {}.",
            error.body_text()
        ))
    }
}

/// A file written to the upload folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// The server-made id, also the file's name on disk.
    pub id: String,
    /// Bytes written.
    pub size: u64,
    /// The client's filename, as metadata only (at most 255 characters).
    pub original_name: String,
    /// The part's content type (`application/octet-stream` when absent or malformed).
    pub content_type: String,
}

/// Why an upload could not be stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The file is larger than allowed.
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client's body broke off or was malformed.
    #[error("the upload could not be read")]
    Body(ApiError),
    /// Writing to disk failed.
    #[error("writing the upload failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::TooLarge { limit } => {
                ApiError::payload_too_large().with_details(serde_json::json!({ "maxBytes": limit }))
            }
            UploadError::Body(error) => error,
            UploadError::Io(error) => ApiError::internal(error),
        }
    }
}

/// The folder uploads are stored in.
#[derive(Clone, Debug)]
pub struct UploadDir {
    root: PathBuf,
}

impl UploadDir {
    /// The folder at `root`, created when missing.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub async fn open(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await?;
        Ok(Self { root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file `id` lives, when `id` has the shape of an id this folder makes (so no
    /// client-supplied id can point outside the folder).
    pub fn path_of(&self, id: &str) -> Option<PathBuf> {
        let well_formed = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| self.root.join(id))
    }

    /// Streams `field` to disk within `max_bytes`: a temporary file, renamed into place when
    /// complete; removed on any failure.
    ///
    /// # Errors
    /// [`UploadError::TooLarge`] past the limit, [`UploadError::Body`] when the body breaks off,
    /// [`UploadError::Io`] when writing fails.
    pub async fn store(
        &self,
        mut field: Field<'_>,
        max_bytes: u64,
    ) -> Result<StoredFile, UploadError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let original_name: String = field
            .file_name()
            .unwrap_or("upload")
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        let content_type = field
            .content_type()
            .filter(|value| value.parse::<HeaderValue>().is_ok() && value.contains('/'))
            .unwrap_or("application/octet-stream")
            .to_owned();
        let temporary = self.root.join(format!(".partial-{id}"));
        let result = async {
            let mut file = tokio::fs::File::create(&temporary).await?;
            let mut size: u64 = 0;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|error| UploadError::Body(multipart_error(error)))?
            {
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(UploadError::TooLarge { limit: max_bytes });
                }
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            Ok(size)
        }
        .await;
        match result {
            Ok(size) => {
                tokio::fs::rename(&temporary, self.root.join(&id)).await?;
                Ok(StoredFile {
                    id,
                    size,
                    original_name,
                    content_type,
                })
            }
            Err(error) => {
                let _ = tokio::fs::remove_file(&temporary).await;
                Err(error)
            }
        }
    }

    /// Removes the file `id` (when it exists).
    ///
    /// # Errors
    /// Removing an existing file failed.
    pub async fn remove(&self, id: &str) -> std::io::Result<()> {
        let Some(path) = self.path_of(id) else {
            return Ok(());
        };
        match tokio::fs::remove_file(path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// A download of the file `id` as an attachment named `name`.
    ///
    /// # Errors
    /// 404 when there is no such file.
    pub async fn download(
        &self,
        id: &str,
        name: &str,
        content_type: &str,
    ) -> Result<FileDownload, ApiError> {
        let path = self
            .path_of(id)
            .ok_or_else(|| ApiError::not_found("No file with this id."))?;
        let file = tokio::fs::File::open(&path).await.map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                ApiError::not_found("No file with this id.")
            } else {
                ApiError::internal(error)
            }
        })?;
        let size = file.metadata().await.map_err(ApiError::internal)?.len();
        Ok(FileDownload {
            file,
            size,
            name: name.to_owned(),
            content_type: content_type.to_owned(),
        })
    }
}

/// A file sent as an attachment, streamed from disk (never read into memory whole).
#[derive(Debug)]
pub struct FileDownload {
    file: tokio::fs::File,
    size: u64,
    name: String,
    content_type: String,
}

impl IntoResponse for FileDownload {
    fn into_response(self) -> Response {
        let content_type = HeaderValue::from_str(&self.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let disposition = HeaderValue::from_str(&content_disposition(&self.name))
            .unwrap_or(HeaderValue::from_static("attachment"));
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(self.file));
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CONTENT_LENGTH, HeaderValue::from(self.size)),
                (header::CONTENT_DISPOSITION, disposition),
                (
                    header::CACHE_CONTROL,
                    // Exactly `no-store`, what every authenticated answer carries: it already
                    // keeps shared caches (and every other) from storing the file.
                    HeaderValue::from_static("no-store"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            body,
        )
            .into_response()
    }
}

/// `attachment; filename="…"` with an ASCII fallback, plus `filename*` (RFC 6266) when the
/// name is not plain ASCII.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '_',
        })
        .collect();
    if fallback == name {
        format!("attachment; filename=\"{fallback}\"")
    } else {
        let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_quote_safely() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\""
        );
        assert_eq!(
            content_disposition("../../etc/passwd"),
            "attachment; filename=\"../../etc/passwd\""
        );
        assert_eq!(
            content_disposition("a\"b.txt"),
            "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt"
        );
        assert!(content_disposition("résumé.txt").contains("filename*=UTF-8''r%C3%A9sum%C3%A9.txt"));
    }

    #[tokio::test]
    async fn ids_that_are_not_ours_map_to_no_path() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = UploadDir::open(dir.path()).await.unwrap();
        assert!(uploads.path_of("../../etc/passwd").is_none());
        assert!(uploads.path_of("").is_none());
        assert!(uploads.path_of(&"g".repeat(32)).is_none());
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(uploads.path_of(id).unwrap(), dir.path().join(id));
    }
}
