//! The contract's uploads and downloads: exact bytes back, limits that store nothing, names that
//! never become paths, and only the uploader or an admin may read a file.

mod common;

use common::{expect_error, tree, Account, Showcase};
use reqwest::{
    multipart::{Form, Part},
    Method,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `len` bytes that do not compress or repeat in any useful way (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

fn file_form(bytes: Vec<u8>, name: &str, mime: &str) -> Form {
    Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(mime)
            .unwrap(),
    )
}

async fn upload(app: &Showcase, account: &Account, form: Form) -> reqwest::Response {
    app.as_user(account, Method::POST, "/api/upload")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn upload_ok(app: &Showcase, account: &Account, bytes: Vec<u8>, name: &str) -> Value {
    let response = upload(app, account, file_form(bytes, name, "application/pdf")).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// The names in the upload folder (the folder itself exists from start-up on).
fn stored_names(app: &Showcase) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&app.upload_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn upload_answers_201_and_download_returns_the_identical_bytes() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let bytes = noise(300 * 1024 + 7);
    let response = upload(
        &app,
        &alice,
        file_form(bytes.clone(), "report.pdf", "application/pdf"),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let id = body["fileId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "{body}");
    assert_eq!(body["originalName"], "report.pdf");
    assert_eq!(body["size"], bytes.len());
    assert_eq!(body["type"], "application/pdf");
    let uploaded_at = time::OffsetDateTime::parse(
        body["uploadedAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(uploaded_at.offset(), time::UtcOffset::UTC);

    // On disk: exactly one file, named by the server's id, holding the bytes.
    assert_eq!(stored_names(&app), vec![id.clone()]);
    assert_eq!(std::fs::read(app.upload_dir.join(&id)).unwrap(), bytes);
    assert_eq!(app.count_rows("files").await, 1);

    let response = app
        .as_user(&alice, Method::GET, &format!("/api/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"report.pdf\""
    );
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    let downloaded = response.bytes().await.unwrap();
    assert!(
        downloaded == bytes,
        "the downloaded bytes differ from the upload"
    );
}

#[tokio::test]
async fn a_file_over_upload_max_bytes_is_413_and_nothing_is_stored() {
    let app = Showcase::start_with(&[("UPLOAD_MAX_BYTES", "1000")]).await;
    let alice = app.account("alice@example.com").await;
    let before = tree(app.dir());
    assert!(stored_names(&app).is_empty());

    let body = expect_error(
        upload(
            &app,
            &alice,
            file_form(noise(5000), "big.bin", "application/octet-stream"),
        )
        .await,
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(body["details"]["maxBytes"], 1000, "{body}");
    assert!(
        stored_names(&app).is_empty(),
        "no file and no .partial-* left"
    );
    assert_eq!(app.count_rows("files").await, 0);
    let after: Vec<_> = tree(app.dir())
        .into_iter()
        .filter(|path| !path.to_string_lossy().starts_with("showcase.db"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|path| !path.to_string_lossy().starts_with("showcase.db"))
        .collect();
    assert_eq!(before, after);

    // Exactly the limit is fine, and the server kept serving after the refusal.
    let stored = upload_ok(&app, &alice, noise(1000), "exact.bin").await;
    assert_eq!(stored["size"], 1000);
    assert_eq!(stored_names(&app).len(), 1);
    assert_eq!(app.count_rows("files").await, 1);
}

#[tokio::test]
async fn a_declared_length_past_the_file_limit_is_refused_before_the_body_is_read() {
    let app = Showcase::start_with(&[("UPLOAD_MAX_BYTES", "1000")]).await;
    let alice = app.account("alice@example.com").await;
    let boundary = "waypost-test-boundary";
    let mut body = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         content-type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend(noise(3 * 1024 * 1024));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let response = app
        .as_user(&alice, Method::POST, "/api/upload")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 413, "payload_too_large").await;
    assert_eq!(body["details"]["maxBytes"], 1000, "{body}");
    assert!(stored_names(&app).is_empty());
    assert_eq!(app.count_rows("files").await, 0);

    // The answer does not wait for the body: a client that declared 3 MiB and sent the first
    // bytes only gets its 413 at once (not the body-read timeout's answer, much later).
    let address = app.url("").trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
         content-type: multipart/form-data; boundary={boundary}\r\n\
         content-length: {}\r\n\r\n--{boundary}\r\n",
        alice.token,
        3 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), socket.read(&mut answer))
        .await
        .expect("answered without the rest of the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    drop(socket);
    assert!(stored_names(&app).is_empty());

    // The server keeps serving, and a file within the limit still fits.
    let stored = upload_ok(&app, &alice, noise(1000), "small.bin").await;
    assert_eq!(stored["size"], 1000);
}

#[tokio::test]
async fn a_file_of_exactly_the_largest_allowed_size_fits() {
    const LARGEST: usize = showcase::config::UPLOAD_MAX_BYTES_CEILING as usize;
    let app = Showcase::start_with(&[("UPLOAD_MAX_BYTES", &LARGEST.to_string())]).await;
    let alice = app.account("alice@example.com").await;
    // With a form field beside it, as a browser form sends.
    let form = file_form(noise(LARGEST), "largest.bin", "application/octet-stream")
        .text("description", "the largest file there may be");
    let response = upload(&app, &alice, form).await;
    assert_eq!(response.status(), 201);
    let stored: Value = response.json().await.unwrap();
    assert_eq!(stored["size"], LARGEST);
    assert_eq!(app.count_rows("files").await, 1);
    // A byte more is over it.
    let response = upload(
        &app,
        &alice,
        file_form(noise(LARGEST + 1), "over.bin", "application/octet-stream"),
    )
    .await;
    expect_error(response, 413, "payload_too_large").await;
    assert_eq!(app.count_rows("files").await, 1);
}

#[tokio::test]
async fn six_mib_over_the_default_limit_gets_a_clean_413_not_a_reset() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let response = upload(
        &app,
        &alice,
        file_form(
            noise(6 * 1024 * 1024),
            "huge.bin",
            "application/octet-stream",
        ),
    )
    .await;
    let body = expect_error(response, 413, "payload_too_large").await;
    assert_eq!(body["details"]["maxBytes"], 5 * 1024 * 1024, "{body}");
    assert!(stored_names(&app).is_empty());
    assert_eq!(app.count_rows("files").await, 0);
}

#[tokio::test]
async fn a_traversal_filename_is_stored_inside_the_upload_folder_under_the_server_id() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let before = tree(app.dir());
    let bytes = noise(2048);
    let body = upload_ok(&app, &alice, bytes.clone(), "../../etc/passwd").await;
    let id = body["fileId"].as_str().unwrap();
    assert_eq!(body["originalName"], "../../etc/passwd", "kept as metadata");

    // The bytes are inside UPLOAD_DIR under the id, and nothing else appeared anywhere in the
    // temp folder (`<tmp>/data/uploads/../../etc/passwd` would be `<tmp>/etc/passwd`).
    assert_eq!(stored_names(&app), vec![id.to_owned()]);
    assert_eq!(std::fs::read(app.upload_dir.join(id)).unwrap(), bytes);
    assert!(!app.dir().join("etc").exists());
    let created: Vec<_> = tree(app.dir())
        .into_iter()
        .filter(|path| !before.contains(path))
        .filter(|path| !path.to_string_lossy().starts_with("showcase.db"))
        .collect();
    assert_eq!(
        created,
        vec![std::path::Path::new("data/uploads").join(id)],
        "only the stored file is new"
    );

    let response = app
        .as_user(&alice, Method::GET, &format!("/api/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"../../etc/passwd\""
    );
    assert!(response.bytes().await.unwrap() == bytes);
}

#[tokio::test]
async fn another_users_file_is_403_and_without_auth_401_but_an_admin_may_download() {
    let app = Showcase::start_with(&[("ADMIN_EMAILS", "root@example.com")]).await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let root = app.account("root@example.com").await;
    assert_eq!(root.user["role"], "admin");
    let bytes = noise(4096);
    let body = upload_ok(&app, &alice, bytes.clone(), "alice.pdf").await;
    let path = format!("/api/files/{}", body["fileId"].as_str().unwrap());

    expect_error(
        app.as_user(&bob, Method::GET, &path).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    expect_error(app.get(&path).await, 401, "unauthorized").await;

    let response = app.as_user(&root, Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"alice.pdf\""
    );
    assert!(response.bytes().await.unwrap() == bytes);
    // Reading changed nothing.
    assert_eq!(app.count_rows("files").await, 1);
    assert_eq!(stored_names(&app).len(), 1);
}

#[tokio::test]
async fn an_upload_without_a_file_part_is_400_and_stores_nothing() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    // A body with no part at all is not even a complete multipart stream.
    expect_error(upload(&app, &alice, Form::new()).await, 400, "bad_request").await;
    let form = Form::new().text("note", "no file here").part(
        "attachment",
        Part::bytes(noise(100)).file_name("wrong-part.bin"),
    );
    let body = expect_error(upload(&app, &alice, form).await, 400, "validation_failed").await;
    assert_eq!(body["details"]["file"][0], "is required", "{body}");
    // A plain value named `file` (no filename) is no file either.
    let form = Form::new().text("file", "just text");
    let body = expect_error(upload(&app, &alice, form).await, 400, "validation_failed").await;
    assert!(body["details"]["file"].is_array(), "{body}");
    // Nor is what a browser sends for a file input left empty: an empty filename, no bytes.
    let form = Form::new().part("file", Part::bytes(Vec::new()).file_name(""));
    let body = expect_error(upload(&app, &alice, form).await, 400, "validation_failed").await;
    assert_eq!(body["details"]["file"][0], "is required", "{body}");
    assert!(stored_names(&app).is_empty());
    assert_eq!(app.count_rows("files").await, 0);
}

#[tokio::test]
async fn other_fields_are_skipped_but_a_second_file_is_400_and_nothing_is_kept() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    // Fields before and after the file, as forms send them: the file alone is stored.
    let bytes = noise(5000);
    let form = Form::new()
        .text("description", "quarterly report")
        .part(
            "file",
            Part::bytes(bytes.clone())
                .file_name("report.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        )
        .text("note", "x".repeat(200_000));
    let response = upload(&app, &alice, form).await;
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(created["originalName"], "report.pdf");
    assert_eq!(created["size"], 5000);
    let path = format!("/api/files/{}", created["fileId"].as_str().unwrap());
    let download = app
        .as_user(&alice, Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert!(download.bytes().await.unwrap() == bytes);
    assert_eq!(app.count_rows("files").await, 1);

    let form = file_form(noise(10), "a.pdf", "application/pdf")
        .part("file", Part::bytes(noise(10)).file_name("b.pdf"));
    let body = expect_error(upload(&app, &alice, form).await, 400, "validation_failed").await;
    assert!(body["details"]["file"].is_array(), "{body}");
    assert_eq!(
        stored_names(&app).len(),
        1,
        "the second form's first file was removed"
    );
    assert_eq!(app.count_rows("files").await, 1);
}

#[tokio::test]
async fn an_unknown_file_id_is_404() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    for id in [
        "0123456789abcdef0123456789abcdef",
        "not-an-id",
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        expect_error(
            app.as_user(&alice, Method::GET, &format!("/api/files/{id}"))
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn an_upload_without_auth_is_401_and_stores_nothing() {
    let app = Showcase::start().await;
    let response = app
        .client
        .post(app.url("/api/upload"))
        .multipart(file_form(
            noise(64 * 1024),
            "anon.bin",
            "application/octet-stream",
        ))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    assert!(stored_names(&app).is_empty());
    assert_eq!(app.count_rows("files").await, 0);
}

/// A socket on which `account` has begun uploading a declared 1 MB file and sent `sent` bytes
/// of it.
async fn upload_begun(app: &Showcase, account: &Account, sent: usize) -> tokio::net::TcpStream {
    let head = "--XBOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; \
                filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    let mut socket = tokio::net::TcpStream::connect(app.server.address())
        .await
        .unwrap();
    let request = format!(
        "POST /api/upload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=XBOUNDARY\r\nContent-Length: 1000000\r\n\r\n{head}",
        account.token
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.write_all(&noise(sent)).await.unwrap();
    socket.flush().await.unwrap();
    socket
}

/// Asserts that no file, whole or partial, and no record is left (removals run in a task:
/// given a moment).
async fn assert_nothing_stored(app: &Showcase) {
    let mut names = stored_names(app);
    for _ in 0..100 {
        if names.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        names = stored_names(app);
    }
    assert!(names.is_empty(), "left behind: {names:?}");
    assert_eq!(app.count_rows("files").await, 0);
}

#[tokio::test]
async fn an_upload_the_client_abandons_midway_leaves_no_partial_file() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let socket = upload_begun(&app, &alice, 100 * 1024).await;

    // The upload is in progress: a temporary file, not yet a stored one.
    let mut partial_seen = false;
    for _ in 0..100 {
        let names = stored_names(&app);
        if names.iter().any(|name| name.starts_with(".partial-")) {
            partial_seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        partial_seen,
        "the upload never started: {:?}",
        stored_names(&app)
    );

    drop(socket);
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn an_upload_that_stops_arriving_is_408_timeout_and_leaves_nothing() {
    let app = Showcase::start_with(&[("WAYPOST_BODY_READ_TIMEOUT", "1s")]).await;
    let alice = app.account("alice@example.com").await;
    // Nothing more is sent: the body read timeout ends the upload.
    let mut socket = upload_begun(&app, &alice, 64 * 1024).await;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        socket.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers a stalled upload")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let error: Value = serde_json::from_str(body).expect("a JSON error body");
    assert_eq!(error["code"], "timeout", "{error}");
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_cookie_session_upload_needs_a_csrf_token_and_without_one_stores_nothing() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let (csrf_cookie, csrf_token) = app.csrf().await;
    let cookie = format!("session={}; csrf={csrf_cookie}", alice.session);
    let send = |url: String, token: Option<&str>| {
        let mut request = app
            .client
            .post(url)
            .header("cookie", &cookie)
            .multipart(file_form(
                noise(4096),
                "form.bin",
                "application/octet-stream",
            ));
        if let Some(token) = token {
            request = request.header("x-csrf-token", token.to_owned());
        }
        request.send()
    };
    expect_error(
        send(app.url("/api/upload"), None).await.unwrap(),
        403,
        "csrf_invalid",
    )
    .await;
    assert!(stored_names(&app).is_empty());
    assert_eq!(app.count_rows("files").await, 0);

    let response = send(app.url("/api/upload"), Some(&csrf_token))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let query = format!("/api/upload?token={}", urlencode(&csrf_token));
    let response = send(app.url(&query), None).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(stored_names(&app).len(), 2);
    assert_eq!(app.count_rows("files").await, 2);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn a_browser_form_may_carry_its_csrf_token_as_a_multipart_field_before_or_after_the_file() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let (csrf_cookie, csrf_token) = app.csrf().await;
    let (_, other_token) = app.csrf().await;
    let cookie = format!("session={}; csrf={csrf_cookie}", alice.session);
    let send = |form: Form| {
        app.client
            .post(app.url("/api/upload"))
            .header("cookie", &cookie)
            .multipart(form)
            .send()
    };
    let file = || file_form(noise(70_000), "form.bin", "application/octet-stream");
    // A token made for another client's cookie, or none at all, stores nothing.
    let wrong = Form::new()
        .text("_csrf", other_token.clone())
        .part("file", Part::bytes(noise(10)).file_name("x.bin"));
    expect_error(send(wrong).await.unwrap(), 403, "csrf_invalid").await;
    assert_eq!(app.count_rows("files").await, 0);

    let first = Form::new()
        .text("_csrf", csrf_token.clone())
        .part("file", Part::bytes(noise(70_000)).file_name("first.bin"));
    let response = send(first).await.unwrap();
    assert_eq!(response.status(), 201);
    let stored: Value = response.json().await.unwrap();
    assert_eq!(stored["size"], 70_000, "the whole file reached the handler");
    let last = file().text("_csrf", csrf_token.clone());
    assert_eq!(send(last).await.unwrap().status(), 201);
    assert_eq!(stored_names(&app).len(), 2);
    assert_eq!(app.count_rows("files").await, 2);
}
