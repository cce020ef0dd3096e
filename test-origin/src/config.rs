//! The typed config of the test origin (keys as in SPEC §3, camelCase).

use common::types::{
    AbsPath, Bitrate, ByteSize, FileName, HostName, IfName, Interval, Ipv4, Ipv4Cidr, Ipv4Net,
    MacAddr,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The test origin: FFmpeg encodes a synthetic live HLS stream, nginx serves it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Encode the `variants` ladder with a master playlist instead of one stream.
    pub multibitrate: bool,
    pub hls: Hls,
    pub server: Server,
    pub audio: Audio,
    /// The lavfi video source that draws the picture.
    pub test_pattern: TestPattern,
    /// The single-bitrate stream (also the source size of the ladder's input).
    pub video: Video,
    /// The ABR ladder used when `multibitrate` is true, highest first (at most 16).
    #[schemars(length(max = 16))]
    pub variants: Vec<Variant>,
    pub encoder: Encoder,
    pub networking: Networking,
    pub logging: Logging,
    pub tls: Tls,
    pub low_latency: LowLatency,
}

/// Low-Latency HLS: FFmpeg writes each segment as CMAF chunks as it
/// encodes, and the origin's LL-HLS server lists them as parts, holds
/// blocking playlist reloads and streams parts as they are written; nginx
/// serves it in front.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LowLatency {
    /// Serve Low-Latency HLS (needs `hls.segmentType = "fmp4"`).
    pub enable: bool,
    /// The encoder's chunk, and so the part, duration in milliseconds.
    #[schemars(range(min = 100, max = 1000))]
    pub part_ms: u32,
}

/// HTTPS with HTTP/2.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tls {
    /// Serve HTTPS, HTTP/2 and HTTP/1.1 by ALPN, instead of plain HTTP/1.1.
    pub enable: bool,
    /// The server's PEM certificate chain. Unset: a run CA and a certificate
    /// signed by it are made when the origin starts, in its TLS directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<AbsPath>,
    /// The PEM private key of `certFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<AbsPath>,
    /// Names the made certificate holds besides localhost, 127.0.0.1 and ::1
    /// (the origin's host names and addresses as viewers reach it).
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub names: Vec<HostName>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hls {
    /// Length of one segment in seconds (at least 1).
    #[schemars(range(min = 1, max = 60))]
    pub segment_duration: u32,
    /// Number of segments listed in the playlist (at least 1).
    #[schemars(range(min = 1, max = 1000))]
    pub list_size: u32,
    /// Segments kept on disk after they leave the playlist.
    #[schemars(range(max = 1000))]
    pub delete_threshold: u32,
    /// The segment container: `ts` (MPEG-TS) or `fmp4` (CMAF fragmented MP4,
    /// with an init segment named in `EXT-X-MAP`).
    pub segment_type: SegmentType,
    /// printf pattern of segment file names; it ends in `.ts` for `ts`
    /// segments and in `.m4s` for `fmp4` ones.
    pub segment_pattern: FileName,
    /// Name of the media playlist.
    pub playlist_name: FileName,
    /// Name of the master playlist (multibitrate).
    pub master_playlist: FileName,
    /// HLS muxer flags, joined with `+`.
    #[schemars(length(max = 11))]
    pub flags: Vec<HlsFlag>,
}

common::word_enum!(
    /// The container of the media segments.
    SegmentType { Ts = "ts", Fmp4 = "fmp4" }
);

impl SegmentType {
    /// The file extension every segment name ends in (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            SegmentType::Ts => "ts",
            SegmentType::Fmp4 => "m4s",
        }
    }
}

/// The name of an fMP4 stream's init segment, beside its media playlist
/// (FFmpeg names a ladder's `init_<i>.mp4`, `i` the rendition's index).
pub const INIT_SEGMENT: &str = "init.mp4";

