//! `waypost new` run as a user would: the built binary writes an app, and that app builds and
//! passes its own tests with no edit.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn waypost(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_waypost"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the waypost binary runs")
}

/// The cargo that runs these tests.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Shared by every scaffold the tests build, so only the first build is a full one.
fn scaffold_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the tmp dir is inside the target dir")
        .join("scaffold-target")
}

/// This checkout's root, which a new app depends on by default.
fn checkout() -> PathBuf {
    fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                files.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn new_app_builds_and_passes_its_own_tests() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("demo");
    let output = waypost(
        &["new", "demo", "--path", app.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).starts_with("Created `demo` in "),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        files_under(&app),
        [
            ".gitignore",
            "Cargo.lock",
            "Cargo.toml",
            "README.md",
            "build.rs",
            "src/app/api/hello/[name]/route.rs",
            "src/app/api/hello/route.rs",
            "src/app/api/openapi.json/route.rs",
            "src/app/docs/route.rs",
            "src/lib.rs",
            "src/main.rs",
            "tests/hello.rs",
        ]
    );
    let manifest = fs::read_to_string(app.join("Cargo.toml")).unwrap();
    let waypost_dependency = format!(
        "waypost = {{ path = \"{}\" }}",
        checkout().join("crates/waypost").display()
    );
    assert!(manifest.contains(&waypost_dependency), "{manifest}");

    let test = cargo()
        .arg("test")
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", scaffold_target())
        .output()
        .expect("cargo runs");
    let (stdout, stderr) = (text(&test.stdout), text(&test.stderr));
    assert!(test.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test result: ok. 4 passed; 0 failed"),
        "{stdout}"
    );

    // Without the `openapi` feature the generated code leaves its OpenAPI items out, so the
    // same app, once it no longer serves the document, builds without `schemars`.
    fs::remove_dir_all(app.join("src/app/api/openapi.json")).unwrap();
    fs::remove_dir_all(app.join("src/app/docs")).unwrap();
    for (file, from) in [
        ("src/lib.rs", "\n/// The app's OpenAPI document"),
        (
            "tests/hello.rs",
            "\n#[tokio::test]\nasync fn every_route_is_in_the_openapi_document",
        ),
    ] {
        let path = app.join(file);
        let contents = fs::read_to_string(&path).unwrap();
        let kept = &contents[..contents.find(from).expect(from)];
        fs::write(&path, kept).unwrap();
    }
    let lean = manifest.replace(
        &waypost_dependency,
        &waypost_dependency.replace(
            " }",
            ", default-features = false, features = [\"sqlite\"] }",
        ),
    );
    assert_ne!(lean, manifest);
    fs::write(app.join("Cargo.toml"), lean).unwrap();
    let test = cargo()
        .args(["test", "--no-run"])
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", scaffold_target())
        .output()
        .expect("cargo runs");
    assert!(test.status.success(), "{}", text(&test.stderr));
    let tree = cargo()
        .args(["tree", "--offline", "--edges=normal", "--invert=schemars"])
        .current_dir(&app)
        .output()
        .expect("cargo runs");
    assert!(
        !tree.status.success() && text(&tree.stderr).contains("did not match any packages"),
        "schemars is no dependency: {}{}",
        text(&tree.stdout),
        text(&tree.stderr)
    );
}

#[test]
fn new_refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("taken");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("notes.txt"), "mine").unwrap();
    let output = waypost(
        &["new", "demo", "--path", app.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "error: `{}` already exists and is not empty; choose another --path\n",
            app.display()
        )
    );
    assert_eq!(files_under(&app), ["notes.txt"]);
    assert_eq!(fs::read_to_string(app.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn new_writes_into_an_empty_folder_named_after_the_app_by_default() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("my-api")).unwrap();
    let output = waypost(&["new", "my-api"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let main = fs::read_to_string(dir.path().join("my-api/src/main.rs")).unwrap();
    assert!(main.contains("use my_api::{router, AppState};"), "{main}");
}

#[test]
fn new_takes_a_path_as_cargo_new_does_and_names_the_app_after_its_last_part() {
    let dir = tempfile::tempdir().unwrap();
    let output = waypost(&["new", "apps/billing-api"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).starts_with("Created `billing-api` in "),
        "{}",
        text(&output.stdout)
    );
    let main = fs::read_to_string(dir.path().join("apps/billing-api/src/main.rs")).unwrap();
    assert!(
        main.contains("use billing_api::{router, AppState};"),
        "{main}"
    );
    // The last part must still be a crate name.
    let output = waypost(&["new", "apps/my app"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(!dir.path().join("apps/my app").exists());
}

#[test]
fn new_refuses_a_name_that_is_not_a_crate_name_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = waypost(&["new", "my app"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "error: `my app` cannot be an app name: ` ` is not allowed; use letters, digits, `-` and `_`\n"
    );
    assert!(files_under(dir.path()).is_empty());
}

#[test]
fn new_refuses_a_waypost_path_that_is_not_a_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let output = waypost(
        &[
            "new",
            "demo",
            "--waypost-path",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("is not a Waypost checkout"),
        "{}",
        text(&output.stderr)
    );
    assert!(!dir.path().join("demo").exists());
}
