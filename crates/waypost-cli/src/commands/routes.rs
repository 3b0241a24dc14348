//! `waypost routes`: the route table as the scanner sees it — methods, URL, file and effective
//! settings — read from the sources without compiling the app.

use std::{path::PathBuf, process::ExitCode};

use waypost_build::{
    AuthKind, Evaluated, Method, RateLimitSetting, Route, RouteSettings, DEFAULT_MAX_FIELDS,
};

use crate::app_crate::AppCrate;

/// Arguments of `waypost routes`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The app crate's root, or its `src/app` folder.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// Prints the table; exit status 1 with every error on stderr when the tree is wrong.
pub(crate) fn run(args: &Args) -> ExitCode {
    let app = match AppCrate::locate(&args.dir) {
        Ok(app) => app,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    match waypost_build::scan(&app.root, &app.app_dir) {
        Ok(table) => {
            print!("{}", render(&table.routes));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

const HEADINGS: [&str; 4] = ["METHODS", "PATH", "FILE", "SETTINGS"];

/// The table, columns padded to their widest cell, one route per line.
fn render(routes: &[Route]) -> String {
    let rows: Vec<[String; 4]> = routes
        .iter()
        .map(|route| {
            let methods: Vec<&str> = route.handlers.iter().map(|h| h.method.as_str()).collect();
            [
                methods.join(", "),
                // Every URL the route serves: an optional catch-all serves two.
                route.paths.join(", "),
                route.file.clone(),
                settings_cell(route),
            ]
        })
        .collect();
    let headings = HEADINGS.map(str::to_owned);
    let mut widths = [0; 4];
    for row in std::iter::once(&headings).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&headings).chain(&rows) {
        let line = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn settings_cell(route: &Route) -> String {
    let mut parts = match route.settings() {
        Some(settings) => {
            let parts = known_settings(&settings);
            // The CSRF check is for unsafe methods: a route without one has nothing to say.
            let has_unsafe_method = route.handlers.iter().any(|handler| {
                matches!(
                    handler.method,
                    Method::Post | Method::Put | Method::Patch | Method::Delete
                )
            });
            parts
                .into_iter()
                .filter(|part| has_unsafe_method || !part.starts_with("csrf "))
                .collect()
        }
        // Only the compiler knows what a shared constant or a function call holds.
        None => vec![format!(
            "config {}",
            route
                .config
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        )],
    };
    parts.push(auth_cell(route));
    let files: Vec<&str> = route.middleware.iter().map(|m| m.file.as_str()).collect();
    parts.push(if files.is_empty() {
        "middleware none".to_owned()
    } else {
        format!("middleware {} ({})", files.len(), files.join(", "))
    });
    parts.join("; ")
}

/// Which methods need a signed-in caller, as their signatures say (`Auth<…>` / `MaybeAuth<…>`).
fn auth_cell(route: &Route) -> String {
    let of = |kind: AuthKind| -> Vec<&str> {
        route
            .handlers
            .iter()
            .filter(|handler| handler.shape.auth == kind)
            .map(|handler| handler.method.as_str())
            .collect()
    };
    let (required, optional) = (of(AuthKind::Required), of(AuthKind::Optional));
    let mut cell = Vec::new();
    if !required.is_empty() {
        cell.push(format!("required for {}", required.join(", ")));
    }
    if !optional.is_empty() {
        cell.push(format!("optional for {}", optional.join(", ")));
    }
    if cell.is_empty() {
        "auth none".to_owned()
    } else {
        format!("auth {}", cell.join(", "))
    }
}

fn known_settings(settings: &RouteSettings) -> Vec<String> {
    let body_limit = match &settings.body_limit {
        Evaluated::Value(bytes) => human_bytes(*bytes),
        Evaluated::Written(expr) => expr.clone(),
    };
    let max_duration = match &settings.max_duration {
        None => "none".to_owned(),
        Some(Evaluated::Value(duration)) => format!("{duration:?}"),
        Some(Evaluated::Written(expr)) => expr.clone(),
    };
    let mut rate_limit = match &settings.rate_limit {
        RateLimitSetting::Default => "default".to_owned(),
        RateLimitSetting::Custom(expr) => expr.clone(),
        RateLimitSetting::Disabled => "off".to_owned(),
    };
    if !settings.rate_limit_by_user && settings.rate_limit != RateLimitSetting::Disabled {
        rate_limit.push_str(" per IP");
    }
    let mut parts = vec![
        format!("body limit {body_limit}"),
        format!("max duration {max_duration}"),
        format!("csrf {}", if settings.csrf { "on" } else { "off" }),
        format!("rate limit {rate_limit}"),
    ];
    if settings.idempotent {
        parts.push("idempotency keys".to_owned());
    }
    match &settings.cache {
        None => {}
        Some(Evaluated::Value(max_age)) => parts.push(format!("cache {max_age:?}")),
        Some(Evaluated::Written(expr)) => parts.push(format!("cache {expr}")),
    }
    match &settings.max_fields {
        Evaluated::Value(DEFAULT_MAX_FIELDS) => {}
        Evaluated::Value(pairs) => parts.push(format!("max fields {pairs}")),
        Evaluated::Written(expr) => parts.push(format!("max fields {expr}")),
    }
    parts.extend(
        settings
            .other
            .iter()
            .map(|call| format!("{}({})", call.method, call.args.join(", "))),
    );
    parts
}

/// `1 MiB`, `512 KiB`, `1000 B`: the largest binary unit that divides the size exactly.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    UNITS
        .iter()
        .find(|(_, size)| bytes >= *size && bytes.is_multiple_of(*size))
        .map_or_else(
            || format!("{bytes} B"),
            |(unit, size)| format!("{} {unit}", bytes / size),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_largest_exact_binary_unit() {
        assert_eq!(human_bytes(1024 * 1024), "1 MiB");
        assert_eq!(human_bytes(8 * 1024 * 1024), "8 MiB");
        assert_eq!(human_bytes(512 * 1024), "512 KiB");
        assert_eq!(human_bytes(1536 * 1024), "1536 KiB");
        assert_eq!(human_bytes(2 << 30), "2 GiB");
        assert_eq!(human_bytes(1000), "1000 B");
        assert_eq!(human_bytes(0), "0 B");
    }

    #[test]
    fn a_cached_route_says_for_how_long() {
        let settings = RouteSettings {
            cache: Some(Evaluated::Value(std::time::Duration::from_secs(3600))),
            ..RouteSettings::default()
        };
        assert_eq!(known_settings(&settings).last().unwrap(), "cache 3600s");
    }

    #[test]
    fn a_route_with_its_own_field_cap_says_so() {
        let settings = RouteSettings {
            max_fields: Evaluated::Value(5000),
            ..RouteSettings::default()
        };
        assert_eq!(known_settings(&settings).last().unwrap(), "max fields 5000");
        let settings = RouteSettings {
            max_fields: Evaluated::Written("FIELDS".into()),
            ..RouteSettings::default()
        };
        assert_eq!(
            known_settings(&settings).last().unwrap(),
            "max fields FIELDS"
        );
    }

    #[test]
    fn default_settings_read_as_the_runtime_defaults() {
        let parts = known_settings(&RouteSettings::default());
        assert_eq!(
            parts,
            [
                "body limit 1 MiB",
                "max duration none",
                "csrf on",
                "rate limit default"
            ]
        );
    }
}
