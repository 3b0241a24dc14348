//! The request path as routing sees it: percent-encoded unreserved characters decoded first
//! (RFC 3986 §6.2.2.2), so `/api/%68ello` is `/api/hello` for static folders as it already was
//! for dynamic ones, whose values axum decodes.
//!
//! Only letters, digits, `-`, `_` and `~` are decoded: they mean the same encoded or not, so the
//! rewrite changes no request's meaning. `%2F` stays (a slash inside a segment is not a
//! separator), and so does `%2E`: decoding it could make a `..` segment out of data. Everything
//! else — other escapes, raw non-ASCII bytes, the query — is left exactly as sent. A path with a
//! `%` that starts no escape is left alone whole: decoding next to it could make a new escape
//! (`%%32%45` → `%2E`), and a value decoded twice is how `..` slips past a filter.
//!
//! The rewritten URI is what routing, middleware, handlers and logs see; the one as sent stays
//! in axum's `OriginalUri`. A proxy in front that filters by path must decode the same way (as
//! nginx does before matching `location`s), or it may pass `/api/%61dmin` that it meant to stop.
//! A path without `%` is not touched at all, which is every request on the hot path.

use axum::http::{uri::PathAndQuery, Uri};

/// `uri` with the unreserved escapes of its path decoded, or `None` when there are none (or
/// the result would not be a URI, which cannot happen for a path hyper accepted).
///
/// Inlined, with the rewrite out of line: every request pays for one look for a `%` in its
/// short path, and only the rare one with an escape for more.
#[inline]
pub(crate) fn decode_unreserved(uri: &Uri) -> Option<Uri> {
    // A plain loop, not `contains`: for a path of a few dozen bytes it costs a third of a call
    // to memchr (callgrind: 70 instructions a request on `/api/hello`).
    for &byte in uri.path().as_bytes() {
        if byte == b'%' {
            return decode_escapes(uri);
        }
    }
    None
}

#[cold]
#[inline(never)]
fn decode_escapes(uri: &Uri) -> Option<Uri> {
    let path = uri.path().as_bytes();
    let mut has_unreserved = false;
    for at in 0..path.len() {
        if path[at] == b'%' {
            has_unreserved |= is_unreserved(percent_escape(&path[at..])?);
        }
    }
    if !has_unreserved {
        return None;
    }
    // Bytes, not chars: a raw UTF-8 sequence in the path is copied as it came.
    let mut decoded = Vec::with_capacity(uri.path_and_query().map_or(0, |p| p.as_str().len()));
    let mut rest = path;
    while let Some((&byte, after)) = rest.split_first() {
        match unreserved_escape(rest) {
            Some(character) => {
                decoded.push(character);
                rest = &rest[3..];
            }
            None => {
                decoded.push(byte);
                rest = after;
            }
        }
    }
    if let Some(query) = uri.query() {
        decoded.push(b'?');
        decoded.extend_from_slice(query.as_bytes());
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(decoded).ok()?);
    Uri::from_parts(parts).ok()
}

/// The character `%XY` at the start of `bytes` stands for, when it is one decoded here.
fn unreserved_escape(bytes: &[u8]) -> Option<u8> {
    percent_escape(bytes).filter(|&byte| is_unreserved(byte))
}

/// RFC 3986's unreserved characters but `.` (see the module's note on `%2E`).
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~')
}

