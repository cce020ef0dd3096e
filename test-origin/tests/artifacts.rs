//! Every text the component generates (configs, runner, image, microVM,
//! NixOS, systemd, sysctl), for every profile, under snapshot review: a
//! change to any artifact shows as a diff.

use test_origin::TestOrigin;

#[test]
fn every_generated_text_of_every_profile() {
    let docs =
        common::deploy::profile_documents::<TestOrigin>(env!("CARGO_BIN_EXE_test-origin")).unwrap();
    assert_eq!(
        docs.len(),
        common::profile_names::<TestOrigin>().unwrap().len()
    );
    for (profile, doc) in docs {
        insta::assert_snapshot!(format!("artifacts-{profile}"), doc);
    }
}