common::word_enum!(
    /// A flag of FFmpeg's HLS muxer (`-hls_flags`).
    HlsFlag {
        DeleteSegments = "delete_segments", OmitEndlist = "omit_endlist", TempFile = "temp_file",
        IndependentSegments = "independent_segments", ProgramDateTime = "program_date_time",
        SplitByTime = "split_by_time", AppendList = "append_list", DiscontStart = "discont_start",
        RoundDurations = "round_durations", PeriodicRekey = "periodic_rekey",
        SecondLevelSegmentIndex = "second_level_segment_index",
    }
);

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// TCP port nginx listens on (1–65535).
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// Directory FFmpeg writes the stream to and nginx serves.
    pub hls_dir: AbsPath,
    /// Who may read `/nginx_status` besides loopback (127.0.0.1 and ::1):
    /// IPv4 addresses or networks, e.g. `["10.0.0.0/8"]`. Everyone else gets 403.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub status_allow: Vec<Ipv4Net>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Audio {
    /// Frequency of the sine test tone in Hz.
    #[schemars(range(min = 1, max = 20000))]
    pub frequency: u32,
    /// Audio sample rate in Hz.
    #[schemars(range(min = 8000, max = 96000))]
    pub sample_rate: u32,
}

common::word_enum!(
    /// lavfi sources that draw a test picture.
    TestPattern {
        Testsrc = "testsrc", Testsrc2 = "testsrc2", Smptebars = "smptebars",
        Smptehdbars = "smptehdbars", Rgbtestsrc = "rgbtestsrc", Yuvtestsrc = "yuvtestsrc",
        Pal75bars = "pal75bars", Pal100bars = "pal100bars",
    }
);

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Video {
    /// Picture width in pixels (even).
    #[schemars(range(min = 16, max = 7680))]
    pub width: u32,
    /// Picture height in pixels (even).
    #[schemars(range(min = 16, max = 4320))]
    pub height: u32,
    /// Target video bitrate.
    pub bitrate: Bitrate,
    /// Minimum video bitrate; defaults to `bitrate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minrate: Option<Bitrate>,
    /// Maximum video bitrate (at least `bitrate`).
    pub maxrate: Bitrate,
    /// Rate-control buffer size.
    pub bufsize: Bitrate,
    /// AAC audio bitrate.
    pub audio_bitrate: Bitrate,
}

impl Video {
    /// The stream as a rung named `name` (its encoder arguments are a rung's).
    pub fn as_variant(&self, name: &str) -> Variant {
        Variant {
            name: common::types::Ident(name.to_owned()),
            width: self.width,
            height: self.height,
            bitrate: self.bitrate.clone(),
            minrate: Some(self.effective_minrate().clone()),
            maxrate: self.maxrate.clone(),
            bufsize: self.bufsize.clone(),
            audio_bitrate: self.audio_bitrate.clone(),
        }
    }

    /// `minrate`, or `bitrate` when unset.
    pub fn effective_minrate(&self) -> &Bitrate {
        self.minrate.as_ref().unwrap_or(&self.bitrate)
    }
}

/// One rung of the ABR ladder.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Variant {
    /// Name of the rendition; also its directory (`/720p/stream.m3u8`).
    pub name: common::types::Ident,
    #[schemars(range(min = 16, max = 7680))]
    pub width: u32,
    #[schemars(range(min = 16, max = 4320))]
    pub height: u32,
    pub bitrate: Bitrate,
    /// Minimum bitrate; defaults to `bitrate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minrate: Option<Bitrate>,
    pub maxrate: Bitrate,
    pub bufsize: Bitrate,
    pub audio_bitrate: Bitrate,
}

