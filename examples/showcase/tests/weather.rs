//! The contract's weather proxy, against a fake OpenWeather: the reply reshaped, the city
//! URL-encoded, and every upstream failure a 502 (or 503 when nothing is configured).

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{expect_error, serve_fake, Showcase};
use serde_json::{json, Value};
use waypost::axum::{
    extract::{Query, RawQuery},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
    Json, Router,
};

#[derive(Clone, Debug)]
struct Received {
    params: HashMap<String, String>,
    raw: String,
}

fn openweather_reply(city: &str) -> Value {
    json!({
        "coord": { "lon": -46.64, "lat": -23.55 },
        "weather": [{ "id": 800, "main": "Clear", "description": "clear sky", "icon": "01d" }],
        "main": { "temp": 24.5, "feels_like": 25.1, "pressure": 1012, "humidity": 61 },
        "wind": { "speed": 3.6, "deg": 140 },
        "sys": { "country": "BR" },
        "name": city,
        "cod": 200
    })
}

/// A fake OpenWeather at `/data/2.5/weather` that records every query and answers `reply`.
async fn fake_weather<F, R>(reply: F) -> (String, Arc<Mutex<Vec<Received>>>)
where
    F: Fn(HashMap<String, String>) -> R + Clone + Send + Sync + 'static,
    R: std::future::Future<Output = waypost::axum::response::Response> + Send + 'static,
{
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    let router = Router::new().route(
        "/data/2.5/weather",
        get(
            move |Query(params): Query<HashMap<String, String>>, RawQuery(raw): RawQuery| {
                seen.lock().unwrap().push(Received {
                    params: params.clone(),
                    raw: raw.unwrap_or_default(),
                });
                reply(params)
            },
        ),
    );
    let base = serve_fake(router).await;
    (format!("{base}/data/2.5/weather?appid=test-key"), received)
}

async fn weather(app: &Showcase, city: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/weather"))
        .query(&[("city", city)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_openweather_reply_is_answered_in_the_contract_shape() {
    let (url, received) =
        fake_weather(|params| async move { Json(openweather_reply(&params["q"])).into_response() })
            .await;
    let app = Showcase::start_with(&[("WEATHER_API_URL", &url)]).await;
    let response = weather(&app, "Lisbon").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "city": "Lisbon",
            "country": "BR",
            "temperature": 24.5,
            "description": "clear sky",
            "humidity": 61,
            "windSpeed": 3.6
        })
    );
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_city_is_url_encoded_into_q_and_the_configured_query_is_kept() {
    let (url, received) =
        fake_weather(|params| async move { Json(openweather_reply(&params["q"])).into_response() })
            .await;
    let app = Showcase::start_with(&[("WEATHER_API_URL", &url)]).await;
    let response = weather(&app, "São Paulo & Co").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["city"], "São Paulo & Co");

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let expected: HashMap<String, String> = [("appid", "test-key"), ("q", "São Paulo & Co")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        received[0].params, expected,
        "raw query: {}",
        received[0].raw
    );
    // `&` inside the city did not split the query into a third parameter, and spaces are
    // `%20`, which every server decodes (`+` is a space only to form decoders).
    assert_eq!(
        received[0].raw,
        "appid=test-key&q=S%C3%A3o%20Paulo%20%26%20Co"
    );
}

#[tokio::test]
async fn a_missing_city_is_400_and_the_upstream_is_not_called() {
    let (url, received) =
        fake_weather(|params| async move { Json(openweather_reply(&params["q"])).into_response() })
            .await;
    let app = Showcase::start_with(&[("WEATHER_API_URL", &url)]).await;
    let body = expect_error(app.get("/api/weather").await, 400, "validation_failed").await;
    assert!(body["details"]["city"].is_array(), "{body}");
    expect_error(weather(&app, "   ").await, 400, "validation_failed").await;
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_upstream_error_is_502_upstream_failed() {
    let (url, received) = fake_weather(|params| async move {
        match params["q"].as_str() {
            "Nowhere" => (StatusCode::NOT_FOUND, Json(json!({ "cod": "404" }))).into_response(),
            "Garbled" => Json(json!({ "unexpected": true })).into_response(),
            // A report without a country, or without any condition, is no report either.
            "Stateless" => Json(json!({
                "name": "Stateless", "sys": {}, "main": { "temp": 1.0, "humidity": 2 },
                "weather": [{ "description": "fog" }], "wind": { "speed": 3.0 }
            }))
            .into_response(),
            "Conditionless" => Json(json!({
                "name": "Conditionless", "sys": { "country": "PT" },
                "main": { "temp": 1.0, "humidity": 2 }, "weather": [], "wind": { "speed": 3.0 }
            }))
            .into_response(),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "upstream secret /srv/x").into_response(),
        }
    })
    .await;
    let app = Showcase::start_with(&[("WEATHER_API_URL", &url)]).await;
    let cities = ["Paris", "Nowhere", "Garbled", "Stateless", "Conditionless"];
    for city in cities {
        let body = expect_error(weather(&app, city).await, 502, "upstream_failed").await;
        assert!(!body.to_string().contains("secret"), "{body}");
    }
    assert_eq!(received.lock().unwrap().len(), cities.len());
}

#[tokio::test]
async fn an_upstream_slower_than_5_seconds_is_502() {
    let (url, received) = fake_weather(|params| async move {
        tokio::time::sleep(Duration::from_secs(8)).await;
        Json(openweather_reply(&params["q"])).into_response()
    })
    .await;
    let app = Showcase::start_with(&[("WEATHER_API_URL", &url)]).await;
    let started = std::time::Instant::now();
    expect_error(weather(&app, "Slowtown").await, 502, "upstream_failed").await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(4500) && elapsed < Duration::from_millis(7500),
        "{elapsed:?}"
    );
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn without_weather_api_url_it_is_503_upstream_unavailable() {
    let app = Showcase::start().await;
    expect_error(weather(&app, "Lisbon").await, 503, "upstream_unavailable").await;
}

#[tokio::test]
async fn an_oversized_upstream_answer_is_502_not_buffered() {
    let (url, _received) = fake_weather(|params| async move {
        let mut reply = openweather_reply(&params["q"]);
        // Valid JSON of the right shape, padded past the 1 MiB the server reads of an answer.
        reply["padding"] = json!("x".repeat(2 * 1024 * 1024));
        Json(reply).into_response()
    })
    .await;
    let app = Showcase::start_with(&[("WEATHER_API_URL", &url)]).await;
    expect_error(weather(&app, "Lisbon").await, 502, "upstream_failed").await;
    // The server is still serving.
    assert_eq!(app.get("/api/hello").await.status(), 200);
}
