//! The generated FFmpeg command, run for real: tiny overrides so that 2 cores
//! keep up, run until each playlist lists two segments, then ffprobe and
//! the playlists are checked.

mod support;
use support::TINY;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::procs::wait_until;

/// fMP4 (CMAF) segments instead of MPEG-TS.
const FMP4: [&str; 2] = ["hls.segmentType=fmp4", "hls.segmentPattern=seg%05d.m4s"];

/// A two-rung ladder, for the fMP4 run beside the five-rung one.
const TINY_PAIR: &str = "variants=[\
{name='hi',width=320,height=180,bitrate='400k',maxrate='440k',bufsize='800k',audioBitrate='64k'},\
{name='lo',width=160,height=90,bitrate='150k',maxrate='165k',bufsize='300k',audioBitrate='48k'}]";

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

/// Lets the encoders run until each of `playlists` lists two segments (60 s
/// at most: on a busy machine ten encodes share its cores), then stops
/// them; each must still be running.
fn encode_for_a_while(mut children: Vec<Child>, playlists: &[PathBuf]) {
    let listed = |p: &PathBuf| {
        std::fs::read_to_string(p)
            .map(|t| t.lines().filter(|l| l.starts_with("#EXTINF:")).count())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(60), || {
            playlists.iter().all(|p| listed(p) >= 2)
        }),
        "not every playlist lists two segments within 60 s: {:?}",
        playlists.iter().map(|p| (p, listed(p))).collect::<Vec<_>>()
    );
    for c in &mut children {
        assert!(c.try_wait().unwrap().is_none(), "ffmpeg exited early");
        c.kill().unwrap();
        c.wait().unwrap();
    }
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
    let abr = tmp.path().join("4k-abr");
    let mut playlists = vec![
        tmp.path().join("default/stream.m3u8"),
        tmp.path().join("low-latency/stream.m3u8"),
    ];
    playlists.extend(
        ["2160p", "1080p", "720p", "480p", "360p"].map(|n| abr.join(n).join("stream.m3u8")),
    );
    encode_for_a_while(children, &playlists);
    let log = |p: &str| std::fs::read_to_string(tmp.path().join(format!("{p}.log"))).unwrap();

    assert_media_playlist(&tmp.path().join("default/stream.m3u8"), 2.0, 320);
    assert_media_playlist(&tmp.path().join("low-latency/stream.m3u8"), 1.0, 320);
    assert!(
        log("default").is_empty(),
        "ffmpeg warned: {}",
        log("default")
    );

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

/// The top-level MP4 box types of a file, in order (each box: a 32-bit size,
/// then its type); stops at a size that does not fit.
fn box_types(path: &Path) -> Vec<String> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= b.len() {
        let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned());
        if size < 8 || at + size > b.len() {
            break;
        }
        at += size;
    }
    out
}

/// An fMP4 media playlist: `EXT-X-MAP` names an init segment (ftyp + moov)
/// beside it, every segment is moof/mdat fragments (after its styp and sidx
/// boxes), and ffprobe plays it.
fn assert_fmp4_playlist(playlist: &Path, init: &str, width: u64) {
    let text = std::fs::read_to_string(playlist).unwrap();
    assert!(
        text.lines()
            .any(|l| l == format!("#EXT-X-MAP:URI=\"{init}\"")),
        "{}: no EXT-X-MAP of {init}:\n{text}",
        playlist.display()
    );
    let dir = playlist.parent().unwrap();
    assert_eq!(box_types(&dir.join(init))[..2], ["ftyp", "moov"]);
    let segments: Vec<&str> = text.lines().filter(|l| l.ends_with(".m4s")).collect();
    assert!(segments.len() >= 2, "{text}");
    for seg in segments {
        let boxes = box_types(&dir.join(seg));
        // FFmpeg's hls muxer writes a segment type and index boxes first
        let media: Vec<&String> = boxes
            .iter()
            .filter(|b| !["styp", "sidx"].contains(&b.as_str()))
            .collect();
        assert!(
            media.len() >= 2
                && media
                    .chunks(2)
                    .all(|p| p[0] == "moof" && p.get(1).is_some_and(|m| *m == "mdat")),
            "{seg}: {boxes:?}"
        );
    }
    assert_media_playlist(playlist, 2.0, width);
}

#[test]
fn fmp4_segments_are_cmaf_with_an_init_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for (name, profile, extra) in [
        (
            "single",
            "default",
            vec!["--set", FMP4[0], "--set", FMP4[1]],
        ),
        (
            "ladder",
            "4k-abr",
            vec!["--set", TINY_PAIR, "--set", FMP4[0], "--set", FMP4[1]],
        ),
    ] {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let args = args_for(profile, &dir, &extra);
        assert!(
            args.windows(2).any(|w| w == ["-hls_segment_type", "fmp4"]),
            "{args:?}"
        );
        children.push(start(&args, &tmp.path().join(format!("{name}.log"))));
    }
    let ladder = tmp.path().join("ladder");
    encode_for_a_while(
        children,
        &[
            tmp.path().join("single/stream.m3u8"),
            ladder.join("hi/stream.m3u8"),
            ladder.join("lo/stream.m3u8"),
        ],
    );
    let log = std::fs::read_to_string(tmp.path().join("single.log")).unwrap();
    assert!(log.is_empty(), "ffmpeg warned: {log}");
    assert_fmp4_playlist(&tmp.path().join("single/stream.m3u8"), "init.mp4", 320);
    let master = std::fs::read_to_string(ladder.join("master.m3u8")).unwrap();
    assert!(
        master.contains("hi/stream.m3u8") && master.contains("lo/stream.m3u8"),
        "{master}"
    );
    assert_fmp4_playlist(&ladder.join("hi/stream.m3u8"), "init_0.mp4", 320);
    assert_fmp4_playlist(&ladder.join("lo/stream.m3u8"), "init_1.mp4", 160);
}
