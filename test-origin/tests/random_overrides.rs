//! Random overrides, fed to the real config pipeline: each either is
//! refused with a key path (what the CLI reports with exit status 2), or
//! gives a config whose generated nginx config passes `nginx -t`, whose
//! runner script passes shellcheck, whose NixOS module parses, and whose
//! FFmpeg arguments carry every number as FFmpeg reads it.

use common::cli::ProfileArgs;
use common::error::ConfigError;
use common::render::{resolve_all, Template};
use proptest::prelude::*;
use test_origin::nginx::{nginx_config, Flavour, LocalSite};
use test_origin::TestOrigin;

/// Keys the overrides hit: numbers, rates, sizes, names, paths, lists.
const KEYS: &[&str] = &[
    "hls.segmentDuration",
    "hls.listSize",
    "hls.deleteThreshold",
    "hls.segmentPattern",
    "hls.playlistName",
    "server.port",
    "server.hlsDir",
    "server.statusAllow",
    "video.width",
    "video.height",
    "video.bitrate",
    "video.minrate",
    "video.maxrate",
    "video.bufsize",
    "audio.sampleRate",
    "encoder.framerate",
    "encoder.level",
    "logging.enabled",
    "logging.buffer",
    "logging.flushInterval",
    "logging.gzip",
    "logging.segmentsOnly",
];

/// A value as `--set` takes it: TOML literals and bare words alike, most
/// of them the shape the key wants (so that many configs get through to
/// nginx), some wild.
fn value(key: &'static str) -> BoxedStrategy<String> {
    let plausible: BoxedStrategy<String> = match key.rsplit('.').next().unwrap() {
        "segmentDuration" | "listSize" | "deleteThreshold" | "framerate" | "gzip" => {
            (0u32..1100).prop_map(|n| n.to_string()).boxed()
        }
        "port" => (0u32..70_000).prop_map(|n| n.to_string()).boxed(),
        "width" | "height" => (8u32..8000).prop_map(|n| n.to_string()).boxed(),
        "sampleRate" => (4000u32..100_000).prop_map(|n| n.to_string()).boxed(),
        "bitrate" | "minrate" | "maxrate" | "bufsize" => "[1-9][0-9]{0,7}[kM]".boxed(),
        "buffer" => "[1-9][0-9]{0,6}[kKmM]?".boxed(),
        "flushInterval" => "[1-9][0-9]{0,6}(ms|s|m|h)".boxed(),
        "segmentPattern" => "[a-z]{1,8}%0[1-9]d\\.ts".boxed(),
        "playlistName" => "[a-z]{1,12}\\.m3u8".boxed(),
        "hlsDir" => "/[a-z]{1,10}(/[a-z._-]{1,10}){0,3}".boxed(),
        "statusAllow" => r#"\[("10\.[0-9]{1,3}\.0\.0/[0-9]{1,2}"(, )?){0,3}\]"#.boxed(),
        "level" => "[1-7](\\.[0-3])?".boxed(),
        _ => any::<bool>().prop_map(|b| b.to_string()).boxed(),
    };
    let wild = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9]{1,26}(k|M|m|K|ms|s|h)?",
        "[a-z%0-9._/-]{0,40}",
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,30}",
    ];
    prop_oneof![4 => plausible, 1 => wild].boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn overrides_are_refused_with_a_key_or_give_configs_nginx_accepts(
        sets in prop::collection::vec(
            prop::sample::select(KEYS).prop_flat_map(|k| (Just(k), value(k))),
            1..4,
        )
    ) {
        let args = ProfileArgs {
            set: sets.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ..ProfileArgs::default()
        };
        match args.load::<TestOrigin>() {
            Err(ConfigError::Invalid { problems }) => {
                prop_assert!(!problems.is_empty());
                for p in &problems {
                    prop_assert!(!p.path.is_empty(), "a problem without a key: {}", p.message);
                }
            }
            Err(ConfigError::BadSet { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error: {e}"),
            Ok(l) => {
                let dir = tempfile::tempdir().unwrap();
                let run = dir.path().to_str().unwrap();
                let site = LocalSite::fixed("127.0.0.1", 8080, "/tmp/hls", run);
                if l.config.logging.enabled {
                    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
                }
                let text = nginx_config(&l.config, &l.derived, &Flavour::Local(site))
                    .resolve(&|_| None)
                    .unwrap();
                let checked = testkit::tools::nginx_t(&text, dir.path());
                prop_assert!(checked.is_ok(), "{sets:?}: {}", checked.unwrap_err());
                // the runner script and the NixOS module that carry the same values
                let script = dir.path().join("runner.sh");
                let runner = test_origin::targets::runner_script("random", &l.config, &l.derived);
                std::fs::write(&script, common::deploy::runner::render(&runner)).unwrap();
                let checked = testkit::tools::shellcheck(&script);
                prop_assert!(checked.is_ok(), "{sets:?}: {}", checked.unwrap_err());
                let module = dir.path().join("module.nix");
                let nix = test_origin::targets::nixos_module("random", &l.config, &l.derived).unwrap();
                std::fs::write(&module, nix).unwrap();
                let checked = testkit::tools::nix_parse(&module);
                prop_assert!(checked.is_ok(), "{sets:?}: {}", checked.unwrap_err());
                // every rate FFmpeg is handed fits the integer it parses into
                let ffmpeg = resolve_all(
                    &test_origin::ffmpeg::ffmpeg_args(&l.config, &l.derived, &Template::text("/tmp/hls")),
                    &|_| None,
                )
                .unwrap();
                for w in ffmpeg.windows(2) {
                    if ["-b:v", "-minrate", "-maxrate", "-bufsize", "-b:a"].contains(&w[0].as_str()) {
                        let digits = w[1].trim_end_matches(['k', 'M']);
                        let n: u64 = digits.parse().unwrap();
                        prop_assert!(n <= 999_999, "{} {}", w[0], w[1]);
                    }
                }
            }
        }
    }
}
