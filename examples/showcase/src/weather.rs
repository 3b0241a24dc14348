//! `/api/weather`'s backend: an OpenWeather-shaped API, answered in the contract's shape.

use serde::{Deserialize, Serialize};
use waypost::{
    proxy::{read_json, upstream_failed},
    ApiError,
};

use crate::AppState;

/// How long the weather API may take.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The answer.
#[derive(schemars::JsonSchema, Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Weather {
    /// City name as the API knows it.
    pub city: String,
    /// ISO country code.
    pub country: String,
    /// Temperature in the API's units.
    pub temperature: f64,
    /// E.g. "light rain".
    pub description: String,
    /// Relative humidity, %.
    pub humidity: f64,
    /// Wind speed in the API's units.
    pub wind_speed: f64,
}

#[derive(Deserialize)]
struct Reply {
    name: String,
    sys: ReplySys,
    main: ReplyMain,
    weather: Vec<ReplyWeather>,
    wind: ReplyWind,
}

#[derive(Deserialize)]
struct ReplySys {
    country: String,
}

#[derive(Deserialize)]
struct ReplyMain {
    temp: f64,
    humidity: f64,
}

#[derive(Deserialize)]
struct ReplyWeather {
    description: String,
}

#[derive(Deserialize)]
struct ReplyWind {
    speed: f64,
}

/// The weather in `city`.
///
/// # Errors
/// 503 `upstream_unavailable` when `WEATHER_API_URL` is unset; 502 `upstream_failed` when the
/// API fails, times out or answers something else.
pub async fn fetch(state: &AppState, city: &str) -> Result<Weather, ApiError> {
    let Some(base) = &state.config().weather_api_url else {
        return Err(ApiError::unavailable(
            "upstream_unavailable",
            "The weather service is not configured.",
        ));
    };
    let mut url = base.clone();
    url.query_pairs_mut().append_pair("q", city);
    let response = state
        .upstream()
        .get(url)
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(upstream_failed)?;
    if !response.status().is_success() {
        return Err(upstream_failed(format!(
            "weather API answered {}",
            response.status()
        )));
    }
    let reply: Reply = read_json(response).await?;
    // Every field of the answer comes from the reply: one without a condition is not a weather
    // report, like one without any other field.
    let Some(condition) = reply.weather.into_iter().next() else {
        return Err(upstream_failed(
            "the weather API's answer has no `weather` entry",
        ));
    };
    Ok(Weather {
        city: reply.name,
        country: reply.sys.country,
        temperature: reply.main.temp,
        description: condition.description,
        humidity: reply.main.humidity,
        wind_speed: reply.wind.speed,
    })
}
