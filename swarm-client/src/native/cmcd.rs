//! Common Media Client Data (CTA-5004, PLAYER.md §8): what a viewer tells
//! the CDN with each request — as four headers or as one `CMCD` query
//! argument, keys sorted, strings quoted, booleans as the key alone.

use std::fmt::Write;

common::word_enum!(
    /// How a native viewer sends CMCD: not at all, as `CMCD-*` headers, or
    /// as a `CMCD=` query argument (which changes cache keys unless the
    /// CDN strips it).
    CmcdMode { Off = "off", Headers = "headers", Query = "query" }
);

// the enum comes from a macro, which takes no `#[default]` on a variant
#[allow(clippy::derivable_impls)]
impl Default for CmcdMode {
    fn default() -> Self {
        CmcdMode::Off
    }
}

/// The longest content id (`cid`) CTA-5004 allows.
pub const MAX_CONTENT_ID: usize = 64;

/// One request's CMCD values; `None` and `false` are left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cmcd {
    /// Encoded bitrate of the object's rendition, kbit/s.
    pub br: Option<u64>,
    /// Buffer length, ms (rounded to 100).
    pub bl: Option<u64>,
    /// The buffer ran empty since the last request.
    pub bs: bool,
    /// Content id.
    pub cid: String,
    /// Object duration, ms.
    pub d: Option<u64>,
    /// Deadline: ms until the buffer runs dry (rounded to 100).
    pub dl: Option<u64>,
    /// Measured throughput, kbit/s (rounded to 100).
    pub mtp: Option<u64>,
    /// Object type: `m` playlist, `a`/`v`/`av` media, `i` init, `c` captions.
    pub ot: &'static str,
    /// Session id, stable for the viewer's life.
    pub sid: String,
    /// Stream type: `l` live, `v` VOD.
    pub live: bool,
    /// Startup: playback has not begun.
    pub su: bool,
    /// Top bitrate of the stream, kbit/s.
    pub tb: Option<u64>,
}

/// The four CMCD headers, in the order CTA-5004 lists them.
pub const HEADERS: [&str; 4] = ["CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status"];

/// Rounds `v` to the nearest multiple of 100.
pub fn hundreds(v: f64) -> u64 {
    ((v.max(0.0) / 100.0).round() * 100.0) as u64
}

impl Cmcd {
    /// Every key with its value (`key=value`, or the key alone for a true
    /// boolean) and the index in [`HEADERS`] of the header it goes in,
    /// sorted by key.
    fn keys(&self) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = Vec::with_capacity(12);
        let mut int = |header, key: &str, v: Option<u64>| {
            if let Some(v) = v {
                out.push((header, format!("{key}={v}")));
            }
        };
        int(0, "br", self.br);
        int(1, "bl", self.bl);
        int(0, "d", self.d);
        int(1, "dl", self.dl);
        int(1, "mtp", self.mtp);
        int(0, "tb", self.tb);
        if self.bs {
            out.push((3, "bs".into()));
        }
        if self.su {
            out.push((1, "su".into()));
        }
        out.push((2, format!("cid={}", quoted(&self.cid))));
        out.push((0, format!("ot={}", self.ot)));
        out.push((2, "sf=h".into()));
        out.push((2, format!("sid={}", quoted(&self.sid))));
        out.push((2, format!("st={}", if self.live { "l" } else { "v" })));
        out.sort_by(|a, b| key_of(&a.1).cmp(key_of(&b.1)));
        out
    }

    /// As headers: name and value of each that has keys.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let keys = self.keys();
        HEADERS
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let v: Vec<&str> = keys
                    .iter()
                    .filter(|k| k.0 == i)
                    .map(|k| k.1.as_str())
                    .collect();
                (!v.is_empty()).then(|| (*name, v.join(",")))
            })
            .collect()
    }

    /// As the value of the `CMCD` query argument (before URL encoding).
    pub fn query_value(&self) -> String {
        let keys: Vec<String> = self.keys().into_iter().map(|k| k.1).collect();
        keys.join(",")
    }
}

fn key_of(kv: &str) -> &str {
    kv.split('=').next().unwrap_or(kv)
}

/// A CTA-5004 string: in double quotes, with `"` and `\` escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A UUID (version 4, RFC 9562) of 128 random bits from `rng`: a viewer's
/// session id, the same for the same seed.
pub fn session_id(rng: &mut fastrand::Rng) -> String {
    let mut b = rng.u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment() -> Cmcd {
        Cmcd {
            br: Some(3200),
            bl: Some(hundreds(21_340.0)),
            bs: true,
            cid: "faec5fc2-ac30-11eabb37-0242ac130002".into(),
            d: Some(4004),
            dl: Some(hundreds(18_450.0)),
            mtp: Some(hundreds(25_420.0)),
            ot: "v",
            sid: "6e2fb550-c457-11e9-bb97-0800200c9a66".into(),
            live: false,
            su: false,
            tb: Some(6000),
        }
    }

    /// The keys of each header sorted, strings quoted, a true boolean as
    /// the key alone, a false one and absent values left out — the form of
    /// CTA-5004's header examples.
    #[test]
    fn headers_sort_quote_and_leave_out_what_is_not_set() {
        let h = segment().headers();
        assert_eq!(
            h,
            [
                ("CMCD-Object", "br=3200,d=4004,ot=v,tb=6000".to_owned()),
                ("CMCD-Request", "bl=21300,dl=18500,mtp=25400".to_owned()),
                (
                    "CMCD-Session",
                    "cid=\"faec5fc2-ac30-11eabb37-0242ac130002\",sf=h,\
                     sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",st=v"
                        .to_owned()
                ),
                ("CMCD-Status", "bs".to_owned()),
            ]
        );
        // a playlist at startup: no media keys, no status header
        let playlist = Cmcd {
            ot: "m",
            su: true,
            live: true,
            sid: "s".into(),
            cid: "/live/stream.m3u8".into(),
            ..Default::default()
        };
        assert_eq!(
            playlist.headers(),
            [
                ("CMCD-Object", "ot=m".to_owned()),
                ("CMCD-Request", "su".to_owned()),
                (
                    "CMCD-Session",
                    "cid=\"/live/stream.m3u8\",sf=h,sid=\"s\",st=l".to_owned()
                ),
            ]
        );
    }

    /// In query mode every key is in one list, sorted; quotes and
    /// backslashes in strings are escaped.
    #[test]
    fn the_query_value_is_one_sorted_list() {
        assert_eq!(
            segment().query_value(),
            "bl=21300,br=3200,bs,cid=\"faec5fc2-ac30-11eabb37-0242ac130002\",d=4004,\
             dl=18500,mtp=25400,ot=v,sf=h,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",st=v,tb=6000"
        );
        let odd = Cmcd {
            cid: "a\"b\\c".into(),
            ot: "m",
            ..Default::default()
        };
        assert!(odd.query_value().starts_with("cid=\"a\\\"b\\\\c\","));
    }

    #[test]
    fn session_ids_are_version_4_uuids_repeatable_by_seed() {
        let a = session_id(&mut fastrand::Rng::with_seed(7));
        assert_eq!(a, session_id(&mut fastrand::Rng::with_seed(7)));
        assert_ne!(a, session_id(&mut fastrand::Rng::with_seed(8)));
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(hundreds(149.0), 100);
        assert_eq!(hundreds(150.0), 200);
        assert_eq!(hundreds(-5.0), 0);
    }
}
