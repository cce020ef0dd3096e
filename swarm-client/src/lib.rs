//! The swarm client: config, derived values, viewer arguments and the swarm engine.

pub mod compare;
pub mod config;
pub mod derive;
pub mod engine;
pub mod ffmpeg_args;
pub mod grafana;
pub mod log;
pub mod merge;
pub mod native;
pub mod origin;
pub mod report;
pub mod results;
pub mod run;
pub mod sysctl;
pub mod table;
pub mod targets;

pub use config::Config;
pub use derive::Derived;

/// The swarm client as a component of the framework.
pub struct SwarmClient;

impl common::Component for SwarmClient {
    const NAME: &'static str = "swarm-client";
    const ABOUT: &'static str = env!("CARGO_PKG_DESCRIPTION");
    const PROFILES_TOML: &'static str = include_str!("../profiles.toml");
    const SET_EXAMPLES: [&'static str; 2] = ["clients=200", "variant=abr"];
    type Config = Config;
    type Derived = Derived;

    fn derive(config: &Config) -> Derived {
        derive::derive(config)
    }

    fn check(config: &Config) -> Vec<(String, String)> {
        let mut out = results::slo::check(&config.slo, config.engine == config::Engine::Native);
        out.extend(results::gate::gates(&config.slo).err().unwrap_or_default());
        out.extend(config::check_networks(config));
        out.extend(config::check_stages(config));
        out.extend(config::check_native_only(config));
        out
    }

    fn results_schema() -> Option<serde_json::Value> {
        Some(common::schema::schema_of::<results::Results>())
    }
}
