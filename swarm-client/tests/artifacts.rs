//! Every text the component generates (configs, runner, image, microVM,
//! NixOS, systemd, sysctl), for every profile, under snapshot review: a
//! change to any artifact shows as a diff.

use swarm_client::SwarmClient;

testkit::every_generated_text_of_every_profile!(SwarmClient, env!("CARGO_BIN_EXE_swarm-client"));
