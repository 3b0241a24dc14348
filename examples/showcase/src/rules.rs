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

/// [`no_nul`] as the JSON Schema `pattern` of the fields it guards (an ECMA-262 regex), so the
/// OpenAPI document does not call a value valid that the app refuses.
pub const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";
