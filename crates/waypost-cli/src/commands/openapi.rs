//! `waypost openapi`: the app's OpenAPI document, written out for review and for other tools, or
//! compared with a committed copy so CI notices an API that changed without the copy.
//!
//! The document describes handler types that only the compiler knows, so it is taken from the
//! running app (or a file) as `document` reads it, never re-derived here. It is printed pretty,
//! object keys sorted, with a final newline: the same API always gives the same bytes, and a
//! change shows as a small diff in review.

use std::{collections::BTreeSet, fs, path::PathBuf, process::ExitCode};

use serde_json::Value;

use super::document::{self, DEFAULT_SPEC};

/// Arguments of `waypost openapi`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The document: a running app's `http://` URL on this machine, a file, or `-` for stdin.
    #[arg(long, value_name = "PATH_OR_URL", default_value = DEFAULT_SPEC)]
    spec: String,
    /// Write the document to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE", conflicts_with = "check")]
    output: Option<PathBuf>,
    /// Compare with the copy in FILE instead of writing: exit status 1, naming each operation,
    /// schema or other part that differs, when the copy is out of date.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

/// Writes or checks the document; exit status 1 with the reason on stderr when it cannot, or
/// when `--check` finds the copy out of date.
pub(crate) fn run(args: &Args) -> ExitCode {
    super::exit_status(execute(args))
}

fn execute(args: &Args) -> Result<(), String> {
    let current = document::read(&args.spec)?;
    if let Some(copy) = &args.check {
        let shown = copy.display();
        let text = fs::read_to_string(copy).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
        let committed: Value =
            serde_json::from_str(&text).map_err(|e| format!("`{shown}` is not JSON: {e}"))?;
        let changes = differences(&committed, &current);
        if changes.is_empty() {
            println!("{shown} is up to date with {}", args.spec);
            return Ok(());
        }
        return Err(format!(
            "`{shown}` is out of date with {} ({} difference{}):\n  {}\nrun `waypost openapi --spec {} -o {shown}` to update it",
            args.spec,
            changes.len(),
            if changes.len() == 1 { "" } else { "s" },
            changes.join("\n  "),
            args.spec,
        ));
    }
    let text = pretty(&current);
    super::write_output(args.output.as_deref(), &text)
}

