//! Nix expression syntax.

/// The inside of a double-quoted Nix string: `\`, `"` and `${` escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a double-quoted Nix string.
pub fn string(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

/// `s` as an indented (`''`) Nix string, for multi-line text such as a config
/// file: `''` and `${` are escaped.
pub fn indented(s: &str, indent: &str) -> String {
    let body = s.replace("''", "'''").replace("${", "''${");
    let mut out = String::from("''\n");
    for line in body.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(indent);
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&indent[..indent.len().saturating_sub(2)]);
    out.push_str("''");
    out
}

/// An attribute name: bare when it is an identifier, quoted otherwise.
pub fn attr(name: &str) -> String {
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''));
    if ident {
        name.to_owned()
    } else {
        string(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(string("a\"b\\c${x}$y"), r#""a\"b\\c\${x}$y""#);
        assert_eq!(attr("hls-generator"), "hls-generator");
        assert_eq!(attr("net.core.somaxconn"), "\"net.core.somaxconn\"");
        assert_eq!(
            indented("a ''b'' ${c}\n", "    "),
            "''\n    a '''b''' ''${c}\n  ''"
        );
    }
}
