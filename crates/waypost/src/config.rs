//! Reading settings from the environment: a bad value stops start-up with a message naming the
//! variable, never a surprise at the first request.

use std::{net::IpAddr, str::FromStr, time::Duration};

use crate::body_pace::MinBodyRate;

/// A setting that could not be read. Start-up stops with this message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The variable is set but its value does not parse.
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        /// The variable's name.
        name: String,
        /// What it was set to.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A required variable is not set.
    #[error("{name} must be set")]
    Missing {
        /// The variable's name.
        name: String,
    },
}

impl ConfigError {
    /// An invalid value of `name`.
    pub fn invalid(name: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            name: name.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Where settings come from: the process environment, or a map in tests.
#[derive(Clone, Debug, Default)]
pub struct Env {
    overrides: Option<std::collections::HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { overrides: None }
    }

    /// A fixed set of variables (the process environment is not consulted).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            overrides: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The raw value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.overrides {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// `name` parsed as `T`, or `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.parse(name).map(|v| v.unwrap_or(default))
    }

    /// `name` parsed as `T`, or `None` when unset.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse()
                .map(Some)
                .map_err(|e: T::Err| ConfigError::invalid(name, &raw, e.to_string())),
        }
    }

    /// `name` as a boolean: `1/true/yes/on` or `0/false/no/off`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::invalid(
                    name,
                    &raw,
                    "expected 1, true, yes or on; or 0, false, no or off",
                )),
            },
        }
    }

    /// `name` as a comma-separated list (empty when unset).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|raw| {
                raw.split(',')
                    .map(|item| item.trim().to_owned())
                    .filter(|item| !item.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `name` as a duration that `off` turns off: `None` for `off`, `default` when unset.
    pub fn duration_or_off(
        &self,
        name: &str,
        default: Option<Duration>,
    ) -> Result<Option<Duration>, ConfigError> {
        match self.get(name) {
            Some(raw) if raw.trim().eq_ignore_ascii_case("off") => Ok(None),
            None => Ok(default),
            Some(_) => self.duration(name, Duration::ZERO).map(Some),
        }
    }

    /// `name` as a timeout that `off` turns off; zero is refused, as it would cut every
    /// connection at once rather than turn the limit off.
    fn timeout_or_off(
        &self,
        name: &str,
        default: Option<Duration>,
    ) -> Result<Option<Duration>, ConfigError> {
        let timeout = self.duration_or_off(name, default)?;
        if timeout == Some(Duration::ZERO) {
            let raw = self.get(name).unwrap_or_default();
            return Err(ConfigError::invalid(
                name,
                &raw,
                "must be longer than zero (`off` turns it off)",
            ));
        }
        Ok(timeout)
    }

    /// `name` as a duration: `30s`, `500ms`, `2m`, `1h`, `7d`, or plain seconds.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_duration(&raw).ok_or_else(|| {
                ConfigError::invalid(
                    name,
                    &raw,
                    "expected a duration like 30s, 500ms, 2m, 1h or 7d",
                )
            }),
        }
    }
}

/// Parses `30s`, `500ms`, `2m`, `1h`, `7d` or plain seconds.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => Some(Duration::from_secs(number)),
        "ms" => Some(Duration::from_millis(number)),
        "m" | "min" | "mins" | "minute" | "minutes" => {
            Some(Duration::from_secs(number.checked_mul(60)?))
        }
        "h" | "hr" | "hour" | "hours" => Some(Duration::from_secs(number.checked_mul(3600)?)),
        "d" | "day" | "days" => Some(Duration::from_secs(number.checked_mul(24 * 3600)?)),
        _ => None,
    }
}

/// `HOST` as the address to listen on: an IP address as written, or a host name looked up once
/// (start-up may wait on the resolver; no request ever does).
fn host_address(env: &Env) -> Result<Option<IpAddr>, ConfigError> {
    use std::net::ToSocketAddrs;
    let Some(raw) = env.get("HOST") else {
        return Ok(None);
    };
    let name = raw.trim();
    if let Ok(address) = name.parse::<IpAddr>() {
        return Ok(Some(address));
    }
    // A bracketed IPv6 literal, as in URLs.
    if let Some(address) = name
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
    {
        return Ok(Some(IpAddr::V6(address)));
    }
    let not_a_host = || {
        ConfigError::invalid(
            "HOST",
            &raw,
            "expected an IP address or a host name that resolves (127.0.0.1, 0.0.0.0, ::1, localhost)",
        )
    };
    let is_host_name = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.');
    if !is_host_name {
        return Err(not_a_host());
    }
    let addresses: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map_err(|_| not_a_host())?
        .map(|address| address.ip())
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .copied()
        .map(Some)
        .ok_or_else(not_a_host)
}

