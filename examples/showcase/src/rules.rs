//! Validation rules the showcase's forms share.

/// A text field of only whitespace says nothing (and a name, stored trimmed, would be stored
/// empty): refuse it as blank. (An empty one is left to the field's length rule.)
pub fn not_blank(value: &Option<String>, _context: &()) -> garde::Result {
    match value {
        Some(text) if !text.is_empty() && text.trim().is_empty() => {
            Err(garde::Error::new("must not be blank"))
        }
        _ => Ok(()),
    }
}

/// A field of a partial update that may be left out but, when sent, not as `null` (the value
/// every record has cannot be cleared).
pub fn not_null<T>(value: &Option<Option<T>>, _context: &()) -> garde::Result {
    match value {
        Some(None) => Err(garde::Error::new("must not be null")),
        _ => Ok(()),
    }
}

/// U+0000 in a text field is refused as invalid, so that an app on SQLite (which stores it) and
/// one on Postgres (whose text cannot hold it) answer the same: 400 `validation_failed` naming
/// the field, before anything is written. Fields with this rule say so in their schema too,
/// with [`NO_NUL_PATTERN`].
pub fn no_nul(value: &Option<String>, _context: &()) -> garde::Result {
    match value {
        Some(text) if text.contains('\0') => {
            Err(garde::Error::new("must not contain a NUL character"))
        }
        _ => Ok(()),
    }
}

/// The characters Rust's `char::is_whitespace` (and so `str::trim`) takes for blanks, as the
/// inside of a regex character class.
macro_rules! whitespace_class {
    () => {
        "\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000"
    };
}

/// The JSON Schema `pattern` (an ECMA-262 regex, matched anywhere in the value) of a field
/// under [`no_nul`], so the OpenAPI document calls no value valid that the app refuses.
pub const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

/// The `pattern` of a field under [`not_blank`]: some character that is not a blank.
pub const NOT_BLANK_PATTERN: &str = concat!("[^", whitespace_class!(), "]");

/// The `pattern` of a field under both [`not_blank`] and [`no_nul`].
pub const NOT_BLANK_NO_NUL_PATTERN: &str = concat!(
    "^[^\\u0000]*[^\\u0000",
    whitespace_class!(),
    "][^\\u0000]*$"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of character the rules care about, alone and beside a letter.
    fn samples() -> Vec<String> {
        let singles = [
            '\0', '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{1c}', '\u{85}', '\u{a0}',
            '\u{1680}', '\u{2000}', '\u{200a}', '\u{200b}', '\u{2028}', '\u{2029}', '\u{202f}',
            '\u{205f}', '\u{3000}', '\u{feff}', 'a', 'é', '😀',
        ];
        let mut samples = vec![String::new()];
        for c in singles {
            samples.push(c.to_string());
            samples.push(format!("{c}{c}{c}"));
            samples.push(format!("a{c}"));
            samples.push(format!("{c}a{c}"));
        }
        samples
    }

    /// The pattern (matched anywhere, as JSON Schema does) says yes exactly where `rule` does.
    fn agree(pattern: &str, rule: impl Fn(&Option<String>) -> bool) {
        let regex = regex::Regex::new(pattern).unwrap();
        for sample in samples() {
            assert_eq!(
                regex.is_match(&sample),
                rule(&Some(sample.clone())),
                "{pattern} against {sample:?}"
            );
        }
    }

    #[test]
    fn the_schema_patterns_say_what_the_rules_do() {
        agree(NO_NUL_PATTERN, |value| no_nul(value, &()).is_ok());
        // `not_blank` leaves the empty string to the length rules; a pattern cannot.
        agree(NOT_BLANK_PATTERN, |value| {
            not_blank(value, &()).is_ok() && value.as_deref() != Some("")
        });
        agree(NOT_BLANK_NO_NUL_PATTERN, |value| {
            not_blank(value, &()).is_ok()
                && no_nul(value, &()).is_ok()
                && value.as_deref() != Some("")
        });
    }
}
