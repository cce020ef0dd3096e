//! The generated FFmpeg command, run for real: tiny overrides so that 2 cores
//! keep up, about 8 s of output, then ffprobe and the playlists are checked.

mod support;
use support::TINY;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const TINY_LADDER: &str = "variants=[\
{name='2160p',width=320,height=180,bitrate='400k',maxrate='440k',bufsize='800k',audioBitrate='64k'},\
{name='1080p',width=256,height=144,bitrate='300k',maxrate='330k',bufsize='600k',audioBitrate='64k'},\
{name='720p',width=192,height=108,bitrate='200k',maxrate='220k',bufsize='400k',audioBitrate='48k'},\
{name='480p',width=160,height=90,bitrate='150k',maxrate='165k',bufsize='300k',audioBitrate='48k'},\
{name='360p',width=128,height=72,bitrate='100k',maxrate='110k',bufsize='200k',audioBitrate='32k'}]";

fn args_for(profile: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_test-origin"));
    cmd.args(["ffmpeg-args", "--json", "-p", profile])
        .args(TINY)
        .args(extra);
    cmd.arg("--set")
        .arg(format!("server.hlsDir={}", dir.display()));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn start(args: &[String], log: &Path) -> Child {
    Command::new("ffmpeg")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("ffmpeg is installed (apt-get install ffmpeg)")
}

/// `#EXTINF` durations of a media playlist.
fn durations(playlist: &Path) -> Vec<f64> {
    std::fs::read_to_string(playlist)
        .unwrap_or_else(|e| panic!("{}: {e}", playlist.display()))
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| {
            l.trim_end_matches(',')
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn ffprobe(url: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
            "-of",
            "json",
        ])
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        url.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_media_playlist(playlist: &Path, segment: f64, width: u64) {
    let d = durations(playlist);
    assert!(
        d.len() >= 2,
        "{}: too few segments {d:?}",
        playlist.display()
    );
    for x in &d {
        assert!(
            (x - segment).abs() <= 0.5,
            "{}: segment of {x}s, expected {segment}±0.5",
            playlist.display()
        );
    }
    let probe = ffprobe(playlist);
    let streams = probe["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["width"], width);
    assert!(streams
        .iter()
        .any(|s| s["codec_type"] == "audio" && s["codec_name"] == "aac"));
}

#[test]
fn generated_commands_produce_playable_hls() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = [
        ("default", vec![]),
        ("low-latency", vec![]),
        ("4k-abr", vec!["--set", TINY_LADDER]),
    ];
    let mut children = Vec::new();
    for (profile, extra) in &runs {
        let dir = tmp.path().join(profile);
        std::fs::create_dir_all(&dir).unwrap();
        let args = args_for(profile, &dir, extra);
        children.push(start(&args, &tmp.path().join(format!("{profile}.log"))));
    }
    std::thread::sleep(Duration::from_millis(8500));
    for c in &mut children {
        assert!(c.try_wait().unwrap().is_none(), "ffmpeg exited early");
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let log = |p: &str| std::fs::read_to_string(tmp.path().join(format!("{p}.log"))).unwrap();

    assert_media_playlist(&tmp.path().join("default/stream.m3u8"), 2.0, 320);
    assert_media_playlist(&tmp.path().join("low-latency/stream.m3u8"), 1.0, 320);
    assert!(
        log("default").is_empty(),
        "ffmpeg warned: {}",
        log("default")
    );

    let abr = tmp.path().join("4k-abr");
    let master =
        std::fs::read_to_string(abr.join("master.m3u8")).expect("master playlist at the HLS root");
    let widths = [
        ("2160p", "320x180"),
        ("1080p", "256x144"),
        ("720p", "192x108"),
        ("480p", "160x90"),
        ("360p", "128x72"),
    ];
    let inf: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(inf.len(), 5, "{master}");
    for (name, res) in widths {
        assert!(
            master.lines().any(|l| l == format!("{name}/stream.m3u8")),
            "{name} missing:\n{master}"
        );
        assert!(
            inf.iter()
                .any(|l| l.contains(&format!("RESOLUTION={res}")) && l.contains("BANDWIDTH=")),
            "{res}:\n{master}"
        );
        let w: u64 = res.split('x').next().unwrap().parse().unwrap();
        assert_media_playlist(&abr.join(name).join("stream.m3u8"), 2.0, w);
    }
}
