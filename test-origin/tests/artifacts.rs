//! Every text the component generates (configs, runner, image, microVM,
//! NixOS, systemd, sysctl), for every profile, under snapshot review: a
//! change to any artifact shows as a diff.

use test_origin::TestOrigin;

testkit::every_generated_text_of_every_profile!(TestOrigin, env!("CARGO_BIN_EXE_test-origin"));
