//! What a component offers, as data: its profiles and targets. `cargo xtask`
//! walks these descriptions (one line per component in its registry) to
//! build everything and to write `nix/profiles.json` for the flake.

use serde::Serialize;

use crate::deploy::{TargetKind, Targets};
use crate::profile::ProfileSet;

/// One component: its profiles (in definition order) and targets.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentInfo {
    pub name: &'static str,
    pub profiles: Vec<ProfileInfo>,
    pub targets: Vec<&'static str>,
    /// Programs its artifacts take from the host.
    pub programs: Vec<&'static str>,
    /// The same with the Debian package of each (for [`TargetKind::host_programs`]).
    #[serde(skip)]
    pub program_packages: Vec<(&'static str, &'static str)>,
    /// File name of its runner script (`bin/<runner>`), when it has one.
    pub runner: Option<String>,
    /// Files the `configs` target writes besides `<name>.json`.
    pub config_files: Vec<String>,
}

/// One profile.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileInfo {
    pub name: String,
    pub description: String,
    /// Other names that select it.
    pub aliases: Vec<String>,
}

/// The description of component `C`.
///
/// Panics when the component's own profile file or default profile is
/// broken, which the component's tests catch first.
pub fn describe<C: Targets>() -> ComponentInfo {
    let set = ProfileSet::from_component_toml(C::NAME, C::PROFILES_TOML)
        .unwrap_or_else(|e| panic!("{}: {e}", C::NAME));
    let l = crate::component::load::<C>(&crate::profile::Request {
        profile: set.profiles[0].name.clone(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{}: {e}", C::NAME));
    let runner = C::TARGETS.contains(&TargetKind::Runner).then(|| {
        C::runner(&l)
            .unwrap_or_else(|e| panic!("{}: {e}", C::NAME))
            .name
    });
    ComponentInfo {
        name: C::NAME,
        profiles: set
            .profiles
            .iter()
            .map(|p| ProfileInfo {
                name: p.name.clone(),
                description: p.description.clone(),
                aliases: p.aliases.clone(),
            })
            .collect(),
        targets: C::TARGETS.iter().map(|k| k.as_str()).collect(),
        programs: C::PROGRAMS.iter().map(|(n, _)| *n).collect(),
        program_packages: C::PROGRAMS.to_vec(),
        runner,
        config_files: C::config_files(&l)
            .into_iter()
            .map(|(path, _)| path)
            .collect(),
    }
}
