//! Uploads: multipart bodies streamed to disk within limits, under names the server makes.
//!
//! A file part is written chunk by chunk to a temporary file in the upload folder and renamed
//! into place only when it is complete and within its limit, so a reader never sees half a
//! file and a refused upload leaves nothing behind. The stored file is then a [`PendingFile`]:
//! removed again when dropped — the request failed later, or went away — until the caller
//! keeps it. The client's filename is kept as metadata only: it never takes part in a path
//! (`../../etc/passwd` is stored like any other name). Temporary files a killed process left
//! behind are removed when the folder is next opened.
//!
//! When a part is over its limit the rest of the request body is read and discarded (it is
//! already bounded by the route's body limit) before the 413 is sent, so the client finishes
//! sending and reads the answer instead of a connection reset. A route that refuses a declared
//! `Content-Length` far past its limit before reading a byte (the showcase's does, with
//! [`crate::extract::declared_length`]) reads nothing: a client that sends its body without
//! waiting for `100 Continue` may then see the connection close under its upload instead of
//! the 413 — the price of not reading gigabytes to refuse them.

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

/// 413 past the route's limit; the answer to any body that could not be read (408 `timeout`
/// when it stopped arriving, 400 when it broke off), as for every other body; else 400 for a
/// malformed form.
fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::payload_too_large();
    }
    let read_failed = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<multer::Error>())
        .is_some_and(|source| matches!(source, multer::Error::StreamReadFailed(_)));
    if read_failed {
        crate::extract::body_read_failure(&error).with_source(error)
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
/// its limit, the client disconnecting — leaves nothing behind. When the upload is accepted,
/// [`PendingFile::keep_if`] writes its record and keeps the file (or removes it when the record
/// fails) in one step a departing client cannot split; [`PendingFile::keep`] keeps it outright,
/// and [`PendingFile::discard`] removes it before answering.
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

    /// Runs `record` — what names the file, usually a database row — and keeps the file when it
    /// succeeds, removes it when it fails. Both run in a task of their own that the request
    /// waits for and a stopping server finishes: a request that goes away while its record is
    /// being written leaves neither a file without its record nor a record naming a removed
    /// file.
    ///
    /// # Errors
    /// `record`'s error, once the file is removed.
    ///
    /// # Panics
    /// When `record` panics (the file's removal is started as the task unwinds).
    pub async fn keep_if<T, E, Fut>(self, record: impl FnOnce(StoredFile) -> Fut) -> Result<T, E>
    where
        Fut: std::future::Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let recorded = record(self.file.clone());
        let work = async move {
            let outcome = recorded.await;
            match outcome {
                Ok(_) => self.on_disk.disarm(),
                Err(_) => self.on_disk.remove().await,
            }
            outcome
        };
        // A panic unwinds the task and drops the pending file, which starts its removal.
        crate::leftover_work::run_apart(work, false)
            .await
            .unwrap_or_else(|| panic!("the runtime stopped while an upload's record was written"))
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

/// How temporary files (uploads still being written) are named: `.partial-<id>`.
const PARTIAL_PREFIX: &str = ".partial-";

/// How old a temporary file is before [`UploadDir::open`] takes it for abandoned: an upload
/// still being written touches its file with every chunk.
const ABANDONED_PARTIAL_AGE: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// The folder uploads are stored in.
#[derive(Clone, Debug)]
pub struct UploadDir {
    root: PathBuf,
}

impl UploadDir {
    /// The folder at `root`, created when missing. Temporary files an earlier process left
    /// behind (it was killed mid-upload, or stopped before removing one) are removed once they
    /// are an hour old: younger ones may belong to another server sharing the folder.
    ///
    /// # Errors
    /// The folder cannot be created or listed.
    pub async fn open(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await?;
        let folder = Self { root };
        let removed = folder
            .remove_partials_older_than(ABANDONED_PARTIAL_AGE)
            .await?;
        if removed > 0 {
            tracing::info!(removed, folder = %folder.root.display(), "removed abandoned partial uploads");
        }
        Ok(folder)
    }

    /// Removes the temporary files whose last write is older than `age`; how many.
    async fn remove_partials_older_than(&self, age: std::time::Duration) -> std::io::Result<usize> {
        let mut removed = 0;
        let mut entries = tokio::fs::read_dir(&self.root).await?;
        while let Some(entry) = entries.next_entry().await? {
            if !entry
                .file_name()
                .to_string_lossy()
                .starts_with(PARTIAL_PREFIX)
            {
                continue;
            }
            let abandoned = entry
                .metadata()
                .await
                .and_then(|metadata| metadata.modified())
                .is_ok_and(|written| written.elapsed().is_ok_and(|since| since >= age));
            if abandoned && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
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
        let original_name = kept_name(field.file_name().unwrap_or_default());
        let content_type = field
            .content_type()
            .filter(|value| value.parse::<HeaderValue>().is_ok() && value.contains('/'))
            .unwrap_or("application/octet-stream")
            .to_owned();
        let temporary = RemovedOnDrop::new(self.root.join(format!("{PARTIAL_PREFIX}{id}")));
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

/// A file sent as an attachment, streamed from disk (never read into memory whole), with
/// `nosniff` and a sandboxing `Content-Security-Policy`.
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
                (
                    // The stored type is the uploader's word: should a browser ever show the
                    // file in place (a proxy that drops the disposition), an HTML or SVG one
                    // runs no script, loads nothing and is an origin of its own.
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'; sandbox"),
                ),
            ],
            body,
        )
            .into_response()
    }
}

