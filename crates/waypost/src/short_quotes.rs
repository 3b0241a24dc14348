//! Client values that an error message quotes back, kept short.
//!
//! serde names the value it could not take (`invalid type: string "…", expected a number`,
//! ``unknown variant `…`, expected `title` or `createdAt` ``), which helps a client see its
//! mistake. But the value is the client's own and can be as long as the body limit: a
//! megabyte string would come back inside the error, in every log line that shows it and in
//! every retry's answer. Each quoted value is cut to [`QUOTED_CHARACTERS`] characters and marked
//! with `…`, and a message that is still long (a value holding a stray quote mark, say) is cut
//! whole at [`MESSAGE_CHARACTERS`].

use std::borrow::Cow;

/// The most characters of one quoted client value an error message keeps.
const QUOTED_CHARACTERS: usize = 64;

/// The most characters an error message keeps in all.
const MESSAGE_CHARACTERS: usize = 1024;

/// `message` with every value in double quotes (with Rust's escapes, as serde's `Debug`
/// writes it) or in backticks cut to [`QUOTED_CHARACTERS`] characters, then the whole to
/// [`MESSAGE_CHARACTERS`]. A message with nothing too long is returned as it is, unallocated.
pub(crate) fn shorten_quoted_values(message: &str) -> Cow<'_, str> {
    if message.len() <= QUOTED_CHARACTERS {
        // No quoted value inside can be longer than the message holding it.
        return Cow::Borrowed(message);
    }
    let mut shortened = String::new();
    // Where the text not yet copied into `shortened` starts.
    let mut copied_to = 0;
    let mut at = 0;
    let bytes = message.as_bytes();
    while at < bytes.len() {
        let quote = bytes[at];
        if quote != b'"' && quote != b'`' {
            at += 1;
            continue;
        }
        let inner_start = at + 1;
        let Some((inner_end, cut_at)) = quoted_end(&message[inner_start..], quote) else {
            // An opening quote with no close: the rest is left to the whole-message cut.
            break;
        };
        let (inner_end, cut_at) = (inner_start + inner_end, cut_at.map(|cut| inner_start + cut));
        if let Some(cut_at) = cut_at {
            shortened.push_str(&message[copied_to..cut_at]);
            shortened.push('…');
            copied_to = inner_end;
        }
        // Past the closing quote, which is copied with the text after it.
        at = inner_end + 1;
    }
    let shortened = if copied_to == 0 {
        Cow::Borrowed(message)
    } else {
        shortened.push_str(&message[copied_to..]);
        Cow::Owned(shortened)
    };
    match cut_after(&shortened, MESSAGE_CHARACTERS) {
        Some(cut) => Cow::Owned(cut),
        None => shortened,
    }
}

/// `value` (a client's own text, named whole in a message) cut to [`QUOTED_CHARACTERS`]
/// characters and marked with `…` when it is longer.
pub(crate) fn shorten_value(value: &str) -> Cow<'_, str> {
    cut_after(value, QUOTED_CHARACTERS).map_or(Cow::Borrowed(value), Cow::Owned)
}

/// `text`'s first `limit` characters and `…`, when it has more.
fn cut_after(text: &str, limit: usize) -> Option<String> {
    let (cut, _) = text.char_indices().nth(limit)?;
    Some(format!("{}…", &text[..cut]))
}

/// For the text after an opening `quote`: where its closing quote is (an escaped `\"` does
/// not close a double-quoted value; backticks have no escapes), and where to cut the value when
/// it is longer than [`QUOTED_CHARACTERS`] — after whole characters and whole escapes, so a cut
/// never leaves half of `\u{1f600}` behind. `None` when the quote is never closed.
fn quoted_end(text: &str, quote: u8) -> Option<(usize, Option<usize>)> {
    let bytes = text.as_bytes();
    let mut units = 0;
    let mut cut = None;
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == quote {
            return Some((at, cut));
        }
        if units == QUOTED_CHARACTERS && cut.is_none() {
            cut = Some(at);
        }
        units += 1;
        at += if quote == b'"' && bytes[at] == b'\\' {
            escape_length(&bytes[at..])
        } else {
            text[at..].chars().next().map_or(1, char::len_utf8)
        };
    }
    None
}

