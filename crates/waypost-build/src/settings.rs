//! What a route's `CONFIG` chain amounts to, worked out from its text so tools can show a route's
//! effective settings without compiling the app.
//!
//! The defaults mirror `waypost::RouteConfig::new()`. Arguments that are plain arithmetic
//! (`8 * 1024 * 1024`, `Duration::from_secs(30)`) are evaluated; anything else is kept as
//! written.

use std::time::Duration;

use syn::{BinOp, Expr};

use crate::table::{ConfigCall, ConfigExpr, Route};

/// The runtime's default body limit, 1 MiB.
pub const DEFAULT_BODY_LIMIT: u64 = 1024 * 1024;

/// The runtime's default number of pairs `Query` and `Form` read, 1000.
pub const DEFAULT_MAX_FIELDS: u64 = 1000;

/// A route's settings as its `CONFIG` (or the defaults) make them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSettings {
    /// Largest accepted request body in bytes.
    pub body_limit: Evaluated<u64>,
    /// Longest the handler may run; `None` for no limit beyond the server's.
    pub max_duration: Option<Evaluated<Duration>>,
    /// Whether unsafe methods carrying cookies need a CSRF token.
    pub csrf: bool,
    /// The route's rate limit.
    pub rate_limit: RateLimitSetting,
    /// Whether signed-in callers are counted by user id (else by client IP).
    pub rate_limit_by_user: bool,
    /// `idempotent()`: unsafe requests with an `Idempotency-Key` are answered once per key.
    pub idempotent: bool,
    /// `cache(max_age)`: how long anonymous GET answers may be kept; `None` when not cached.
    pub cache: Option<Evaluated<Duration>>,
    /// `max_fields(pairs)`: the most pairs `Query` and `Form` read from one input.
    pub max_fields: Evaluated<u64>,
    /// Calls this version of the scanner does not know, as written.
    pub other: Vec<ConfigCall>,
}

/// A value worked out from the source, or the expression when only compiling could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluated<T> {
    /// The value.
    Value(T),
    /// The expression as written.
    Written(String),
}

/// How a route's rate limit is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitSetting {
    /// The app-wide default.
    Default,
    /// A limit of the route's own, as written: `RateLimit::per_minute(10)`.
    Custom(String),
    /// `no_rate_limit()`: the route is not limited.
    Disabled,
}

impl Default for RouteSettings {
    /// The settings of a route without `CONFIG`.
    fn default() -> Self {
        Self {
            body_limit: Evaluated::Value(DEFAULT_BODY_LIMIT),
            max_duration: None,
            csrf: true,
            rate_limit: RateLimitSetting::Default,
            rate_limit_by_user: true,
            idempotent: false,
            cache: None,
            max_fields: Evaluated::Value(DEFAULT_MAX_FIELDS),
            other: Vec::new(),
        }
    }
}

impl Route {
    /// The route's effective settings; `None` when its `CONFIG` is not a `RouteConfig::new()`
    /// chain (a shared constant, say), whose values only the compiler knows.
    ///
    /// # Example
    /// ```
    /// use std::path::Path;
    /// use waypost_build::{Evaluated, RateLimitSetting};
    ///
    /// let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample");
    /// let table = waypost_build::scan(&root, Path::new("src/app")).unwrap();
    /// let posts = table.routes.iter().find(|route| route.pattern == "/api/posts").unwrap();
    /// let settings = posts.settings().unwrap();
    /// assert_eq!(settings.body_limit, Evaluated::Value(8 * 1024 * 1024));
    /// assert_eq!(settings.rate_limit, RateLimitSetting::Custom("RateLimit::per_minute(10)".into()));
    /// ```
    pub fn settings(&self) -> Option<RouteSettings> {
        match &self.config {
            None => Some(RouteSettings::default()),
            Some(config) => config.settings(),
        }
    }
}

impl ConfigExpr {
    /// The settings this chain produces; `None` when it does not start from
    /// `RouteConfig::new()` or `RouteConfig::default()`.
    pub fn settings(&self) -> Option<RouteSettings> {
        if !starts_from_defaults(&self.base) {
            return None;
        }
        let mut settings = RouteSettings::default();
        for call in &self.calls {
            let arg = call.args.first().map(String::as_str).unwrap_or_default();
            match (call.method.as_str(), call.args.len()) {
                ("body_limit", 1) => settings.body_limit = evaluate(arg, integer),
                ("max_duration", 1) => settings.max_duration = Some(evaluate(arg, duration)),
                ("skip_csrf", 0) => settings.csrf = false,
                ("rate_limit", 1) => settings.rate_limit = RateLimitSetting::Custom(arg.to_owned()),
                ("no_rate_limit", 0) => settings.rate_limit = RateLimitSetting::Disabled,
                ("rate_limit_per_ip", 0) => settings.rate_limit_by_user = false,
                ("idempotent", 0) => settings.idempotent = true,
                ("cache", 1) => settings.cache = Some(evaluate(arg, duration)),
                ("max_fields", 1) => settings.max_fields = evaluate(arg, integer),
                _ => settings.other.push(call.clone()),
            }
        }
        Some(settings)
    }
}

