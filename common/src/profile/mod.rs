//! The generic profile system: base config + named profiles + user overrides,
//! merged into one JSON value that remembers where each value came from.
//!
//! Profile files are TOML (or JSON) of this shape:
//!
//! ```toml
//! [base]              # the full base config (component files only)
//! port = 80
//!
//! [profiles.fast]
//! description = "one line shown by `profiles`"
//! extends = ["other"] # optional: merged first, in order
//! aliases = ["quick"]  # optional: other names that select this profile
//! [profiles.fast.config]
//! port = 8080
//! ```

pub mod merge;
mod overrides;
pub mod provenance;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

pub use merge::{deep_merge, merged};
pub use overrides::{parse_set, read_data_file};
pub use provenance::{dotted, Provenance, Source};

use crate::error::ConfigError;
use crate::suggest::closest;

/// One named profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub extends: Vec<String>,
    /// Other names that select this profile (old names kept working).
    pub aliases: Vec<String>,
    pub config: Value,
    /// The user file it came from; `None` for the component's own profiles.
    pub file: Option<PathBuf>,
}

impl Profile {
    fn source(&self) -> Source {
        match &self.file {
            None => Source::Profile(self.name.clone()),
            Some(f) => Source::UserProfile {
                profile: self.name.clone(),
                file: f.clone(),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    base: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    profiles: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: String,
    #[serde(default)]
    extends: Vec<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    config: serde_json::Map<String, Value>,
}

/// Whether `s` can name a profile: it ends up in image tags, paths, Nix
/// attribute names and shell words, so only `[a-z0-9-]`, 1 to 63 long.
pub fn is_profile_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The base config and the profiles of one component, in definition order.
#[derive(Clone, Debug)]
pub struct ProfileSet {
    pub base: Value,
    pub profiles: Vec<Profile>,
}

/// What a user asked for: a profile, extra profile files, override files and `--set`s.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub profile: String,
    pub profile_files: Vec<PathBuf>,
    pub override_files: Vec<PathBuf>,
    pub sets: Vec<String>,
}

/// A merged, not yet validated config.
#[derive(Clone, Debug)]
pub struct Merged {
    pub profile: String,
    pub value: Value,
    pub provenance: Provenance,
}

impl ProfileSet {
    /// Parses a component's own profile file (TOML), which must have a `[base]` table.
    pub fn from_component_toml(name: &str, text: &str) -> Result<Self, ConfigError> {
        let origin = format!("the {name} profile file");
        let value: Value = toml::from_str(text).map_err(|e| ConfigError::ProfileFile {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        let mut set = ProfileSet {
            base: Value::Object(Default::default()),
            profiles: Vec::new(),
        };
        let base = set.add(value, None, &origin)?;
        set.base = Value::Object(base.ok_or_else(|| ConfigError::ProfileFile {
            origin,
            reason: "missing [base] table".into(),
        })?);
        Ok(set)
    }

    /// Adds (or replaces) profiles from a user's `--profiles FILE` (TOML or JSON).
    pub fn add_user_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let value = read_data_file(path)?;
        let origin = path.display().to_string();
        if self.add(value, Some(path), &origin)?.is_some() {
            return Err(ConfigError::ProfileFile {
                origin,
                reason: "a user profile file may not replace [base]; put the values in a profile"
                    .into(),
            });
        }
        Ok(())
    }

    fn add(
        &mut self,
        value: Value,
        file: Option<&Path>,
        origin: &str,
    ) -> Result<Option<serde_json::Map<String, Value>>, ConfigError> {
        let bad = |reason: String| ConfigError::ProfileFile {
            origin: origin.to_owned(),
            reason,
        };
        let raw: RawFile = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        for (name, body) in raw.profiles {
            let p: RawProfile =
                serde_json::from_value(body).map_err(|e| bad(format!("profile `{name}`: {e}")))?;
            for n in std::iter::once(&name).chain(&p.aliases) {
                if !is_profile_name(n) {
                    return Err(bad(format!(
                        "profile name `{n}`: use lower-case letters, digits and `-` (at most 63, \
                         starting with a letter or digit); it becomes an image tag, a directory \
                         and a Nix attribute name"
                    )));
                }
                let taken = self
                    .profiles
                    .iter()
                    .any(|q| q.name != name && (q.name == *n || q.aliases.iter().any(|a| a == n)));
                if taken || (*n != name && p.aliases.iter().filter(|a| *a == n).count() > 1) {
                    return Err(bad(format!(
                        "profile `{name}`: the name `{n}` is already taken by another profile or alias"
                    )));
                }
            }
            let profile = Profile {
                name: name.clone(),
                description: p.description,
                extends: p.extends,
                aliases: p.aliases,
                config: Value::Object(p.config),
                file: file.map(Path::to_path_buf),
            };
            match self.profiles.iter_mut().find(|q| q.name == name) {
                Some(slot) => *slot = profile,
                None => self.profiles.push(profile),
            }
        }
        Ok(raw.base)
    }

    /// Profile names in definition order.
    pub fn names(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.name.as_str()).collect()
    }

    /// Looks a profile up by name or alias, or says which ones exist.
    pub fn get(&self, name: &str) -> Result<&Profile, ConfigError> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .or_else(|| {
                self.profiles
                    .iter()
                    .find(|p| p.aliases.iter().any(|a| a == name))
            })
            .ok_or_else(|| ConfigError::UnknownProfile {
                name: name.to_owned(),
                available: self.names().iter().map(|s| s.to_string()).collect(),
                suggestion: closest(name, self.names()),
            })
    }

    /// The layers of a profile, `extends` first (depth first, in order), itself last.
    pub fn layers(&self, name: &str) -> Result<Vec<(Source, Value)>, ConfigError> {
        let mut out = Vec::new();
        self.collect_layers(name, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    fn collect_layers(
        &self,
        name: &str,
        stack: &mut Vec<String>,
        out: &mut Vec<(Source, Value)>,
    ) -> Result<(), ConfigError> {
        if stack.iter().any(|s| s == name) {
            let mut chain = stack.clone();
            chain.push(name.to_owned());
            return Err(ConfigError::ProfileCycle {
                profile: stack[0].clone(),
                chain,
            });
        }
        let p = self.get(name)?;
        stack.push(name.to_owned());
        for parent in &p.extends {
            self.collect_layers(parent, stack, out)?;
        }
        stack.pop();
        out.push((p.source(), p.config.clone()));
        Ok(())
    }

    /// deep-merge(base, profile, override files, --sets), with provenance.
    pub fn merge(&self, req: &Request) -> Result<Merged, ConfigError> {
        let mut layers = vec![(Source::Base, self.base.clone())];
        layers.extend(self.layers(&req.profile)?);
        for f in &req.override_files {
            layers.push((Source::OverridesFile(f.clone()), read_data_file(f)?));
        }
        for s in &req.sets {
            layers.push((Source::Set(s.clone()), parse_set(s)?));
        }
        let mut value = Value::Object(Default::default());
        let mut provenance = Provenance::default();
        for (source, layer) in layers {
            provenance.record(&layer, &source);
            deep_merge(&mut value, layer);
        }
        Ok(Merged {
            profile: self.get(&req.profile)?.name.clone(),
            value,
            provenance,
        })
    }
}

/// The whole pipeline up to the merge: the component's profiles, then the user's
/// profile files, then the layers of the request.
pub fn merge_request(
    component: &str,
    toml_text: &str,
    req: &Request,
) -> Result<Merged, ConfigError> {
    let mut set = ProfileSet::from_component_toml(component, toml_text)?;
    for f in &req.profile_files {
        set.add_user_file(f)?;
    }
    set.merge(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"
[base]
a = 1
[base.t]
x = 1
y = [1, 2]

[profiles.one]
description = "first"
[profiles.one.config.t]
x = 2

[profiles.two]
description = "second"
config = { a = 5, t = { y = [9] } }

[profiles.both]
description = "one then two"
extends = ["one", "two"]
"#;

    fn req(profile: &str, sets: &[&str]) -> Request {
        Request {
            profile: profile.into(),
            sets: sets.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn extends_merges_parents_in_order() {
        let set = ProfileSet::from_component_toml("t", FILE).unwrap();
        assert_eq!(set.names(), ["one", "two", "both"]);
        let m = set.merge(&req("both", &[])).unwrap();
        assert_eq!(m.value, json!({"a": 5, "t": {"x": 2, "y": [9]}}));
        assert_eq!(
            m.provenance.source_of("t.x"),
            Some(&Source::Profile("one".into()))
        );
        assert_eq!(
            m.provenance.source_of("a"),
            Some(&Source::Profile("two".into()))
        );
    }

    #[test]
    fn sets_win_over_the_profile() {
        let set = ProfileSet::from_component_toml("t", FILE).unwrap();
        let m = set.merge(&req("one", &["t.x=7", "a=word"])).unwrap();
        assert_eq!(m.value["t"]["x"], json!(7));
        assert_eq!(m.value["a"], json!("word"));
        assert_eq!(
            m.provenance.source_of("t.x"),
            Some(&Source::Set("t.x=7".into()))
        );
    }

    #[test]
    fn unknown_profile_lists_and_suggests() {
        let set = ProfileSet::from_component_toml("t", FILE).unwrap();
        let e = set.merge(&req("bothh", &[])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("did you mean `both`"), "{msg}");
        assert!(msg.contains("one, two, both"), "{msg}");
    }

    #[test]
    fn profile_names_are_safe_words_and_unique() {
        for bad in ["Big", "a b", "a;b", "-x", "über", "x/y"] {
            let text = format!("{FILE}\n[profiles.\"{bad}\"]\ndescription='x'\n");
            let e = ProfileSet::from_component_toml("t", &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains("lower-case letters"), "{bad}: {e}");
        }
        let text = format!("{FILE}\n[profiles.three]\ndescription='x'\naliases=['one']\n");
        let e = ProfileSet::from_component_toml("t", &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("already taken"), "{e}");
        let text = format!("{FILE}\n[profiles.three]\ndescription='x'\naliases=['Bad Alias']\n");
        assert!(ProfileSet::from_component_toml("t", &text).is_err());
    }

    #[test]
    fn an_alias_selects_its_profile() {
        let text = format!(
            "{FILE}\n[profiles.three]\ndescription='x'\naliases=['old-three']\nconfig={{a=3}}\n"
        );
        let set = ProfileSet::from_component_toml("t", &text).unwrap();
        let m = set.merge(&req("old-three", &[])).unwrap();
        assert_eq!(m.profile, "three");
        assert_eq!(m.value["a"], 3);
        assert!(set.merge(&req("old-thre", &[])).is_err());
    }

    #[test]
    fn cycles_are_reported() {
        let text = format!("{FILE}\n[profiles.c1]\ndescription='x'\nextends=['c2']\n[profiles.c2]\ndescription='y'\nextends=['c1']\n");
        let set = ProfileSet::from_component_toml("t", &text).unwrap();
        let e = set.merge(&req("c1", &[])).unwrap_err();
        assert!(e.to_string().contains("c1 -> c2 -> c1"), "{e}");
    }

    #[test]
    fn malformed_profiles_are_rejected() {
        for bad in [
            "[profiles.x]\ndescription='d'\n",                   // no base
            "[base]\n[profiles.x]\n",                            // no description
            "[base]\n[profiles.x]\ndescription='d'\ncolour=1\n", // unknown profile key
            "[base]\nbogus = [",                                 // not TOML
        ] {
            assert!(
                matches!(
                    ProfileSet::from_component_toml("t", bad),
                    Err(ConfigError::ProfileFile { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn user_profile_files_add_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mine.toml");
        std::fs::write(&f, "[profiles.one]\ndescription='mine'\nconfig={a=42}\n[profiles.new]\ndescription='n'\nextends=['one']\n").unwrap();
        let mut set = ProfileSet::from_component_toml("t", FILE).unwrap();
        set.add_user_file(&f).unwrap();
        assert_eq!(set.names(), ["one", "two", "both", "new"]);
        let m = set.merge(&req("new", &[])).unwrap();
        assert_eq!(m.value, json!({"a": 42, "t": {"x": 1, "y": [1, 2]}}));
        assert!(matches!(
            m.provenance.source_of("a"),
            Some(Source::UserProfile { .. })
        ));

        let g = dir.path().join("base.json");
        std::fs::write(&g, r#"{"base": {"a": 1}}"#).unwrap();
        assert!(set.add_user_file(&g).is_err());
    }

    #[test]
    fn override_files_sit_between_profile_and_sets() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("o.json");
        std::fs::write(&f, r#"{"a": 10, "t": {"x": 10}}"#).unwrap();
        let set = ProfileSet::from_component_toml("t", FILE).unwrap();
        let mut r = req("one", &["a=11"]);
        r.override_files.push(f.clone());
        let m = set.merge(&r).unwrap();
        assert_eq!(m.value["a"], json!(11));
        assert_eq!(m.value["t"]["x"], json!(10));
        assert_eq!(
            m.provenance.source_of("t.x"),
            Some(&Source::OverridesFile(f))
        );
    }
}