/// The client's filename as it is kept: without control characters or bidirectional
/// controls, at most 255 characters; `upload` when nothing is left.
fn kept_name(sent: &str) -> String {
    let kept: String = sent
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .take(255)
        .collect();
    if kept.is_empty() {
        "upload".to_owned()
    } else {
        kept
    }
}

/// Whether `c` reorders the text around it (Unicode's bidirectional marks, embeddings,
/// overrides and isolates): kept in a file name, `invoice\u{202E}fdp.exe` would show as
/// `invoiceexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
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
        let encoded = crate::proxy::percent_encode_component(name);
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
        // `*` and `'` are no RFC 8187 attr-chars; a space is `%20`.
        assert_eq!(
            content_disposition("a*b 'c'.txt"),
            "attachment; filename=\"a*b 'c'.txt\""
        );
        assert!(content_disposition("é*'.txt").ends_with("filename*=UTF-8''%C3%A9%2A%27.txt"));
    }

    #[test]
    fn bidirectional_controls_are_no_part_of_a_file_name() {
        assert_eq!(
            kept_name("invoice\u{202E}fdp.exe\u{2066}"),
            "invoicefdp.exe"
        );
        assert_eq!(kept_name("a\r\nb\u{0}.txt"), "ab.txt");
        assert_eq!(kept_name(&"é".repeat(300)).chars().count(), 255);
        assert_eq!(kept_name("שלום.txt"), "שלום.txt");
        assert_eq!(kept_name("\u{202E}\u{202E}"), "upload");
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

    /// The names in `dir`, sorted.
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The names in `dir`, once they are `expected` (removals run in a task), or as they are
    /// after a generous wait.
    async fn names_once(dir: &Path, expected: &[&str]) -> Vec<String> {
        let mut names = Vec::new();
        for _ in 0..250 {
            names = names_in(dir);
            if names == expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        names
    }

    /// A pending file holding `content`, stored in `uploads`.
    async fn pending(uploads: &UploadDir, content: &str) -> PendingFile {
        let (send, parts) = tokio::sync::mpsc::channel(1);
        let body = format!("{FILE_PART_HEAD}{content}\r\n--X--\r\n");
        send.send(Ok(body.into())).await.unwrap();
        drop(send);
        let mut form = Multipart::from_request(form_request(parts), &())
            .await
            .unwrap();
        let field = form.next_field().await.unwrap().unwrap();
        uploads.store(field, 1024).await.unwrap()
    }

    #[tokio::test]
    async fn a_pending_file_stays_only_when_kept() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = UploadDir::open(dir.path()).await.unwrap();
        let kept = pending(&uploads, "kept").await.keep();
        let dropped = pending(&uploads, "dropped").await;
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
    async fn keep_if_keeps_a_recorded_file_and_removes_one_whose_record_failed() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = UploadDir::open(dir.path()).await.unwrap();
        let file = pending(&uploads, "recorded").await;
        let id = file.id.clone();
        let recorded = file
            .keep_if(|stored| async move { Ok::<_, ()>(stored.id) })
            .await;
        assert_eq!(recorded, Ok(id.clone()));
        let file = pending(&uploads, "refused").await;
        let refused = file.keep_if(|_| async { Err::<(), _>("no room") }).await;
        assert_eq!(refused, Err("no room"));
        // The refused file is gone when keep_if returns, not some time after.
        assert_eq!(names_in(dir.path()), [id]);
    }

    #[tokio::test]
    async fn keep_if_finishes_when_its_request_goes_away_during_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = UploadDir::open(dir.path()).await.unwrap();
        let file = pending(&uploads, "recorded late").await;
        let id = file.id.clone();
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let (record_done, record_written) = tokio::sync::oneshot::channel();
        let request = tokio::spawn(file.keep_if(move |stored| async move {
            let _ = finished.await;
            let _ = record_done.send(stored.id);
            Ok::<_, ()>(())
        }));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // The client goes away while the record is being written; the record then lands.
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        finish.send(()).unwrap();
        assert_eq!(record_written.await.unwrap(), id);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            std::fs::read(dir.path().join(&id)).unwrap(),
            b"recorded late",
            "the recorded file was kept"
        );
    }

    #[tokio::test]
    async fn opening_the_folder_removes_partial_files_abandoned_an_hour_ago() {
        let dir = tempfile::tempdir().unwrap();
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for name in [
            ".partial-old",
            ".partial-new",
            "0123456789abcdef0123456789abcdef",
        ] {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            if name != ".partial-new" {
                file.set_modified(two_hours_ago).unwrap();
            }
        }
        UploadDir::open(dir.path()).await.unwrap();
        // A stored file is never touched, however old; a young partial may be another
        // server's upload in progress.
        assert_eq!(
            names_in(dir.path()),
            [".partial-new", "0123456789abcdef0123456789abcdef"]
        );
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
