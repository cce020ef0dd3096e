//! Where every value of a merged config came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

/// The layer that set a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The component's base config.
    Base,
    /// A profile shipped with the component.
    Profile(String),
    /// A profile from a user's `--profiles FILE`.
    UserProfile { profile: String, file: PathBuf },
    /// An `--overrides FILE`.
    OverridesFile(PathBuf),
    /// One `--set PATH=VALUE` argument, as given.
    Set(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Base => f.write_str("the base config"),
            Source::Profile(p) => write!(f, "profile `{p}`"),
            Source::UserProfile { profile, file } => {
                write!(f, "profile `{profile}` in {}", file.display())
            }
            Source::OverridesFile(p) => write!(f, "--overrides {}", p.display()),
            // a long value is not echoed in full
            Source::Set(arg) if arg.chars().count() > 80 => write!(
                f,
                "--set {}… ({} characters)",
                arg.chars().take(60).collect::<String>(),
                arg.chars().count()
            ),
            Source::Set(arg) => write!(f, "--set {arg}"),
        }
    }
}

/// A dotted path (`hls.segmentDuration`, `variants[0].name`) for a JSON pointer
/// into `root`.
pub fn dotted(root: &Value, pointer_segments: &[String]) -> String {
    let mut out = String::new();
    let mut node = Some(root);
    for seg in pointer_segments {
        match node {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{seg}]"));
                node = seg.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(seg);
                node = other.and_then(|v| v.get(seg.as_str()));
            }
        }
    }
    out
}

/// The source of each leaf path written by the merge, later layers replacing
/// earlier ones.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    by_path: BTreeMap<String, Source>,
}

impl Provenance {
    /// Records that every leaf of `layer` (a table merged at the root) comes from `source`.
    pub fn record(&mut self, layer: &Value, source: &Source) {
        self.record_at(layer, String::new(), source);
    }

    fn record_at(&mut self, v: &Value, path: String, source: &Source) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    self.record_at(x, p, source);
                }
            }
            _ => {
                // a non-table replaces whatever was below this path
                let below = format!("{path}.");
                self.by_path
                    .retain(|p, _| !(p.starts_with(&below) || p.starts_with(&format!("{path}["))));
                self.by_path.insert(path, source.clone());
            }
        }
    }

    /// The latest layer that set the value at `path` or anything in it:
    /// for a problem with a table as a whole (too many entries, a bad
    /// key), which an entry added by `--set` may have caused.
    pub fn source_within(&self, path: &str) -> Option<&Source> {
        let rank = |s: &Source| match s {
            Source::Base => 0,
            Source::Profile(_) => 1,
            Source::UserProfile { .. } => 2,
            Source::OverridesFile(_) => 3,
            Source::Set(_) => 4,
        };
        let below = format!("{path}.");
        let inside = format!("{path}[");
        self.by_path
            .iter()
            .filter(|(p, _)| p.starts_with(&below) || p.starts_with(&inside))
            .map(|(_, s)| s)
            .max_by_key(|s| rank(s))
            .filter(|s| self.source_of(path).is_none_or(|own| rank(s) >= rank(own)))
            .or_else(|| self.source_of(path))
    }

    /// The source of the value at `path` (or of the closest enclosing value).
    pub fn source_of(&self, path: &str) -> Option<&Source> {
        let mut p = path;
        loop {
            if let Some(s) = self.by_path.get(p) {
                return Some(s);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_layers_win_and_lookup_walks_up() {
        let mut p = Provenance::default();
        p.record(
            &json!({"hls": {"a": 1, "b": 2}, "variants": [1]}),
            &Source::Base,
        );
        p.record(&json!({"hls": {"a": 3}}), &Source::Profile("x".into()));
        assert_eq!(p.source_of("hls.a"), Some(&Source::Profile("x".into())));
        assert_eq!(p.source_of("hls.b"), Some(&Source::Base));
        assert_eq!(p.source_of("variants[0].name"), Some(&Source::Base));
        assert_eq!(p.source_of("nothing"), None);
    }

    #[test]
    fn dotted_paths_index_lists() {
        let root = json!({"variants": [{"name": "a"}]});
        let segs: Vec<String> = ["variants", "0", "name"].map(String::from).to_vec();
        assert_eq!(dotted(&root, &segs), "variants[0].name");
    }
}
