//! POSIX shell (bash) quoting.

use super::{Piece, Template};

/// `s` as one shell word: left bare when it is only safe characters, otherwise
/// single-quoted. A NUL byte cannot be passed to a program at all and is replaced
/// by nothing visible: callers validate against it first.
pub fn quote(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '\0').collect();
    shlex::try_quote(&clean)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("'{}'", clean.replace('\'', r"'\''")))
}

/// A template as one shell word; variables expand at run time (`"${HLS_DIR}"`).
pub fn word(t: &Template) -> String {
    if t.pieces().is_empty() {
        return "''".into();
    }
    t.pieces()
        .iter()
        .map(|p| match p {
            Piece::Text(s) => quote(s),
            Piece::Var(v) => format!("\"${{{v}}}\""),
        })
        .collect()
}

/// Words of a command line, one per line with `\` continuations after the first.
pub fn command(words: &[Template]) -> String {
    let parts: Vec<String> = words.iter().map(word).collect();
    parts.join(" \\\n    ")
}

/// Words of a command line, each option (a word starting with `-`) with the
/// words after it on a line of its own, `\` continuations between them.
pub fn command_by_option(words: &[Template]) -> String {
    let mut lines: Vec<Vec<String>> = Vec::new();
    for w in words {
        let option = w.as_plain().is_some_and(|t| t.starts_with('-'));
        match lines.last_mut() {
            Some(line) if !option => line.push(word(w)),
            _ => lines.push(vec![word(w)]),
        }
    }
    lines
        .iter()
        .map(|l| l.join(" "))
        .collect::<Vec<_>>()
        .join(" \\\n    ")
}

/// A template as the body of an unquoted here-document (`<<EOF`): text is
/// protected from expansion, variables expand.
pub fn heredoc_body(t: &Template) -> String {
    t.pieces()
        .iter()
        .map(|p| match p {
            Piece::Text(s) => s
                .replace('\\', r"\\")
                .replace('$', r"\$")
                .replace('`', r"\`"),
            Piece::Var(v) => format!("${{{v}}}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh_echo(script: &str) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("HLS_DIR", "/tmp/h d")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_command_by_option_keeps_each_option_with_its_values() {
        let words = [
            Template::text("run"),
            Template::var("URL"),
            Template::text("--set"),
            Template::text("a b"),
            Template::text("--quiet"),
        ];
        let text = command_by_option(&words);
        assert_eq!(text, "run \"${URL}\" \\\n    --set 'a b' \\\n    --quiet");
        let out = sh_echo(&format!("URL=u; printf '<%s>' {text}"));
        assert_eq!(out, "<run><u><--set><a b><--quiet>");
    }

    #[test]
    fn quoted_words_reach_the_program_unchanged() {
        for s in [
            "plain", "/tmp/a b", "x;y", "}", "\"", "$HOME", "a\nb", "it's", "`id`", "", "*",
        ] {
            let got = sh_echo(&format!("printf %s {}", quote(s)));
            assert_eq!(got, s, "{s:?} quoted as {}", quote(s));
        }
    }

    #[test]
    fn variables_expand_at_run_time_text_does_not() {
        let mut t = Template::var("HLS_DIR");
        t.push_text("/$x;`y`");
        assert_eq!(
            sh_echo(&format!("printf %s {}", word(&t))),
            "/tmp/h d/$x;`y`"
        );
        let body = heredoc_body(&t);
        assert_eq!(
            sh_echo(&format!("cat <<EOF\n{body}\nEOF")),
            "/tmp/h d/$x;`y`\n"
        );
    }
}
