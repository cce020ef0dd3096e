//! Rendering text for other languages, in one place each.
//!
//! Generators build [`Template`]s: text with named variables (`PORT`, `HLS_DIR`)
//! left open. A template is then rendered for its destination: resolved to a
//! plain string for a process we start, or written into a shell script (where the
//! variables are read at run time), or into a systemd unit.

pub mod nginx;
pub mod nix;
pub mod shell;
pub mod sysctl;
pub mod systemd;
pub mod yaml;

use std::fmt;

/// One piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// A variable, by name (`[A-Z_][A-Z0-9_]*`), filled in where the text is used.
    Var(&'static str),
}

/// Text with open variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub fn new() -> Self {
        Self::default()
    }

    /// A template of plain text.
    pub fn text(s: impl Into<String>) -> Self {
        let mut t = Self::new();
        t.push_text(&s.into());
        t
    }

    /// A template that is one variable.
    pub fn var(name: &'static str) -> Self {
        debug_assert!(
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "variable names are upper-case identifiers"
        );
        Self {
            pieces: vec![Piece::Var(name)],
        }
    }

    pub fn push_text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.pieces.last_mut() {
            Some(Piece::Text(t)) => t.push_str(s),
            _ => self.pieces.push(Piece::Text(s.to_owned())),
        }
    }

    pub fn push(&mut self, other: &Template) {
        for p in &other.pieces {
            match p {
                Piece::Text(t) => self.push_text(t),
                Piece::Var(v) => self.pieces.push(Piece::Var(v)),
            }
        }
    }

    /// `self` followed by `s`.
    pub fn join(&self, s: &str) -> Template {
        let mut t = self.clone();
        t.push_text(s);
        t
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The variables used, in order of first use.
    pub fn vars(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for p in &self.pieces {
            if let Piece::Var(v) = p {
                if !out.contains(v) {
                    out.push(*v);
                }
            }
        }
        out
    }

    /// The text with every variable filled in by `lookup`.
    pub fn resolve(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, UnboundVar> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&lookup(v).ok_or(UnboundVar(v))?),
            }
        }
        Ok(out)
    }

    /// The template with the variables `lookup` knows filled in and the
    /// others left as they are.
    pub fn bind(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Template {
        let mut out = Template::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_text(t),
                Piece::Var(v) => match lookup(v) {
                    Some(value) => out.push_text(&value),
                    None => out.push(&Template::var(v)),
                },
            }
        }
        out
    }

    /// The text of a template without variables.
    pub fn as_plain(&self) -> Option<String> {
        self.resolve(&|_| None).ok()
    }
}

impl fmt::Write for Template {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_text(s);
        Ok(())
    }
}

impl From<&str> for Template {
    fn from(s: &str) -> Self {
        Template::text(s)
    }
}

impl From<String> for Template {
    fn from(s: String) -> Self {
        Template::text(s)
    }
}

/// A template variable that nobody set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template variable `{0}` has no value")]
pub struct UnboundVar(pub &'static str);

/// Resolves every word of a command line.
pub fn resolve_all(
    words: &[Template],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, UnboundVar> {
    words.iter().map(|w| w.resolve(lookup)).collect()
}

/// `1970-01-01T00:00:00Z` (or `…00.000Z` with `millis`) of a time in
/// milliseconds since the Unix epoch: image dates, program date-times.
pub fn rfc3339(ms: u64, millis: bool) -> String {
    let secs = ms / 1000;
    let days = secs / 86400;
    let rem = secs % 86400;
    // civil from days (Howard Hinnant)
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let fraction = if millis {
        format!(".{:03}", ms % 1000)
    } else {
        String::new()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn bind_fills_in_what_it_knows_and_keeps_the_rest() {
        let mut t = Template::var("A");
        t.push_text("/");
        t.push(&Template::var("B"));
        let bound = t.bind(&|v| (v == "A").then(|| "/srv".to_owned()));
        assert_eq!(bound.vars(), ["B"]);
        assert_eq!(bound.resolve(&|_| Some("x".into())).unwrap(), "/srv/x");
    }

    #[test]
    fn text_and_vars_resolve() {
        let mut t = Template::var("HLS_DIR");
        let pattern = "%05d";
        write!(t, "/seg{pattern}.ts").unwrap();
        assert_eq!(t.vars(), ["HLS_DIR"]);
        let got = t
            .resolve(&|v| (v == "HLS_DIR").then(|| "/tmp/x".into()))
            .unwrap();
        assert_eq!(got, "/tmp/x/seg%05d.ts");
        assert_eq!(t.resolve(&|_| None), Err(UnboundVar("HLS_DIR")));
        assert_eq!(
            Template::text("a").join("b").as_plain().as_deref(),
            Some("ab")
        );
    }

    #[test]
    fn dates_with_and_without_milliseconds() {
        assert_eq!(
            super::rfc3339(1_700_000_000_123, true),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            super::rfc3339(1_700_000_000_123, false),
            "2023-11-14T22:13:20Z"
        );
    }
}
