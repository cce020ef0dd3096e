//! Every text the component generates (configs, runner, image, microVM,
//! NixOS, systemd, sysctl), for every profile, under snapshot review: a
//! change to any artifact shows as a diff.

use hls_probe::HlsProbe;

#[test]
fn every_generated_text_of_every_profile() {
    let docs =
        common::deploy::profile_documents::<HlsProbe>(env!("CARGO_BIN_EXE_hls-probe")).unwrap();
    assert_eq!(
        docs.len(),
        common::profile_names::<HlsProbe>().unwrap().len()
    );
    for (profile, doc) in docs {
        insta::assert_snapshot!(format!("artifacts-{profile}"), doc);
    }
}
