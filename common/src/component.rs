//! The `Component` trait: what a crate supplies to get profiles, validation,
//! the common CLI and (later) every deployment target.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ConfigError, Problem};
use crate::profile::{merge_request, Provenance, Request};
use crate::schema::{schema_of, validate};

/// A component of the lab (test origin, swarm client, …).
pub trait Component {
    /// Short name, also the binary's name (`my-origin`).
    const NAME: &'static str;
    /// One line saying what it is, for its `--help`
    /// (`env!("CARGO_PKG_DESCRIPTION")` of its crate).
    const ABOUT: &'static str;
    /// The crate's profile file (`include_str!("../profiles.toml")`).
    const PROFILES_TOML: &'static str;
    /// Two `--set` examples of this component's own keys, for its help
    /// (`clients=200`); a test runs each.
    const SET_EXAMPLES: [&'static str; 2];

    /// The typed config. Its schema is derived with schemars; unknown keys must be
    /// rejected (`#[serde(deny_unknown_fields)]`).
    type Config: Serialize + DeserializeOwned + JsonSchema;
    /// Values computed from the config (pure, numbers only).
    type Derived: Serialize;

    /// Derived values of a validated config.
    fn derive(config: &Self::Config) -> Self::Derived;

    /// Rules across fields that the schema cannot say: `(dotted path, message)`.
    fn check(_config: &Self::Config) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The JSON Schema of the results a run writes, for components whose
    /// runs write results (`schema --results`).
    fn results_schema() -> Option<serde_json::Value> {
        None
    }
}

/// A validated config with everything computed from it.
#[derive(Debug)]
pub struct Loaded<C: Component> {
    pub profile: String,
    pub config: C::Config,
    pub derived: C::Derived,
    pub provenance: Provenance,
}

impl<C: Component> Loaded<C> {
    /// The merged config with the derived values under `derived` (what `config` prints).
    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(&self.config).expect("configs serialize");
        if let Value::Object(m) = &mut v {
            m.insert(
                "derived".into(),
                serde_json::to_value(&self.derived).expect("derived values serialize"),
            );
        }
        v
    }
}

/// The names of a component's own profiles, in definition order.
pub fn profile_names<C: Component>() -> Result<Vec<String>, ConfigError> {
    let set = crate::profile::ProfileSet::from_component_toml(C::NAME, C::PROFILES_TOML)?;
    Ok(set.names().iter().map(|s| s.to_string()).collect())
}

/// The JSON Schema of a component's config.
pub fn schema<C: Component>() -> Value {
    schema_of::<C::Config>()
}

/// load → deep-merge → JSON Schema → typed → cross-field checks → derived.
pub fn load<C: Component>(req: &Request) -> Result<Loaded<C>, ConfigError> {
    let merged = merge_request(C::NAME, C::PROFILES_TOML, req)?;
    validate(&schema::<C>(), &merged.value, &merged.provenance)?;
    let config: C::Config =
        serde_json::from_value(merged.value).map_err(|e| ConfigError::Invalid {
            problems: vec![Problem {
                path: String::new(),
                message: e.to_string(),
                source: None,
            }],
        })?;
    let cross: Vec<Problem> = C::check(&config)
        .into_iter()
        .map(|(path, message)| Problem {
            source: merged.provenance.source_of(&path).cloned(),
            path,
            message,
        })
        .collect();
    if !cross.is_empty() {
        return Err(ConfigError::Invalid { problems: cross });
    }
    let derived = C::derive(&config);
    Ok(Loaded {
        profile: merged.profile,
        config,
        derived,
        provenance: merged.provenance,
    })
}
