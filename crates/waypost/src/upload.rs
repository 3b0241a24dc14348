//! Uploads: multipart bodies streamed to disk within limits, under names the server makes.
//!
//! A file part is written chunk by chunk to a temporary file in the upload folder and renamed
//! into place only when it is complete and within its limit, so a reader never sees half a
//! file and a refused upload leaves nothing behind. The stored file is then a [`PendingFile`]:
//! removed again when dropped — the request failed later, or went away — until the caller
//! keeps it. The client's filename is kept as metadata
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

/// A file [`UploadDir::store`] wrote, not yet kept: dropped, it is removed from the folder, so
/// an upload whose request fails or goes away after its bytes were written — a later part over
/// its limit, the client disconnecting — leaves nothing behind. Call [`PendingFile::keep`] when
/// the upload is accepted (just before recording it: a record must never name a removed file;
/// remove the kept file yourself if the record cannot be written), or
/// [`PendingFile::discard`] to remove it before answering.
#[derive(Debug)]
#[must_use = "a pending file is removed when dropped: keep() it once the upload is accepted"]
pub struct PendingFile {
    file: StoredFile,
    on_disk: RemovedOnDrop,
}

impl PendingFile {
    /// The file stays in the folder.
    pub fn keep(self) -> StoredFile {
        self.on_disk.disarm();
        self.file
    }

    /// Removes the file now, so it is gone before the answer leaves.
    pub async fn discard(self) {
        self.on_disk.remove().await;
    }
}

impl std::ops::Deref for PendingFile {
    type Target = StoredFile;

    fn deref(&self) -> &StoredFile {
        &self.file
    }
}

/// A path that is removed when this is dropped (in a task, as drop cannot wait), unless
/// [disarmed](RemovedOnDrop::disarm) or [removed](RemovedOnDrop::remove) first.
#[derive(Debug)]
struct RemovedOnDrop(Option<PathBuf>);

impl RemovedOnDrop {
    fn new(path: PathBuf) -> Self {
        Self(Some(path))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().expect("armed until consumed")
    }

    fn disarm(mut self) {
        self.0 = None;
    }

    async fn remove(mut self) {
        if let Some(path) = self.0.take() {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let Some(path) = self.0.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let removal = async move {
                let _ = tokio::fs::remove_file(path).await;
            };
            crate::leftover_work::spawn(removal);
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
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
    /// complete; removed on any failure, and when the request goes away mid-way. The file is
    /// [pending](PendingFile) until the caller keeps it.
    ///
    /// # Errors
    /// [`UploadError::TooLarge`] past the limit, [`UploadError::Body`] when the body breaks off,
    /// [`UploadError::Io`] when writing fails.
    pub async fn store(
        &self,
        mut field: Field<'_>,
        max_bytes: u64,
    ) -> Result<PendingFile, UploadError> {
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
        let temporary = RemovedOnDrop::new(self.root.join(format!(".partial-{id}")));
        let result = async {
            let mut file = tokio::fs::File::create(temporary.path()).await?;
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
            let destination = RemovedOnDrop::new(self.root.join(&id));
            tokio::fs::rename(temporary.path(), destination.path()).await?;
            Ok((size, destination))
        }
        .await;
        match result {
            Ok((size, on_disk)) => {
                temporary.disarm();
                Ok(PendingFile {
                    file: StoredFile {
                        id,
                        size,
                        original_name,
                        content_type,
                    },
                    on_disk,
                })
            }
            Err(error) => {
                // Gone before the answer is, rather than soon after.
                temporary.remove().await;
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

    /// A multipart request whose body is what `parts` sends, under boundary `X`.
    fn form_request(
        parts: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
    ) -> Request {
        let chunks = futures_util::stream::unfold(parts, |mut parts| async move {
            parts.recv().await.map(|chunk| (chunk, parts))
        });
        Request::builder()
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=X")
            .body(Body::from_stream(chunks))
            .unwrap()
    }

    const FILE_PART_HEAD: &str =
        "--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n";

    /// The names in `dir`, once they are `expected` (removals run in a task), or as they are
    /// after a generous wait.
    async fn names_once(dir: &Path, expected: &[&str]) -> Vec<String> {
        let mut names = Vec::new();
        for _ in 0..250 {
            names = std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            if names == expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        names
    }

    #[tokio::test]
    async fn a_pending_file_stays_only_when_kept() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = UploadDir::open(dir.path()).await.unwrap();
        let mut stored = Vec::new();
        for content in ["kept", "dropped"] {
            let (send, parts) = tokio::sync::mpsc::channel(1);
            let body = format!("{FILE_PART_HEAD}{content}\r\n--X--\r\n");
            send.send(Ok(body.into())).await.unwrap();
            drop(send);
            let mut form = Multipart::from_request(form_request(parts), &())
                .await
                .unwrap();
            let field = form.next_field().await.unwrap().unwrap();
            stored.push(uploads.store(field, 1024).await.unwrap());
        }
        let dropped = stored.pop().unwrap();
        let kept = stored.pop().unwrap().keep();
        assert_eq!((kept.size, kept.original_name.as_str()), (4, "a.txt"));
        drop(dropped);
        assert_eq!(
            names_once(dir.path(), &[kept.id.as_str()]).await,
            [kept.id.as_str()]
        );
        assert_eq!(std::fs::read(dir.path().join(&kept.id)).unwrap(), b"kept");
    }

    #[tokio::test]
    async fn a_file_whose_request_goes_away_mid_way_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (send, parts) = tokio::sync::mpsc::channel(1);
        let request = form_request(parts);
        let root = dir.path().to_owned();
        let upload = tokio::spawn(async move {
            let uploads = UploadDir::open(root).await.unwrap();
            let mut form = Multipart::from_request(request, &()).await.unwrap();
            let field = form.next_field().await.unwrap().unwrap();
            uploads.store(field, 1 << 20).await.map(PendingFile::keep)
        });
        let first = format!("{FILE_PART_HEAD}{}", "a".repeat(4096));
        send.send(Ok(first.into())).await.unwrap();
        // The body then stalls; once the first bytes are on disk, the request goes away.
        let mut written = false;
        for _ in 0..250 {
            written = std::fs::read_dir(dir.path())
                .unwrap()
                .any(|entry| entry.unwrap().metadata().is_ok_and(|meta| meta.len() > 0));
            if written {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(written, "the upload started writing");
        upload.abort();
        assert!(upload.await.unwrap_err().is_cancelled());
        assert_eq!(names_once(dir.path(), &[]).await, Vec::<String>::new());
        drop(send);
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
