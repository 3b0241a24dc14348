//! Times as stored and sent: RFC 3339 UTC with fixed microsecond width, so text order is time
//! order in every SQL engine.

use time::{format_description::FormatItem, macros::format_description, OffsetDateTime};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// The current time as `2026-11-21T11:24:18.123456Z`.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// `at` (converted to UTC) in the stored format.
pub fn format(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("the format has only numeric components")
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_fixed_width_and_parse_as_rfc3339() {
        let at = time::macros::datetime!(2026-01-02 03:04:05.000007 UTC);
        let text = super::format(at);
        assert_eq!(text, "2026-01-02T03:04:05.000007Z");
        let parsed =
            time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert_eq!(parsed, at);
    }
}
