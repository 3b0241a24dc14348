//! `GET /api/weather?city=…`: the weather from an OpenWeather-shaped API.

use serde::Deserialize;
use waypost::{
    extract::{Json, Query, State},
    ApiError,
};

use crate::{
    weather::{self, Weather},
    AppState,
};

/// `?city=`.
#[derive(schemars::JsonSchema, Debug, Deserialize)]
pub struct WeatherQuery {
    /// The city to look up.
    pub city: Option<String>,
}

/// 200 `{city, country, temperature, description, humidity, windSpeed}`; 400 without a city;
/// 502 when the API fails; 503 when it is not configured.
pub async fn get(
    State(state): State<AppState>,
    Query(query): Query<WeatherQuery>,
) -> Result<Json<Weather>, ApiError> {
    let city = query.city.as_deref().map(str::trim).unwrap_or_default();
    if city.is_empty() || city.chars().count() > 100 {
        return Err(ApiError::invalid_field("city", "is required (1–100 characters)"));
    }
    Ok(Json(weather::fetch(&state, city).await?))
}