fn starts_from_defaults(base: &str) -> bool {
    let Ok(Expr::Call(call)) = syn::parse_str::<Expr>(base) else {
        return false;
    };
    let Expr::Path(function) = &*call.func else {
        return false;
    };
    let names: Vec<String> = function
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    call.args.is_empty()
        && matches!(
            names.as_slice(),
            [.., ty, constructor] if ty == "RouteConfig" && (constructor == "new" || constructor == "default")
        )
}

fn evaluate<T>(text: &str, evaluator: fn(&Expr) -> Option<T>) -> Evaluated<T> {
    syn::parse_str::<Expr>(text)
        .ok()
        .and_then(|expr| evaluator(&expr))
        .map_or_else(|| Evaluated::Written(text.to_owned()), Evaluated::Value)
}

/// Integer arithmetic over literals and the runtime's `DEFAULT_BODY_LIMIT`.
fn integer(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(literal),
            ..
        }) => literal.base10_parse().ok(),
        Expr::Paren(inner) => integer(&inner.expr),
        Expr::Group(inner) => integer(&inner.expr),
        Expr::Cast(cast) => integer(&cast.expr),
        Expr::Path(path) if path.path.segments.last()?.ident == "DEFAULT_BODY_LIMIT" => {
            Some(DEFAULT_BODY_LIMIT)
        }
        Expr::Binary(binary) => {
            let (left, right) = (integer(&binary.left)?, integer(&binary.right)?);
            match binary.op {
                BinOp::Mul(_) => left.checked_mul(right),
                BinOp::Add(_) => left.checked_add(right),
                BinOp::Sub(_) => left.checked_sub(right),
                BinOp::Div(_) => left.checked_div(right),
                BinOp::Shl(_) => left.checked_shl(u32::try_from(right).ok()?),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `Duration::from_secs(n)` and its siblings with an integer argument.
fn duration(expr: &Expr) -> Option<Duration> {
    let Expr::Call(call) = expr else {
        return None;
    };
    let Expr::Path(function) = &*call.func else {
        return None;
    };
    let [argument] = call.args.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let amount = integer(argument)?;
    match function.path.segments.last()?.ident.to_string().as_str() {
        "from_secs" => Some(Duration::from_secs(amount)),
        "from_millis" => Some(Duration::from_millis(amount)),
        "from_micros" => Some(Duration::from_micros(amount)),
        "from_nanos" => Some(Duration::from_nanos(amount)),
        "from_mins" => Some(Duration::from_secs(amount.checked_mul(60)?)),
        "from_hours" => Some(Duration::from_secs(amount.checked_mul(3600)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(base: &str, calls: &[(&str, &[&str])]) -> ConfigExpr {
        ConfigExpr {
            base: base.to_owned(),
            calls: calls
                .iter()
                .map(|(method, args)| ConfigCall {
                    method: (*method).to_owned(),
                    args: args.iter().map(|arg| (*arg).to_owned()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn no_calls_gives_the_defaults() {
        let settings = chain("RouteConfig::new()", &[]).settings().unwrap();
        assert_eq!(settings, RouteSettings::default());
        assert_eq!(settings.body_limit, Evaluated::Value(1024 * 1024));
        assert!(settings.csrf);
    }

    #[test]
    fn arithmetic_arguments_are_evaluated() {
        let settings = chain(
            "waypost::RouteConfig::default()",
            &[
                ("body_limit", &["8 * 1024 * 1024"]),
                ("max_duration", &["Duration::from_secs(30)"]),
            ],
        )
        .settings()
        .unwrap();
        assert_eq!(settings.body_limit, Evaluated::Value(8 * 1024 * 1024));
        assert_eq!(
            settings.max_duration,
            Some(Evaluated::Value(Duration::from_secs(30)))
        );
    }

    #[test]
    fn other_arguments_are_kept_as_written() {
        let settings = chain(
            "RouteConfig::new()",
            &[
                ("body_limit", &["MAX_UPLOAD"]),
                ("max_duration", &["TIMEOUT"]),
            ],
        )
        .settings()
        .unwrap();
        assert_eq!(settings.body_limit, Evaluated::Written("MAX_UPLOAD".into()));
        assert_eq!(
            settings.max_duration,
            Some(Evaluated::Written("TIMEOUT".into()))
        );
    }

    #[test]
    fn switches_turn_defaults_off() {
        let settings = chain(
            "RouteConfig::new()",
            &[
                ("skip_csrf", &[]),
                ("no_rate_limit", &[]),
                ("rate_limit_per_ip", &[]),
                ("idempotent", &[]),
                ("cache", &["Duration::from_secs(60)"]),
                ("max_fields", &["5 * 1000"]),
                ("compress", &[]),
            ],
        )
        .settings()
        .unwrap();
        assert!(settings.idempotent);
        assert_eq!(settings.max_fields, Evaluated::Value(5000));
        assert_eq!(
            settings.cache,
            Some(Evaluated::Value(Duration::from_secs(60)))
        );
        assert!(!settings.csrf);
        assert_eq!(settings.rate_limit, RateLimitSetting::Disabled);
        assert!(!settings.rate_limit_by_user);
        assert_eq!(settings.other.len(), 1);
    }

    #[test]
    fn a_config_not_built_from_defaults_is_unknown() {
        assert_eq!(chain("SHARED_CONFIG", &[]).settings(), None);
        assert_eq!(
            chain("make_config()", &[("skip_csrf", &[])]).settings(),
            None
        );
    }
}
