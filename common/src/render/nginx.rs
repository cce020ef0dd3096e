//! nginx configuration syntax.

/// `s` as a double-quoted nginx string.
///
/// nginx has no escape for `$` inside strings of directives that take
/// variables, so values that reach nginx are validated to contain none (see
/// `common::types`); this function refuses them rather than emit a variable.
pub fn quote(s: &str) -> String {
    assert!(
        !s.contains('$'),
        "`$` cannot be made inert in nginx text; validate it away first: {s:?}"
    );
    format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quote("/var/hls"), "\"/var/hls\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("x;y }"), "\"x;y }\"");
    }

    #[test]
    #[should_panic(expected = "cannot be made inert")]
    fn dollar_is_refused() {
        quote("$uri");
    }
}