impl Variant {
    pub fn effective_minrate(&self) -> &Bitrate {
        self.minrate.as_ref().unwrap_or(&self.bitrate)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Encoder {
    /// Frames per second.
    #[schemars(range(min = 1, max = 120))]
    pub framerate: u32,
    /// x264 speed preset.
    pub preset: Preset,
    /// x264 tuning.
    pub tune: Tune,
    /// H.264 profile.
    pub profile: H264Profile,
    /// H.264 level, e.g. `4.1`.
    #[schemars(regex(pattern = r"^[1-6](\.[0-2])?$"))]
    pub level: String,
}

common::word_enum!(
    /// x264 preset.
    Preset {
        Ultrafast = "ultrafast", Superfast = "superfast", Veryfast = "veryfast", Faster = "faster",
        Fast = "fast", Medium = "medium", Slow = "slow", Slower = "slower", Veryslow = "veryslow",
    }
);

common::word_enum!(
    /// x264 tune.
    Tune {
        Film = "film", Animation = "animation", Grain = "grain", Stillimage = "stillimage",
        Fastdecode = "fastdecode", Zerolatency = "zerolatency", Psnr = "psnr", Ssim = "ssim",
    }
);

common::word_enum!(
    /// H.264 profile.
    H264Profile { Baseline = "baseline", Main = "main", High = "high" }
);

common::word_enum!(
    /// How the microVM is networked.
    NetMode { User = "user", Tap = "tap" }
);

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Networking {
    /// `user` (QEMU NAT with host port forwards) or `tap` (bridged device, static IP).
    pub mode: NetMode,
    pub tap: Tap,
    /// Guest address in `tap` mode.
    pub static_ip: Ipv4,
    /// Default gateway in `tap` mode.
    pub gateway: Ipv4,
    /// Guest network in `tap` mode.
    pub subnet: Ipv4Cidr,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tap {
    /// Host tap device.
    pub device: IfName,
    /// Host bridge the tap device joins; it holds the gateway's address.
    pub bridge: IfName,
    /// Guest MAC address.
    pub mac: MacAddr,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Logging {
    /// Write nginx access logs.
    pub enabled: bool,
    /// Directory of the log files.
    pub directory: AbsPath,
    /// Access-log buffer size (at most 64m: each worker holds one per log file).
    pub buffer: ByteSize,
    /// Longest time a log line stays in the buffer (at most 1h).
    pub flush_interval: Interval,
    /// gzip level of the logs (0 = off, 1–9).
    #[schemars(range(max = 9))]
    pub gzip: u32,
    /// Log segment requests only (no manifest or other requests).
    pub segments_only: bool,
    pub files: LogFiles,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogFiles {
    pub segments: FileName,
    pub manifests: FileName,
    pub access: FileName,
}

/// The largest `logging.buffer`, in bytes.
pub const MAX_LOG_BUFFER: u64 = 64 * 1024 * 1024;
/// The longest `logging.flushInterval`, in milliseconds.
pub const MAX_LOG_FLUSH_MS: u64 = 3_600_000;

/// Cross-field rules the schema cannot say.
pub fn check(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rates = |prefix: &str,
                     min: &Bitrate,
                     minrate_set: bool,
                     bitrate: &Bitrate,
                     maxrate: &Bitrate| {
        if minrate_set && min.kbps() > bitrate.kbps() {
            out.push((
                format!("{prefix}.minrate"),
                format!("minrate {min} is above bitrate {bitrate}; it must be at most the bitrate (leave it unset to use the bitrate)"),
            ));
        }
        if bitrate.kbps() > maxrate.kbps() {
            out.push((
                format!("{prefix}.maxrate"),
                format!(
                    "maxrate {maxrate} is below bitrate {bitrate}; it must be at least the bitrate"
                ),
            ));
        }
    };
    let v = &c.video;
    rates(
        "video",
        v.effective_minrate(),
        v.minrate.is_some(),
        &v.bitrate,
        &v.maxrate,
    );
    for (i, r) in c.variants.iter().enumerate() {
        rates(
            &format!("variants[{i}]"),
            r.effective_minrate(),
            r.minrate.is_some(),
            &r.bitrate,
            &r.maxrate,
        );
    }
    if c.logging.buffer.bytes() > MAX_LOG_BUFFER {
        out.push((
            "logging.buffer".into(),
            format!(
                "{} is above the limit of 64m (each nginx worker holds one buffer per log file)",
                c.logging.buffer
            ),
        ));
    }
    if c.logging.flush_interval.millis() > MAX_LOG_FLUSH_MS {
        out.push((
            "logging.flushInterval".into(),
            format!(
                "{} is above the limit of 1h (lines would wait that long to be written)",
                c.logging.flush_interval
            ),
        ));
    }
    let dims = std::iter::once(("video".to_owned(), v.width, v.height)).chain(
        c.variants
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("variants[{i}]"), r.width, r.height)),
    );
    for (prefix, w, h) in dims {
        for (key, n) in [("width", w), ("height", h)] {
            if n % 2 != 0 {
                out.push((
                    format!("{prefix}.{key}"),
                    format!("{n} is odd; H.264 4:2:0 needs an even {key}"),
                ));
            }
        }
    }
    if c.multibitrate {
        if c.variants.is_empty() {
            out.push((
                "variants".into(),
                "multibitrate needs at least one variant".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in c.variants.iter().enumerate() {
            if !seen.insert(r.name.as_str()) {
                out.push((
                    format!("variants[{i}].name"),
                    format!(
                        "variant name `{}` is used twice; names must be unique",
                        r.name
                    ),
                ));
            }
        }
    }
    if c.hls.playlist_name == c.hls.master_playlist {
        out.push((
            "hls.masterPlaylist".into(),
            "must differ from hls.playlistName".into(),
        ));
    }
    if !c.hls.segment_pattern.as_str().contains('%') {
        out.push((
            "hls.segmentPattern".into(),
            format!(
                "`{}` has no printf counter such as %05d; every segment would get the same name",
                c.hls.segment_pattern
            ),
        ));
    }
    let t = &c.tls;
    match (&t.cert_file, &t.key_file) {
        (Some(_), None) => out.push((
            "tls.keyFile".into(),
            "tls.certFile is set but tls.keyFile is not; set both, or neither to have a certificate made at start".into(),
        )),
        (None, Some(_)) => out.push((
            "tls.certFile".into(),
            "tls.keyFile is set but tls.certFile is not; set both, or neither to have a certificate made at start".into(),
        )),
        _ => {}
    }
    if !t.enable && (t.cert_file.is_some() || t.key_file.is_some() || !t.names.is_empty()) {
        out.push((
            "tls.enable".into(),
            "TLS settings are given but TLS is off; set tls.enable=true".into(),
        ));
    }
    let ll = &c.low_latency;
    if ll.enable {
        if c.hls.segment_type != SegmentType::Fmp4 {
            out.push((
                "hls.segmentType".into(),
                "Low-Latency HLS serves CMAF parts; set hls.segmentType=fmp4 (and hls.segmentPattern=seg%05d.m4s)".into(),
            ));
        }
        if ll.part_ms * 2 > c.hls.segment_duration * 1000 {
            out.push((
                "lowLatency.partMs".into(),
                format!(
                    "{} ms parts do not fit twice in a {} s segment; choose at most {} ms",
                    ll.part_ms,
                    c.hls.segment_duration,
                    c.hls.segment_duration * 500
                ),
            ));
        }
    }
    let ext = c.hls.segment_type.extension();
    if !c.hls.segment_pattern.as_str().ends_with(&format!(".{ext}")) {
        let stem = c.hls.segment_pattern.as_str();
        let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
        out.push((
            "hls.segmentPattern".into(),
            format!(
                "`{}` does not end in .{ext}, the extension of {} segments (hls.segmentType); \
                 set hls.segmentPattern={stem}.{ext}",
                c.hls.segment_pattern,
                c.hls.segment_type.as_str()
            ),
        ));
    }
    out
}