/// The document as it is written to a file: indented, keys sorted (serde_json's map is ordered
/// by key), one final newline.
fn pretty(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// The HTTP methods an OpenAPI path item may hold operations under.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// What differs between the committed document `old` and the app's `new` one, one line each, in
/// the terms an API reviewer uses: operations (`GET /api/posts`), schemas, and any other
/// top-level part, each added, removed or changed.
fn differences(old: &Value, new: &Value) -> Vec<String> {
    let mut changes = Vec::new();
    let empty = serde_json::Map::new();
    let object = |value: Option<&Value>| value.and_then(Value::as_object).unwrap_or(&empty).clone();

    let old_paths = object(old.get("paths"));
    let new_paths = object(new.get("paths"));
    for path in keys(&old_paths, &new_paths) {
        let old_item = object(old_paths.get(&path));
        let new_item = object(new_paths.get(&path));
        for method in METHODS {
            let name = format!("{} {path}", method.to_ascii_uppercase());
            describe(
                &mut changes,
                &name,
                old_item.get(method),
                new_item.get(method),
            );
        }
        // What a path item holds beside its operations (shared parameters, a summary), as one
        // part that exists only when it holds anything.
        let shared = |item: &serde_json::Map<String, Value>| {
            let mut rest = item.clone();
            rest.retain(|key, _| !METHODS.contains(&key.as_str()));
            (!rest.is_empty()).then_some(Value::Object(rest))
        };
        describe(
            &mut changes,
            &format!("{path} (shared parts of the path)"),
            shared(&old_item).as_ref(),
            shared(&new_item).as_ref(),
        );
    }

    let schemas =
        |document: &Value| object(document.get("components").and_then(|c| c.get("schemas")));
    let (old_schemas, new_schemas) = (schemas(old), schemas(new));
    for name in keys(&old_schemas, &new_schemas) {
        describe(
            &mut changes,
            &format!("schema {name}"),
            old_schemas.get(&name),
            new_schemas.get(&name),
        );
    }

    // Everything else, compared whole per top-level key (`info`, `servers`, the rest of
    // `components`, …).
    let without_compared = |document: &Value| {
        let mut rest = document.as_object().cloned().unwrap_or_default();
        rest.remove("paths");
        if let Some(Value::Object(components)) = rest.get_mut("components") {
            components.remove("schemas");
            if components.is_empty() {
                rest.remove("components");
            }
        }
        rest
    };
    let (old_rest, new_rest) = (without_compared(old), without_compared(new));
    for key in keys(&old_rest, &new_rest) {
        describe(
            &mut changes,
            &format!("`{key}`"),
            old_rest.get(&key),
            new_rest.get(&key),
        );
    }
    // What the comparison by part reads as empty but is not the same (`"paths": []`, a path
    // item that is `null`): still a difference.
    if changes.is_empty() && old != new {
        changes.push("the document: changed (outside its operations and schemas)".to_owned());
    }
    changes
}

/// Every key of either map, sorted.
fn keys(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
) -> BTreeSet<String> {
    a.keys().chain(b.keys()).cloned().collect()
}

/// Notes `name` as added, removed or changed, or nothing when both sides are equal.
fn describe(changes: &mut Vec<String>, name: &str, old: Option<&Value>, new: Option<&Value>) {
    match (old, new) {
        (None, Some(_)) => changes.push(format!("{name}: added")),
        (Some(_), None) => changes.push(format!("{name}: removed")),
        (Some(old), Some(new)) if old != new => changes.push(format!("{name}: changed")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "app", "version": "1.0.0"},
            "paths": {
                "/api/posts": {
                    "get": {"operationId": "listPosts"},
                    "post": {"operationId": "createPost"}
                },
                "/api/posts/{id}": {
                    "parameters": [{"name": "id", "in": "path"}],
                    "get": {"operationId": "getPost"}
                }
            },
            "components": {
                "schemas": {"Post": {"type": "object"}},
                "securitySchemes": {"bearer": {"type": "http"}}
            }
        })
    }

    #[test]
    fn equal_documents_have_no_differences() {
        assert!(differences(&document(), &document()).is_empty());
    }

    #[test]
    fn a_difference_the_parts_do_not_show_is_still_one() {
        let mut old = document();
        old["paths"]["/api/gone"] = Value::Null;
        assert_eq!(
            differences(&old, &document()),
            ["the document: changed (outside its operations and schemas)"]
        );
    }

    #[test]
    fn operations_are_named_by_method_and_path() {
        let old = document();
        let mut new = document();
        new["paths"]["/api/posts"]
            .as_object_mut()
            .unwrap()
            .remove("post");
        new["paths"]["/api/posts/{id}"]["get"]["operationId"] = json!("readPost");
        new["paths"]["/api/posts/{id}"]["delete"] = json!({"operationId": "deletePost"});
        new["paths"]["/api/hello"] = json!({"get": {}});
        assert_eq!(
            differences(&old, &new),
            [
                "GET /api/hello: added",
                "POST /api/posts: removed",
                "GET /api/posts/{id}: changed",
                "DELETE /api/posts/{id}: added",
            ]
        );
    }

    #[test]
    fn schemas_shared_path_parts_and_other_sections_are_named() {
        let old = document();
        let mut new = document();
        new["components"]["schemas"]["Post"]["required"] = json!(["id"]);
        new["components"]["schemas"]["User"] = json!({"type": "object"});
        new["components"]["securitySchemes"] = json!({});
        new["paths"]["/api/posts/{id}"]
            .as_object_mut()
            .unwrap()
            .remove("parameters");
        new["info"]["version"] = json!("1.1.0");
        assert_eq!(
            differences(&old, &new),
            [
                "/api/posts/{id} (shared parts of the path): removed",
                "schema Post: changed",
                "schema User: added",
                "`components`: changed",
                "`info`: changed",
            ]
        );
    }

    #[test]
    fn the_written_document_is_sorted_indented_and_ends_in_a_newline() {
        let text = pretty(&json!({"paths": {}, "openapi": "3.1.0"}));
        assert_eq!(text, "{\n  \"openapi\": \"3.1.0\",\n  \"paths\": {}\n}\n");
    }
}
