//! Snapshots of the viewer arguments for every profile and variant mode.

use swarm_client::ffmpeg_args::{viewer_args, Capabilities, StreamMap, ViewerOptions, PROGRESS_FD};
use swarm_client::SwarmClient;

#[test]
fn viewer_args_for_every_profile_and_variant_mode() {
    let url = "http://origin.example:17080/master.m3u8";
    for profile in common::profile_names::<SwarmClient>().unwrap() {
        let l = common::load::<SwarmClient>(&common::Request {
            profile: profile.clone(),
            ..Default::default()
        })
        .unwrap();
        for (mode, map) in [
            ("all", StreamMap::All),
            ("first", StreamMap::First),
            ("highest", StreamMap::Program(0)),
            ("lowest", StreamMap::Program(4)),
        ] {
            let opts = ViewerOptions {
                map,
                progress_fd: Some(PROGRESS_FD),
                caps: Capabilities::FULL,
                ..Default::default()
            };
            let args = viewer_args(&l.config, url, 7, &opts);
            insta::assert_snapshot!(format!("viewer-{profile}-{mode}"), args.join("\n"));
        }
    }
}

#[test]
fn options_change_the_arguments() {
    let mut l = common::load::<SwarmClient>(&common::Request {
        profile: "burst".into(),
        ..Default::default()
    })
    .unwrap();
    let plain = viewer_args(&l.config, "http://h:1/s.m3u8", 3, &ViewerOptions::default());
    assert!(
        !plain.iter().any(|a| a == "-reconnect"),
        "burst does not reconnect"
    );
    assert!(plain.windows(2).any(|w| w == ["-rw_timeout", "5000000"]));
    assert!(plain
        .windows(2)
        .any(|w| w[0] == "-user_agent" && w[1].ends_with("/client-3")));
    assert!(!plain.iter().any(|a| a == "-progress"));

    l.config.no_cache = true;
    let opts = ViewerOptions {
        resolve: Some("10.1.2.3".parse().unwrap()),
        headers: vec![("X-Run".into(), "a b".into())],
        caps: Capabilities {
            seg_max_retry: false,
        },
        ..Default::default()
    };
    let a = viewer_args(&l.config, "http://cdn.example:8080/live/s.m3u8", 0, &opts);
    let headers = &a[a.iter().position(|x| x == "-headers").unwrap() + 1];
    assert_eq!(
        headers,
        "Host: cdn.example:8080\r\nCache-Control: no-cache\r\nPragma: no-cache\r\nX-Run: a b\r\n"
    );
    assert!(a
        .windows(2)
        .any(|w| w == ["-i", "http://10.1.2.3:8080/live/s.m3u8"]));
    assert!(
        !a.iter().any(|x| x == "-seg_max_retry"),
        "left out when FFmpeg lacks it"
    );
}

/// `viewer-args` prints what `run` would give this host's FFmpeg: the
/// retry option only where its HLS demuxer has it.
#[test]
fn viewer_args_follow_the_installed_ffmpeg() {
    let help = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-h", "demuxer=hls"])
        .output()
        .expect("ffmpeg is installed");
    let has_retry = String::from_utf8_lossy(&help.stdout).contains("seg_max_retry");
    let args = testkit::run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_swarm-client")).args([
            "viewer-args",
            "http://127.0.0.1:9/s.m3u8",
            "--profile",
            "default",
        ]),
    );
    assert_eq!(
        args.lines().any(|a| a == "-seg_max_retry"),
        has_retry,
        "{args}"
    );
    assert!(args.lines().any(|a| a == "-i"), "{args}");
}