/// The length in bytes of the escape at the start of `bytes` (which starts with `\`): `\u{…}`
/// up to its brace, any other `\x` two bytes.
fn escape_length(bytes: &[u8]) -> usize {
    if bytes.get(1) == Some(&b'u') && bytes.get(2) == Some(&b'{') {
        bytes
            .iter()
            .position(|&byte| byte == b'}')
            .map_or(bytes.len(), |brace| brace + 1)
    } else {
        2.min(bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_kept_as_they_are() {
        for message in [
            "invalid type: string \"abc\", expected u32",
            "unknown variant `newest`, expected `createdAt` or `title`",
            "a message with no quotes at all that is longer than sixty-four characters in all",
        ] {
            assert!(matches!(shorten_quoted_values(message), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn long_quoted_values_are_cut_and_the_rest_of_the_message_kept() {
        let long = "x".repeat(100_000);
        let message = format!("invalid type: string {long:?}, expected u32");
        let shortened = shorten_quoted_values(&message);
        assert_eq!(
            shortened,
            format!("invalid type: string \"{}…\", expected u32", "x".repeat(64))
        );
        let message = format!("unknown variant `{long}`, expected `createdAt` or `title`");
        assert_eq!(
            shorten_quoted_values(&message),
            format!(
                "unknown variant `{}…`, expected `createdAt` or `title`",
                "x".repeat(64)
            )
        );
    }

    #[test]
    fn a_value_of_exactly_the_limit_is_whole_and_one_more_is_cut() {
        let exact = "y".repeat(64);
        let message = format!("invalid type: string {exact:?}, expected u32");
        assert_eq!(shorten_quoted_values(&message), message);
        let over = "y".repeat(65);
        let message = format!("invalid type: string {over:?}, expected u32");
        assert_eq!(
            shorten_quoted_values(&message),
            format!("invalid type: string \"{exact}…\", expected u32")
        );
    }

    #[test]
    fn cuts_fall_between_whole_escapes_and_characters() {
        // In serde's `Debug` form the pattern is five units: `é`, `\"`, `😀`, `\n`, `\u{7}`.
        let value = "é\"\u{1f600}\n\u{7}".repeat(30);
        let message = format!("invalid type: string {value:?}, expected u32");
        let pattern = "é\\\"\u{1f600}\\n\\u{7}";
        assert!(message.contains(pattern), "{message}");
        // 64 units: twelve whole patterns and the first four units of the next.
        assert_eq!(
            shorten_quoted_values(&message),
            format!(
                "invalid type: string \"{}é\\\"\u{1f600}\\n…\", expected u32",
                pattern.repeat(12)
            )
        );
    }

    #[test]
    fn whole_values_are_cut_after_the_limit() {
        assert_eq!(shorten_value("tag"), "tag");
        assert_eq!(shorten_value(&"k".repeat(64)), "k".repeat(64));
        assert_eq!(
            shorten_value(&"ü".repeat(65)),
            format!("{}…", "ü".repeat(64))
        );
    }

    #[test]
    fn escaped_quotes_do_not_end_a_value() {
        let value = format!("{}\"{}", "a".repeat(10), "b".repeat(100));
        let message = format!("invalid type: string {value:?}, expected u32");
        let shortened = shorten_quoted_values(&message);
        assert!(shortened.ends_with("…\", expected u32"), "{shortened}");
        assert!(!shortened.contains(&"b".repeat(60)), "{shortened}");
    }

    #[test]
    fn an_unclosed_or_stray_quote_still_leaves_a_bounded_message() {
        let message = format!("unknown variant `a`{}`, expected `x`", "z".repeat(5000));
        let shortened = shorten_quoted_values(&message);
        assert!(shortened.chars().count() <= MESSAGE_CHARACTERS + 1);
        assert!(shortened.ends_with('…'));
        let message = format!("unknown field `{}", "q".repeat(5000));
        let shortened = shorten_quoted_values(&message);
        assert_eq!(shortened.chars().count(), MESSAGE_CHARACTERS + 1);
    }
}
