//! `/api/weather`'s backend: an OpenWeather-shaped API, answered in the contract's shape.

use serde::{Deserialize, Serialize};
use serde_json::Number;
use waypost::{
    proxy::{read_json, upstream_failed},
    ApiError,
};

use crate::AppState;

/// How long the weather API may take.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The answer. Numbers are passed on as the API wrote them (a humidity of `81` stays `81`,
/// not `81.0`).
#[derive(schemars::JsonSchema, Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Weather {
    /// City name as the API knows it.
    pub city: String,
    /// ISO country code.
    pub country: String,
    /// Temperature in the API's units.
    pub temperature: Number,
    /// E.g. "light rain".
    pub description: String,
    /// Relative humidity, %.
    pub humidity: Number,
    /// Wind speed in the API's units.
    pub wind_speed: Number,
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
    temp: Number,
    humidity: Number,
}

#[derive(Deserialize)]
struct ReplyWeather {
    description: String,
}

#[derive(Deserialize)]
struct ReplyWind {
    speed: Number,
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
    let url = with_city(base, city);
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

/// `base` with `q=<city>` added to its query (after any parameters it has, an API key say). The
/// city is percent-encoded as RFC 3986 has it — a space is `%20` — which every server decodes,
/// while the form encoding's `+` is a space only to those that read queries as forms.
fn with_city(base: &url::Url, city: &str) -> url::Url {
    let city = waypost::proxy::percent_encode_component(city);
    let query = match base.query() {
        Some(query) if !query.is_empty() => format!("{query}&q={city}"),
        _ => format!("q={city}"),
    };
    let mut url = base.clone();
    url.set_query(Some(&query));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_city_is_percent_encoded_after_the_query_already_there() {
        let base = url::Url::parse("http://weather.test/data?appid=k1").unwrap();
        assert_eq!(
            with_city(&base, "New York").as_str(),
            "http://weather.test/data?appid=k1&q=New%20York"
        );
        assert_eq!(
            with_city(&base, "a+b&c=d#e/é").query(),
            Some("appid=k1&q=a%2Bb%26c%3Dd%23e%2F%C3%A9")
        );
        let bare = url::Url::parse("http://weather.test/data").unwrap();
        assert_eq!(with_city(&bare, "Zürich").query(), Some("q=Z%C3%BCrich"));
        let decoded: Vec<(String, String)> = with_city(&base, "São Paulo + 2")
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(decoded[1], ("q".to_owned(), "São Paulo + 2".to_owned()));
    }
}
