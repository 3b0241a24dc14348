//! The TypeScript client generated from the hand-written document in
//! `tests/fixtures/openapi/sample.json`, which uses every shape the document generator emits
//! (and a few that other generators do: component parameters and responses, header parameters).

use std::path::Path;

use serde_json::Value;

fn sample() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openapi/sample.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn client_for_the_sample_document() {
    let client = waypost_build::typescript::generate(&sample()).unwrap();
    insta::assert_snapshot!(client);
}

#[test]
fn output_does_not_depend_on_key_order() {
    // serde_json keeps maps sorted here, but a document read with `preserve_order` (or written
    // by hand) lists paths and properties in any order; the client must come out the same.
    let mut document = sample();
    let paths = document["paths"].as_object().unwrap().clone();
    let reversed: serde_json::Map<String, Value> = paths.into_iter().rev().collect();
    document["paths"] = Value::Object(reversed);
    assert_eq!(
        waypost_build::typescript::generate(&document).unwrap(),
        waypost_build::typescript::generate(&sample()).unwrap()
    );
}

#[test]
fn websocket_operations_are_left_out_of_the_client() {
    // `fetch` cannot open a WebSocket: an operation whose only success is 101 gets no method,
    // and the rest of the document comes out as before.
    let mut document = sample();
    document["paths"]["/api/live"] = serde_json::json!({
        "get": {
            "operationId": "get_api_live",
            "responses": {
                "101": { "description": "Switching Protocols." },
                "default": { "description": "An error." }
            }
        }
    });
    let with_socket = waypost_build::typescript::generate(&document).unwrap();
    assert!(!with_socket.contains("getApiLive"), "{with_socket}");
    assert!(!with_socket.contains("/api/live"));
    assert_eq!(
        with_socket,
        waypost_build::typescript::generate(&sample()).unwrap()
    );
}
