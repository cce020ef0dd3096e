//! The live HLS test origin: config, derived values and generators.

pub mod config;
pub mod derive;

pub use config::Config;
pub use derive::Derived;

/// The test origin as a component of the framework.
pub struct TestOrigin;

impl common::Component for TestOrigin {
    const NAME: &'static str = "test-origin";
    const PROFILES_TOML: &'static str = include_str!("../profiles.toml");
    type Config = Config;
    type Derived = Derived;

    fn derive(config: &Config) -> Derived {
        derive::derive(config)
    }

    fn check(config: &Config) -> Vec<(String, String)> {
        config::check(config)
    }
}