/// The byte a `%HH` escape at the start of `bytes` stands for; `None` when `bytes` does not
/// start with `%` and two hex digits. (The front layer's `Host` check reads escapes with it too.)
pub(super) fn percent_escape(bytes: &[u8]) -> Option<u8> {
    let [b'%', high, low, ..] = *bytes else {
        return None;
    };
    let digit = |byte: u8| char::from(byte).to_digit(16);
    u8::try_from(digit(high)? << 4 | digit(low)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(uri: &str) -> Option<String> {
        decode_unreserved(&uri.parse().unwrap()).map(|uri| uri.to_string())
    }

    #[test]
    fn paths_without_unreserved_escapes_are_left_alone() {
        assert_eq!(normalized("/api/hello"), None);
        assert_eq!(normalized("/api/hello?q=%68"), None);
        assert_eq!(normalized("/api/docs/a%2Fb"), None);
        assert_eq!(normalized("/api/posts/%2E%2E/x"), None);
        assert_eq!(normalized("/api/x%20y%"), None);
        assert_eq!(normalized("/api/x%6"), None);
        assert_eq!(normalized("/api/x%zz"), None);
    }

    #[test]
    fn a_percent_that_starts_no_escape_leaves_the_whole_path_alone() {
        // Decoding beside it would make new escapes: `%2E%2E` (a dot segment), `%2F`, `%41`.
        assert_eq!(normalized("/api/users/%%32%45%%32%45"), None);
        assert_eq!(normalized("/api/docs/%%32%46etc"), None);
        assert_eq!(normalized("/api/%%34%31"), None);
        assert_eq!(normalized("/x/%2%34%31"), None);
        assert_eq!(normalized("/api/%68ello%"), None);
    }

    #[test]
    fn raw_non_ascii_bytes_are_copied_as_they_came() {
        let uri = Uri::try_from("/api/hello/caf\u{e9}%41".as_bytes()).unwrap();
        let decoded = decode_unreserved(&uri).unwrap();
        assert_eq!(decoded.path(), "/api/hello/caf\u{e9}A");
    }

    #[test]
    fn letters_digits_and_marks_are_decoded_and_the_rest_kept() {
        assert_eq!(normalized("/api/%68ello").as_deref(), Some("/api/hello"));
        assert_eq!(
            normalized("/api/%68ello?name=%68&x").as_deref(),
            Some("/api/hello?name=%68&x")
        );
        assert_eq!(
            normalized("/%41%7a%30%2D%5f%7E/%2F%2e%20").as_deref(),
            Some("/Az0-_~/%2F%2e%20")
        );
    }

    /// `path` with every `%HH` escape decoded: what the path means.
    fn meaning(path: &str) -> Vec<u8> {
        let (mut meant, mut rest) = (Vec::new(), path.as_bytes());
        while let Some((&byte, after)) = rest.split_first() {
            match percent_escape(rest) {
                Some(decoded) => {
                    meant.push(decoded);
                    rest = &rest[3..];
                }
                None => {
                    meant.push(byte);
                    rest = after;
                }
            }
        }
        meant
    }

    #[test]
    fn a_rewrite_changes_no_paths_meaning_and_leaves_no_unreserved_escape() {
        use rand::{rngs::SmallRng, Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "/", "a", "%", "%2", "%41", "%7a", "%7E", "%2E", "%2e", "%2F", "%25", "%%", "%20",
            "%5F", "%2D", "%C3%A9", "..", ".", "%3", "x",
        ];
        let mut rng = SmallRng::seed_from_u64(20_261_122);
        for _ in 0..5_000 {
            let path: String = std::iter::once("/")
                .chain(
                    (0..rng.random_range(0..10)).map(|_| PIECES[rng.random_range(0..PIECES.len())]),
                )
                .collect();
            let target = format!("{path}?q=%41%");
            let uri: Uri = target.parse().unwrap();
            let Some(rewritten) = decode_unreserved(&uri) else {
                continue;
            };
            assert_eq!(meaning(rewritten.path()), meaning(&path), "{path}");
            assert_eq!(rewritten.query(), Some("q=%41%"), "{path}");
            // A path is rewritten only when all of its `%` start escapes, and then every
            // unreserved one is gone: decoding twice changes nothing more.
            assert!(
                !path.contains('%')
                    || path.split('%').skip(1).all(|after| {
                        after.len() >= 2 && after.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)
                    }),
                "{path}"
            );
            assert_eq!(decode_unreserved(&rewritten), None, "{path}");
        }
    }

    #[test]
    fn an_absolute_form_target_keeps_its_scheme_and_authority() {
        assert_eq!(
            normalized("http://example.com/api/%68ello").as_deref(),
            Some("http://example.com/api/hello")
        );
    }
}
