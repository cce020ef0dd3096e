//! The live HLS test origin: config, derived values and the generators that
//! turn a validated config into FFmpeg arguments, nginx configs, cache headers
//! and sysctls. Generators are pure functions of the config.

pub mod banner;
pub mod cache;
pub mod config;
pub mod derive;
pub mod ffmpeg;
pub mod ll;
pub mod nginx;
pub mod run;
pub mod sysctl;
pub mod targets;

pub use config::Config;
pub use derive::Derived;

/// The test origin as a component of the framework.
pub struct TestOrigin;

impl common::Component for TestOrigin {
    const NAME: &'static str = "test-origin";
    const ABOUT: &'static str = env!("CARGO_PKG_DESCRIPTION");
    const PROFILES_TOML: &'static str = include_str!("../profiles.toml");
    const SET_EXAMPLES: [&'static str; 2] = ["hls.segmentDuration=4", "video.bitrate=1800k"];
    type Config = Config;
    type Derived = Derived;

    fn derive(config: &Config) -> Derived {
        derive::derive(config)
    }

    fn check(config: &Config) -> Vec<(String, String)> {
        config::check(config)
    }
}
