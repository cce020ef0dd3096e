//! Every text the component generates (configs, runner, image, microVM,
//! NixOS, systemd, sysctl), for every profile, under snapshot review: a
//! change to any artifact shows as a diff.

use hls_probe::HlsProbe;

testkit::every_generated_text_of_every_profile!(HlsProbe, env!("CARGO_BIN_EXE_hls-probe"));
