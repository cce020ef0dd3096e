//! Every text the component generates (configs, runner, image, microVM,
//! NixOS, systemd, sysctl), for every profile, under snapshot review: a
//! change to any artifact shows as a diff.

use swarm_client::SwarmClient;

#[test]
fn every_generated_text_of_every_profile() {
    let docs = common::deploy::profile_documents::<SwarmClient>(env!("CARGO_BIN_EXE_swarm-client"))
        .unwrap();
    assert_eq!(
        docs.len(),
        common::profile_names::<SwarmClient>().unwrap().len()
    );
    for (profile, doc) in docs {
        insta::assert_snapshot!(format!("artifacts-{profile}"), doc);
    }
}
