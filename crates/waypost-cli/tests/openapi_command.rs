//! `waypost openapi` run as a user would: the built binary writing the sample document and
//! checking copies of it.

use std::{fs, process::Output};

mod common;

use serde_json::Value;

fn waypost(args: &[&str]) -> Output {
    common::waypost("openapi", args)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn the_document_is_written_sorted_to_stdout_or_to_a_file() {
    let spec = common::sample_document();
    let spec = spec.to_str().unwrap();
    let printed = waypost(&["--spec", spec]);
    assert!(printed.status.success(), "{printed:?}");
    let document = text(printed.stdout);
    assert!(
        document.starts_with("{\n  \"components\": {\n"),
        "{document}"
    );
    assert!(document.ends_with("}\n"));
    // The same document as served, only laid out differently.
    let served: Value =
        serde_json::from_str(&fs::read_to_string(common::sample_document()).unwrap()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&document).unwrap(), served);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("openapi.json");
    let written = waypost(&["--spec", spec, "-o", out.to_str().unwrap()]);
    assert!(written.status.success(), "{written:?}");
    assert!(written.stdout.is_empty());
    assert_eq!(fs::read_to_string(&out).unwrap(), document);
}

#[test]
fn an_up_to_date_copy_passes_the_check() {
    let spec = common::sample_document();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("openapi.json");
    // The same document, laid out otherwise: compact, and the top-level keys in reverse order.
    let served = fs::read_to_string(&spec).unwrap();
    let Value::Object(map) = serde_json::from_str(&served).unwrap() else {
        panic!("the sample is an object");
    };
    let reordered: Vec<String> = map
        .iter()
        .rev()
        .map(|(key, value)| format!("{}:{value}", Value::from(key.as_str())))
        .collect();
    let compact = format!("{{{}}}", reordered.join(","));
    assert_ne!(compact, served);
    fs::write(&copy, &compact).unwrap();
    let output = waypost(&[
        "--spec",
        spec.to_str().unwrap(),
        "--check",
        copy.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert!(text(output.stdout).contains("is up to date"));
    // Checking never writes.
    assert_eq!(fs::read_to_string(&copy).unwrap(), compact);
}

#[test]
fn an_outdated_copy_fails_the_check_naming_what_changed() {
    let spec = common::sample_document();
    let mut old: Value = serde_json::from_str(&fs::read_to_string(&spec).unwrap()).unwrap();
    // The copy was taken before DELETE /api/notes/{id} existed and while Note had other fields.
    old["paths"]["/api/notes/{id}"]
        .as_object_mut()
        .unwrap()
        .remove("delete");
    old["components"]["schemas"]["Note"] = serde_json::json!({"type": "object"});
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("openapi.json");
    let before = serde_json::to_string(&old).unwrap();
    fs::write(&copy, &before).unwrap();

    let output = waypost(&[
        "--spec",
        spec.to_str().unwrap(),
        "--check",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = text(output.stderr);
    assert!(stderr.contains("is out of date"), "{stderr}");
    assert!(stderr.contains("(2 differences)"), "{stderr}");
    assert!(
        stderr.contains("\n  DELETE /api/notes/{id}: added\n"),
        "{stderr}"
    );
    assert!(stderr.contains("\n  schema Note: changed\n"), "{stderr}");
    assert!(stderr.contains("waypost openapi --spec"), "{stderr}");
    assert_eq!(fs::read_to_string(&copy).unwrap(), before);
}

#[test]
fn json_that_is_no_openapi_document_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("package.json");
    fs::write(&other, r#"{"name": "web", "paths": {}}"#).unwrap();
    let output = waypost(&["--spec", other.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(output.stderr);
    assert!(stderr.contains("is not an OpenAPI 3 document"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn writing_and_checking_at_once_is_refused() {
    let output = waypost(&["--check", "a.json", "-o", "b.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(output.stderr).contains("cannot be used with"));
}