/// The HTTP server's own settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `HOST` (127.0.0.1): an IP address, or a host name resolved once at start-up
    /// (`localhost` → 127.0.0.1; IPv4 preferred when a name has both).
    pub host: IpAddr,
    /// `PORT` (3000).
    pub port: u16,
    /// `WAYPOST_HEADER_READ_TIMEOUT` (10s): an HTTP/1 connection waiting for a request head —
    /// since it opened, or since its last response went out — is closed once this has passed
    /// without the whole head: the slowloris defence and the keep-alive idle limit in one. An
    /// HTTP/2 connection with no stream in flight for this long is shut down gracefully (a
    /// GOAWAY), and cut off one period later if the client keeps it open. `off` leaves it
    /// to a proxy in front.
    pub header_read_timeout: Option<Duration>,
    /// `WAYPOST_SEND_TIMEOUT` (60s): a connection whose client takes none of the response data
    /// waiting for it for this long is closed — an HTTP/1 socket that stays full, or an HTTP/2
    /// stream whose flow-control window the client keeps shut (past the timeout an HTTP/2
    /// connection must send at 240 bytes a second), a WebSocket or tunnel whose peer stopped
    /// reading (an HTTP/1 socket may stay full up to four times as long when it took more
    /// than a reader at 240 bytes a second gets through in the timeout). As nginx's
    /// `send_timeout`, it bounds the pause between two writes, not the whole response: a slow
    /// reader that keeps reading is served to the end, and a quiet stream (nothing to send) is
    /// not held up. `off` leaves it to a proxy in front.
    pub send_timeout: Option<Duration>,
    /// `WAYPOST_BODY_READ_TIMEOUT` (30s): the longest pause between two body chunks.
    pub body_read_timeout: Duration,
    /// `WAYPOST_BODY_MIN_RATE` (240, bytes a second; `off`) and `WAYPOST_BODY_MIN_RATE_GRACE`
    /// (5s, at least 1s): once the grace period has passed, a request body must have arrived at this
    /// average rate, counted over the time its handler waited for it — else 408 `timeout`.
    /// Bytes buy waiting time no further ahead than the body read timeout, so a burst does not
    /// pay for an hour of dripping. It stops a client that drips a body, each byte inside the
    /// body read timeout, from holding a connection for hours (see [`crate::body_pace`]).
    pub min_body_rate: Option<MinBodyRate>,
    /// `WAYPOST_MAX_HEADER_BYTES` (16384): a larger header section is answered 431.
    pub max_header_bytes: usize,
    /// `WAYPOST_SHUTDOWN_TIMEOUT` (10s): how long in-flight requests get after SIGTERM/SIGINT;
    /// a stop that drops requests still open then ends serving with an error.
    /// Past it they are dropped, and the work they leave behind (a credit refund, a freed
    /// idempotency key, a partial upload removed) gets up to 3 s more.
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 3000,
            header_read_timeout: Some(Duration::from_secs(10)),
            send_timeout: Some(Duration::from_secs(60)),
            body_read_timeout: Duration::from_secs(30),
            min_body_rate: Some(MinBodyRate::DEFAULT),
            max_header_bytes: 16 * 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// Reads the server settings from `env`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let max_header_bytes =
            env.parse_or("WAYPOST_MAX_HEADER_BYTES", defaults.max_header_bytes)?;
        if max_header_bytes < 8192 {
            return Err(ConfigError::invalid(
                "WAYPOST_MAX_HEADER_BYTES",
                &max_header_bytes.to_string(),
                "must be at least 8192",
            ));
        }
        Ok(Self {
            host: host_address(env)?.unwrap_or(defaults.host),
            port: env.parse_or("PORT", defaults.port)?,
            header_read_timeout: env
                .timeout_or_off("WAYPOST_HEADER_READ_TIMEOUT", defaults.header_read_timeout)?,
            send_timeout: env.timeout_or_off("WAYPOST_SEND_TIMEOUT", defaults.send_timeout)?,
            body_read_timeout: env
                .duration("WAYPOST_BODY_READ_TIMEOUT", defaults.body_read_timeout)?,
            min_body_rate: min_body_rate(env)?,
            max_header_bytes,
            shutdown_timeout: env
                .duration("WAYPOST_SHUTDOWN_TIMEOUT", defaults.shutdown_timeout)?,
        })
    }
}

