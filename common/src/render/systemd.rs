//! systemd unit file syntax.

use super::{Piece, Template};

/// `s` as one word of an `ExecStart=` line: `%` → `%%` (specifiers), `$` → `$$`
/// (variable expansion), quoted when it holds spaces, quotes or backslashes.
pub fn exec_word(s: &str) -> String {
    let escaped = s.replace('%', "%%").replace('$', "$$");
    let needs_quotes = escaped.is_empty()
        || escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'));
    if needs_quotes {
        format!(
            "\"{}\"",
            escaped
                .replace('\\', r"\\")
                .replace('"', "\\\"")
                .replace('\n', r"\n")
        )
    } else {
        escaped
    }
}

/// A template as one `ExecStart=` word; variables become `${VAR}` (set with
/// `Environment=`).
pub fn exec_template(t: &Template) -> String {
    let mut plain = String::new();
    let mut quoted = false;
    for p in t.pieces() {
        match p {
            Piece::Text(s) => {
                let w = exec_word(s);
                if w.starts_with('"') {
                    quoted = true;
                    plain.push_str(&w[1..w.len() - 1]);
                } else {
                    plain.push_str(&w);
                }
            }
            Piece::Var(v) => plain.push_str(&format!("${{{v}}}")),
        }
    }
    if quoted {
        format!("\"{plain}\"")
    } else {
        plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_dollar_are_doubled() {
        assert_eq!(exec_word("seg%05d.ts"), "seg%%05d.ts");
        assert_eq!(exec_word("$HOME"), "$$HOME");
        assert_eq!(exec_word("a b"), "\"a b\"");
        assert_eq!(exec_word(""), "\"\"");
        let mut t = Template::var("HLS_DIR");
        t.push_text("/seg%05d.ts");
        assert_eq!(exec_template(&t), "${HLS_DIR}/seg%%05d.ts");
    }
}
