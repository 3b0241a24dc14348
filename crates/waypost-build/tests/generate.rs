//! Snapshots of what the scanner and generator make of the sample tree in
//! `tests/fixtures/sample`, which uses every part of the folder grammar.

use std::path::{Path, PathBuf};

use waypost_build::{Builder, Method};

fn sample_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample")
}

/// Absolute paths differ per checkout; the snapshots show them from a placeholder.
fn without_root(text: &str) -> String {
    text.replace(sample_root().to_string_lossy().as_ref(), "[FIXTURE]")
}

#[test]
fn generated_code_mounts_every_file_and_registers_every_handler() {
    let code = Builder::new()
        .crate_root(sample_root())
        .state_type("crate::AppState")
        .generate()
        .unwrap();
    insta::assert_snapshot!(without_root(&code));
}

#[test]
fn generated_code_parses_as_rust() {
    let code = Builder::new().crate_root(sample_root()).generate().unwrap();
    syn::parse_file(&code).unwrap();
}

#[test]
fn route_table_lists_routes_sorted_with_signatures_and_config() {
    let table = Builder::new().crate_root(sample_root()).scan().unwrap();
    insta::assert_snapshot!(without_root(&format!("{table:#?}")));
}

#[test]
fn route_table_sorts_static_before_param_before_catch_all() {
    let table = Builder::new().crate_root(sample_root()).scan().unwrap();
    let patterns: Vec<&str> = table
        .routes
        .iter()
        .map(|route| route.pattern.as_str())
        .collect();
    assert_eq!(
        patterns,
        [
            "/",
            "/api/docs/{*slug}",
            "/api/files/{*path}",
            "/api/hello",
            "/api/posts",
            "/api/posts/{id}",
            "/api/posts/{id}/comments",
            "/api/stats",
            "/api/type",
            "/api/user-profile",
            "/api/webhooks/stripe",
        ]
    );
}

#[test]
fn handlers_are_listed_in_method_order_whatever_the_file_order() {
    let table = Builder::new().crate_root(sample_root()).scan().unwrap();
    let post = &table
        .routes
        .iter()
        .find(|r| r.pattern == "/api/posts/{id}")
        .unwrap();
    let methods: Vec<Method> = post.handlers.iter().map(|handler| handler.method).collect();
    assert_eq!(methods, [Method::Get, Method::Put, Method::Delete]);
}

#[test]
fn middleware_wraps_routes_below_its_folder_outermost_first() {
    let table = Builder::new().crate_root(sample_root()).scan().unwrap();
    let files = |pattern: &str| -> Vec<String> {
        let route = table.routes.iter().find(|r| r.pattern == pattern).unwrap();
        route.middleware.iter().map(|m| m.file.clone()).collect()
    };
    assert_eq!(
        files("/api/hello"),
        ["src/app/middleware.rs", "src/app/api/middleware.rs"]
    );
    assert_eq!(
        files("/api/stats"),
        ["src/app/middleware.rs", "src/app/(admin)/middleware.rs"]
    );
    assert_eq!(files("/"), ["src/app/middleware.rs"]);
}

#[test]
fn private_folders_are_not_scanned() {
    let table = Builder::new().crate_root(sample_root()).scan().unwrap();
    assert!(table
        .routes
        .iter()
        .all(|route| !route.file.contains("_internal")));
}

#[test]
fn state_type_that_is_not_a_type_is_an_error() {
    let errors = Builder::new()
        .crate_root(sample_root())
        .state_type("crate::")
        .generate()
        .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "error: state type `crate::` is not a Rust type: unexpected end of input, expected identifier"
    );
}
