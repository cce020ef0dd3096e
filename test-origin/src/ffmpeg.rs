//! The FFmpeg argument builder (SPEC §3 "FFmpeg"). Every target — local run,
//! runner script, container, microVM, NixOS module, systemd unit — calls
//! [`ffmpeg_args`]; nothing else writes FFmpeg arguments for the origin.

use common::render::Template;

use crate::config::{Config, SegmentType, Variant, INIT_SEGMENT};
use crate::derive::Derived;

/// The arguments after the program name. `hls_dir` is where the stream is
/// written: a fixed path, or a variable (`HLS_DIR`) for a script or a unit.
pub fn ffmpeg_args(c: &Config, d: &Derived, hls_dir: &Template) -> Vec<Template> {
    let mut a = Args::default();
    a.words(&[
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-nostats",
    ]);
    let (w, h) = if c.multibitrate {
        c.variants
            .first()
            .map_or((c.video.width, c.video.height), |v| (v.width, v.height))
    } else {
        (c.video.width, c.video.height)
    };
    a.words(&["-re", "-f", "lavfi", "-i"]);
    a.word(format!(
        "{}=size={w}x{h}:rate={}",
        c.test_pattern.as_str(),
        c.encoder.framerate
    ));
    a.words(&["-f", "lavfi", "-i"]);
    a.word(format!(
        "sine=frequency={}:sample_rate={}",
        c.audio.frequency, c.audio.sample_rate
    ));
    let gop = d.gop_size.to_string();
    let enc = &c.encoder;
    if c.low_latency.enable {
        low_latency(&mut a, c, &gop, hls_dir);
        return a.0;
    }
    if c.multibitrate {
        multi_bitrate(&mut a, c, &gop);
    } else {
        let v = &c.video;
        a.words(&["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
        a.words(&["-preset", enc.preset.as_str(), "-tune", enc.tune.as_str()]);
        a.words(&["-profile:v", enc.profile.as_str(), "-level", &enc.level]);
        a.words(&["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"]);
        a.words(&[
            "-b:v",
            v.bitrate.as_str(),
            "-minrate",
            v.effective_minrate().as_str(),
        ]);
        a.words(&[
            "-maxrate",
            v.maxrate.as_str(),
            "-bufsize",
            v.bufsize.as_str(),
        ]);
        a.words(&["-c:a", "aac", "-b:a", v.audio_bitrate.as_str()]);
        a.words(&["-ar", &c.audio.sample_rate.to_string()]);
    }
    let hls = &c.hls;
    a.words(&["-f", "hls", "-hls_time", &hls.segment_duration.to_string()]);
    a.words(&["-hls_list_size", &hls.list_size.to_string()]);
    a.words(&["-hls_delete_threshold", &hls.delete_threshold.to_string()]);
    // Number segments from the wall clock, so that a restarted encoder never
    // reuses a name that caches hold as `immutable`.
    a.words(&["-hls_start_number_source", "epoch"]);
    if hls.segment_type == SegmentType::Fmp4 {
        // CMAF: an init segment beside each media playlist (`EXT-X-MAP`)
        a.words(&["-hls_segment_type", "fmp4"]);
        a.words(&["-hls_fmp4_init_filename", INIT_SEGMENT]);
    }
    if !hls.flags.is_empty() {
        let flags: Vec<&str> = hls.flags.iter().map(|f| f.as_str()).collect();
        a.words(&["-hls_flags", &flags.join("+")]);
    }
    // `%v` is the variant name in FFmpeg's HLS muxer.
    let sub = if c.multibitrate { "/%v/" } else { "/" };
    a.word("-hls_segment_filename");
    a.template(hls_dir.join(&format!("{sub}{}", hls.segment_pattern)));
    a.template(hls_dir.join(&format!("{sub}{}", hls.playlist_name)));
    a.0
}

/// Low-Latency HLS: the dash muxer writes every segment of every stream as
/// CMAF chunks of `lowLatency.partMs` while it encodes (the LL-HLS server
/// lists them as parts): video streams first (the ladder, or the one
/// stream), then one audio stream.
fn low_latency(a: &mut Args, c: &Config, gop: &str, hls_dir: &Template) {
    if c.multibitrate {
        ladder(a, c);
        for (i, v) in c.variants.iter().enumerate() {
            a.words(&["-map", &format!("[out{i}]")]);
            video_stream_args(a, i, v, gop);
        }
    } else {
        a.words(&["-map", "0:v"]);
        video_stream_args(a, 0, &c.video.as_variant("video"), gop);
    }
    a.words(&[
        "-map",
        "1:a",
        "-c:a",
        "aac",
        "-b:a",
        c.video.audio_bitrate.as_str(),
    ]);
    a.words(&["-ar", &c.audio.sample_rate.to_string()]);
    encoder_args(a, c);
    let hls = &c.hls;
    a.words(&["-f", "dash", "-streaming", "1"]);
    a.words(&["-seg_duration", &hls.segment_duration.to_string()]);
    let part = format!(
        "{}.{:03}",
        c.low_latency.part_ms / 1000,
        c.low_latency.part_ms % 1000
    );
    a.words(&["-frag_type", "duration", "-frag_duration", &part]);
    a.words(&["-format_options", "movflags=cmaf"]);
    a.words(&["-use_timeline", "0", "-use_template", "1"]);
    // files kept: those listed, and those after, as the HLS muxer keeps them
    a.words(&["-window_size", &hls.list_size.to_string()]);
    a.words(&["-extra_window_size", &hls.delete_threshold.to_string()]);
    a.words(&["-adaptation_sets", "id=0,streams=v id=1,streams=a"]);
    a.template(hls_dir.join(&format!("/{LL_MANIFEST}")));
}

/// The DASH manifest the LL encoder writes beside its chunks (the LL-HLS
/// server does not read it).
pub const LL_MANIFEST: &str = "manifest.mpd";

/// The encoder arguments of the `i`-th video stream of a ladder.
fn video_stream_args(a: &mut Args, i: usize, v: &Variant, gop: &str) {
    a.words(&[&format!("-c:v:{i}"), "libx264"]);
    a.words(&[&format!("-b:v:{i}"), v.bitrate.as_str()]);
    if let Some(min) = &v.minrate {
        a.words(&[&format!("-minrate:v:{i}"), min.as_str()]);
    }
    a.words(&[&format!("-maxrate:v:{i}"), v.maxrate.as_str()]);
    a.words(&[&format!("-bufsize:v:{i}"), v.bufsize.as_str()]);
    a.words(&[
        &format!("-g:v:{i}"),
        gop,
        &format!("-keyint_min:v:{i}"),
        gop,
    ]);
    a.words(&[&format!("-sc_threshold:v:{i}"), "0"]);
}

/// The filter graph of a ladder: the input split and scaled to each rung
/// (`[out<i>]`).
fn ladder(a: &mut Args, c: &Config) {
    let n = c.variants.len();
    let mut graph = format!("[0:v]split={n}");
    for i in 0..n {
        graph.push_str(&format!("[v{i}]"));
    }
    for (i, v) in c.variants.iter().enumerate() {
        graph.push_str(&format!(";[v{i}]scale={}:{}[out{i}]", v.width, v.height));
    }
    a.words(&["-filter_complex", &graph]);
}

/// The x264 settings every video stream of a ladder shares.
fn encoder_args(a: &mut Args, c: &Config) {
    let enc = &c.encoder;
    a.words(&["-pix_fmt", "yuv420p", "-preset", enc.preset.as_str()]);
    a.words(&["-tune", enc.tune.as_str()]);
    a.words(&["-profile:v", enc.profile.as_str(), "-level", &enc.level]);
}

fn multi_bitrate(a: &mut Args, c: &Config, gop: &str) {
    ladder(a, c);
    for (i, v) in c.variants.iter().enumerate() {
        variant_args(a, i, v, gop, c.audio.sample_rate);
    }
    encoder_args(a, c);
    let map: Vec<String> = c
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| format!("v:{i},a:{i},name:{}", v.name))
        .collect();
    a.words(&["-var_stream_map", &map.join(" ")]);
    a.words(&["-master_pl_name", c.hls.master_playlist.as_str()]);
}

fn variant_args(a: &mut Args, i: usize, v: &Variant, gop: &str, sample_rate: u32) {
    a.words(&["-map", &format!("[out{i}]"), "-map", "1:a"]);
    video_stream_args(a, i, v, gop);
    a.words(&[
        &format!("-c:a:{i}"),
        "aac",
        &format!("-b:a:{i}"),
        v.audio_bitrate.as_str(),
    ]);
    a.words(&[&format!("-ar:a:{i}"), &sample_rate.to_string()]);
}

/// Where each playlist of a stream is, relative to the HLS root (for
/// Low-Latency HLS: the LL-HLS server's URLs).
pub fn playlist_paths(c: &Config) -> Vec<String> {
    if c.low_latency.enable {
        let ll = crate::ll::settings::settings(c);
        let mut out = vec![c.hls.master_playlist.to_string()];
        out.extend(
            ll.renditions
                .iter()
                .map(|r| format!("{}/{}", r.name, c.hls.playlist_name)),
        );
        return out;
    }
    if c.multibitrate {
        let mut out = vec![c.hls.master_playlist.to_string()];
        out.extend(
            c.variants
                .iter()
                .map(|v| format!("{}/{}", v.name, c.hls.playlist_name)),
        );
        out
    } else {
        vec![c.hls.playlist_name.to_string()]
    }
}

/// The playlist a player opens: the master playlist of a ladder, or the one
/// media playlist.
pub fn entry_playlist(c: &Config) -> String {
    playlist_paths(c).swap_remove(0)
}

#[derive(Default)]
struct Args(Vec<Template>);

impl Args {
    fn word(&mut self, s: impl Into<String>) {
        self.0.push(Template::text(s.into()));
    }
    fn words(&mut self, ws: &[&str]) {
        for w in ws {
            self.word(*w);
        }
    }
    fn template(&mut self, t: Template) {
        self.0.push(t);
    }
}
