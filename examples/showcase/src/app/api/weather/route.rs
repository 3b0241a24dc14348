//! `GET /api/weather?city=…`: the weather from an OpenWeather-shaped API.

use garde::Validate;
use serde::Deserialize;
use waypost::{
    extract::{Json, Query, State, Valid},
    ApiError,
};

use crate::{
    weather::{self, Weather},
    AppState,
};

/// `?city=`.
#[derive(schemars::JsonSchema, Debug, Deserialize, Validate)]
pub struct WeatherQuery {
    /// The city to look up: 1–100 characters, not only blanks.
    #[garde(required, length(chars, min = 1, max = 100), pattern(r"[^ \t\r\n]"))]
    pub city: Option<String>,
}

/// 200 `{city, country, temperature, description, humidity, windSpeed}`; 400 without a city;
/// 502 when the API fails; 503 when it is not configured.
pub async fn get(
    State(state): State<AppState>,
    Valid(Query(query)): Valid<Query<WeatherQuery>>,
) -> Result<Json<Weather>, ApiError> {
    let city = query.city.unwrap_or_default();
    // Surrounding blanks are noise; validation made sure there is more than ASCII blanks.
    let trimmed = city.trim();
    let city = if trimmed.is_empty() { city.as_str() } else { trimmed };
    Ok(Json(weather::fetch(&state, city).await?))
}