/// `WAYPOST_BODY_MIN_RATE` (a whole number of bytes a second, or `off`) with
/// `WAYPOST_BODY_MIN_RATE_GRACE`.
fn min_body_rate(env: &Env) -> Result<Option<MinBodyRate>, ConfigError> {
    const NAME: &str = "WAYPOST_BODY_MIN_RATE";
    const GRACE: &str = "WAYPOST_BODY_MIN_RATE_GRACE";
    let grace = env.duration(GRACE, MinBodyRate::DEFAULT.grace)?;
    if grace < Duration::from_secs(1) {
        // Shorter, a body that is not in the first packets would be cut off at its first wait.
        return Err(ConfigError::invalid(
            GRACE,
            &env.get(GRACE).unwrap_or_default(),
            "must be at least 1s",
        ));
    }
    let bytes_per_second = match env.get(NAME) {
        None => MinBodyRate::DEFAULT.bytes_per_second,
        Some(raw) if raw.trim().eq_ignore_ascii_case("off") => return Ok(None),
        Some(raw) => raw.trim().parse::<std::num::NonZeroU64>().map_err(|_| {
            ConfigError::invalid(NAME, &raw, "expected bytes a second (1 or more), or off")
        })?,
    };
    Ok(Some(MinBodyRate {
        bytes_per_second,
        grace,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_body_rate_is_bytes_a_second_or_off() {
        let rate = |pairs: &[(&str, &str)]| {
            ServerConfig::from_env(&Env::from_pairs(pairs.iter().copied())).map(|c| c.min_body_rate)
        };
        assert_eq!(rate(&[]).unwrap(), Some(MinBodyRate::DEFAULT));
        let set = rate(&[
            ("WAYPOST_BODY_MIN_RATE", "1000"),
            ("WAYPOST_BODY_MIN_RATE_GRACE", "2s"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (set.bytes_per_second.get(), set.grace),
            (1000, Duration::from_secs(2))
        );
        assert_eq!(rate(&[("WAYPOST_BODY_MIN_RATE", " OFF ")]).unwrap(), None);
        for bad in ["0", "-5", "fast", "1.5"] {
            let error = rate(&[("WAYPOST_BODY_MIN_RATE", bad)])
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("WAYPOST_BODY_MIN_RATE="), "{error}");
        }
        for bad in ["soon", "0s", "500ms"] {
            let error = rate(&[("WAYPOST_BODY_MIN_RATE_GRACE", bad)])
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("WAYPOST_BODY_MIN_RATE_GRACE="), "{error}");
        }
    }

    #[test]
    fn connection_timeouts_are_durations_or_off_and_never_zero() {
        let timeouts = |pairs: &[(&str, &str)]| {
            ServerConfig::from_env(&Env::from_pairs(pairs.iter().copied()))
                .map(|c| (c.header_read_timeout, c.send_timeout))
        };
        assert_eq!(
            timeouts(&[]).unwrap(),
            (Some(Duration::from_secs(10)), Some(Duration::from_secs(60)))
        );
        assert_eq!(
            timeouts(&[
                ("WAYPOST_HEADER_READ_TIMEOUT", "off"),
                ("WAYPOST_SEND_TIMEOUT", "2m")
            ])
            .unwrap(),
            (None, Some(Duration::from_secs(120)))
        );
        assert_eq!(
            timeouts(&[("WAYPOST_SEND_TIMEOUT", "OFF")]).unwrap().1,
            None
        );
        for name in ["WAYPOST_HEADER_READ_TIMEOUT", "WAYPOST_SEND_TIMEOUT"] {
            for bad in ["0", "0s", "soon"] {
                let error = timeouts(&[(name, bad)]).unwrap_err().to_string();
                assert!(error.starts_with(&format!("{name}=")), "{error}");
            }
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("1 minute"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2hours"), Some(Duration::from_secs(7200)));
        assert_eq!(
            parse_duration("7d"),
            Some(Duration::from_secs(7 * 24 * 3600))
        );
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5 weeks"), None);
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let env = Env::from_pairs([("PORT", "eighty")]);
        let error = ServerConfig::from_env(&env).unwrap_err().to_string();
        assert!(error.starts_with("PORT=\"eighty\" is not valid"), "{error}");
    }

    #[test]
    fn host_is_an_address_or_a_name_that_resolves() {
        let host = |value: &str| ServerConfig::from_env(&Env::from_pairs([("HOST", value)]));
        assert_eq!(host("0.0.0.0").unwrap().host, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            host(" ::1 ").unwrap().host,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            host("[::1]").unwrap().host,
            "::1".parse::<IpAddr>().unwrap()
        );
        // /etc/hosts has it on every machine; IPv4 first when it also maps to ::1.
        assert_eq!(
            host("localhost").unwrap().host,
            IpAddr::from([127, 0, 0, 1])
        );
        // Rejected as written, before any lookup.
        for bad in ["local host", "http://127.0.0.1", "127.0.0.1:3000", "a_b"] {
            let error = host(bad).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("HOST={bad:?} is not valid")),
                "{error}"
            );
        }
    }
}
