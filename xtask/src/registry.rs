//! The components xtask builds, checks and describes to the flake: one line
//! per component. Their profiles and targets come from the components
//! themselves, so a new profile needs no edit here.

use common::describe::{describe, ComponentInfo};

/// Every component of the workspace, in build order.
pub fn components() -> Vec<ComponentInfo> {
    vec![
        describe::<test_origin::TestOrigin>(),
        describe::<swarm_client::SwarmClient>(),
        describe::<hls_probe::HlsProbe>(),
    ]
}
