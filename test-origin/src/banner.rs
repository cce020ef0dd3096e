//! The banner a local run prints: profile, HLS settings, cache policy, storage
//! estimates, URLs and commands to try. Shared by the Rust runner and the
//! runner script (where `BASE_URL` and `HLS_DIR` are filled in at run time).

use std::fmt::Write;

use common::render::Template;

use crate::cache::cache_policy;
use crate::config::Config;
use crate::derive::Derived;
use crate::ffmpeg::entry_playlist;

/// The CA certificate viewers trust when the origin makes its own
/// certificate (TLS on, no `tls.certFile`): `$TLS_DIR/ca.pem`.
pub fn made_ca(c: &Config) -> Option<Template> {
    (c.tls.enable && c.tls.cert_file.is_none())
        .then(|| Template::var("TLS_DIR").join(&format!("/{}", common::deploy::tls::CA)))
}

/// The banner; variables `BASE_URL` (`http://127.0.0.1:17080`), `HLS_DIR`
/// and, when the origin makes its certificate, `TLS_DIR`.
pub fn banner(profile: &str, c: &Config, d: &Derived) -> Template {
    let base = Template::var("BASE_URL");
    let url = |path: &str| base.join(path);
    let cache = cache_policy(c);
    let hls = &c.hls;
    let mut t = Template::new();
    let w = &mut t;
    macro_rules! out {
        ($($arg:tt)*) => { let _ = writeln!(w, $($arg)*); };
    }
    out!("hls-swarm test origin — profile {profile}");
    out!(
        "  HLS      {} s {} segments, {} in the playlist ({} s window), {} kept after, GOP {} frames",
        hls.segment_duration,
        hls.segment_type.as_str(),
        hls.list_size,
        d.playlist_window_sec,
        hls.delete_threshold,
        d.gop_size
    );
    if c.multibitrate {
        let ladder: Vec<String> = c
            .variants
            .iter()
            .map(|v| format!("{} {}x{} {}", v.name, v.width, v.height, v.bitrate))
            .collect();
        out!(
            "  ladder   {} @ {} fps",
            ladder.join(", "),
            c.encoder.framerate
        );
    } else {
        let v = &c.video;
        out!(
            "  video    {}x{} @ {} fps, {} (max {}), audio {}, x264 {}/{}",
            v.width,
            v.height,
            c.encoder.framerate,
            v.bitrate,
            v.maxrate,
            v.audio_bitrate,
            c.encoder.preset.as_str(),
            c.encoder.tune.as_str()
        );
    }
    out!("  cache    playlists: {}", cache.manifest);
    if c.multibitrate {
        out!("           master:    {}", cache.master);
    }
    out!("           segments:  {}", cache.segment);
    if hls.segment_type == crate::config::SegmentType::Fmp4 {
        out!("           init:      {}", cache.init);
    }
    out!(
        "  storage  ~{} KB per segment, {} files per variant, ~{} MB in all; tmpfs of {} MB recommended",
        d.segment_size_kb, d.files_per_variant, d.total_storage_mb, d.recommended_tmpfs_mb
    );
    w.push_text("  HLS dir  ");
    w.push(&Template::var("HLS_DIR"));
    out!();
    if c.low_latency.enable {
        w.push_text("  LL       ");
        w.push(&Template::var("LL_SOCKET"));
        out!(" (the LL-HLS server's socket, behind nginx)");
    }
    let ca = made_ca(c);
    if c.tls.enable {
        out!("  TLS      HTTPS; HTTP/2 and HTTP/1.1 by ALPN");
        match (&ca, &c.tls.cert_file) {
            (Some(ca), _) => {
                w.push_text("  CA       ");
                w.push(ca);
                out!(" (made at start for this run; viewers trust it)");
            }
            (None, Some(cert)) => {
                out!("  cert     {cert}");
            }
            (None, None) => {}
        }
    }
    let stream = url(&format!("/{}", entry_playlist(c)));
    for (label, t) in [
        ("stream", stream.clone()),
        ("health", url("/health")),
        ("status", url("/nginx_status")),
        ("files", url("/files/")),
    ] {
        w.push_text(&format!("  {label:<8} "));
        w.push(&t);
        out!();
    }
    out!("try:");
    w.push_text("  curl -sI ");
    if let Some(ca) = &ca {
        w.push_text("--cacert ");
        w.push(ca);
        w.push_text(" ");
    }
    w.push(&stream);
    out!();
    w.push_text("  ffprobe -v error -show_entries stream=codec_name,width,height ");
    if let Some(ca) = &ca {
        w.push_text("-ca_file ");
        w.push(ca);
        w.push_text(" ");
    }
    w.push(&stream);
    out!();
    w.push_text("  cargo run -p swarm-client -- run ");
    w.push(&stream);
    w.push_text(" --profile gentle --duration 30s");
    if let Some(ca) = &ca {
        w.push_text(" --ca-file ");
        w.push(ca);
    }
    out!();
    t
}
