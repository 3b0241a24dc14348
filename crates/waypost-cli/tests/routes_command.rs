//! `waypost routes` run as a user would: the built binary on real folders.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn waypost(args: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_waypost"));
    command.arg("routes").args(args);
    command.output().expect("the waypost binary runs")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../waypost-build/tests/fixtures")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

const SAMPLE_TABLE: &str = "\
METHODS           PATH                            FILE                                      SETTINGS
GET               /                               src/app/route.rs                          body limit 1 MiB; max duration none; rate limit default; auth none; middleware 1 (src/app/middleware.rs)
GET               /api/docs/{*slug}               src/app/api/docs/[...slug]/route.rs       body limit 1 MiB; max duration none; rate limit default; auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
GET, HEAD         /api/files, /api/files/{*path}  src/app/api/files/[[...path]]/route.rs    body limit 1 MiB; max duration none; rate limit default; auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
GET               /api/hello                      src/app/api/hello/route.rs                body limit 1 MiB; max duration none; rate limit default; auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
GET, POST         /api/posts                      src/app/api/posts/route.rs                body limit 8 MiB; max duration 30s; csrf on; rate limit RateLimit::per_minute(10); auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
GET, PUT, DELETE  /api/posts/{id}                 src/app/api/posts/[id]/route.rs           body limit 1 MiB; max duration none; csrf on; rate limit default; auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
GET               /api/posts/{id}/comments        src/app/api/posts/[id]/comments/route.rs  body limit 1 MiB; max duration none; rate limit default; auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
GET               /api/stats                      src/app/(admin)/api/stats/route.rs        body limit 1 MiB; max duration none; rate limit off; auth none; middleware 2 (src/app/middleware.rs, src/app/(admin)/middleware.rs)
GET, OPTIONS      /api/type                       src/app/api/type/route.rs                 body limit 1 MiB; max duration none; rate limit default; auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
GET, PATCH        /api/user-profile               src/app/api/user-profile/route.rs         body limit 1 MiB; max duration none; csrf on; rate limit default; auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
POST              /api/webhooks/stripe            src/app/api/webhooks/stripe/route.rs      body limit 1 MiB; max duration none; csrf off; rate limit RateLimit::per_second(5) per IP; auth none; middleware 2 (src/app/middleware.rs, src/app/api/middleware.rs)
";

#[test]
fn lists_every_route_with_methods_file_and_effective_settings() {
    let output = waypost(&[&fixtures().join("sample")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), SAMPLE_TABLE);
    assert_eq!(stderr(&output), "");
}

#[test]
fn accepts_the_src_app_folder_itself() {
    let output = waypost(&[&fixtures().join("sample/src/app")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), SAMPLE_TABLE);
}

#[test]
fn defaults_to_the_current_folder() {
    let output = Command::new(env!("CARGO_BIN_EXE_waypost"))
        .arg("routes")
        .current_dir(fixtures().join("sample"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), SAMPLE_TABLE);
}

#[test]
fn bad_tree_exits_1_with_every_error_named() {
    let output = waypost(&[&fixtures().join("errors/many_errors")]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "\
error: `src/app/api/[...rest]` and `src/app/api/[id]` are dynamic folders at the same level, which no request can tell apart; merge them into one (one name, one kind: `[x]`, `[...x]` or `[[...x]]`)
error: `src/app/api/[...rest]` and `src/app/api/[slug]` are dynamic folders at the same level, which no request can tell apart; merge them into one (one name, one kind: `[x]`, `[...x]` or `[[...x]]`)
error: `src/app/api/[...rest]/more/route.rs` is below the catch-all folder `src/app/api/[...rest]`; a catch-all must be the last segment
error: handler `get` in `src/app/api/[id]/route.rs` is not async; write `pub async fn get`
error: handler `get` in `src/app/api/[id]/route.rs` is not public; write `pub async fn get`
error: `src/app/api/[slug]/route.rs` does not parse: a bracket, brace, parenthesis or literal is not closed at 1:17
"
    );
}

#[test]
fn duplicate_url_exits_1_naming_both_files() {
    let output = waypost(&[&fixtures().join("errors/duplicate_url")]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: `src/app/(admin)/api/stats/route.rs` and `src/app/(public)/api/stats/route.rs` both serve `/api/stats`; keep one route file per URL\n"
    );
}

#[test]
fn crate_without_src_app_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"empty\"\n",
    )
    .unwrap();
    let output = waypost(&[dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: `src/app` is not a folder; routes live in `src/app`\n"
    );
}

#[test]
fn config_the_scanner_cannot_evaluate_is_shown_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let route = dir.path().join("src/app/api/upload");
    fs::create_dir_all(&route).unwrap();
    fs::write(
        route.join("route.rs"),
        "pub const CONFIG: RouteConfig = crate::UPLOAD_CONFIG;\n\
         pub async fn post() {}\n",
    )
    .unwrap();
    let output = waypost(&[dir.path()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "\
METHODS  PATH         FILE                         SETTINGS
POST     /api/upload  src/app/api/upload/route.rs  config crate::UPLOAD_CONFIG; auth none; middleware none
"
    );
}
