//! Strings with a shape. Each type's JSON Schema carries a `pattern` that admits
//! only values that are safe to write into shell, nginx, Nix and systemd text, so
//! that validation rejects what escaping could not make safe.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// An enum of fixed words (`ultrafast`, `zerolatency`, …) that serializes as those
/// words, derives its JSON Schema (an `enum` of the words) and has `as_str`.
#[macro_export]
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

macro_rules! pattern_string {
    ($(#[$meta:meta])* $name:ident, $pattern:expr, $max_len:expr, $description:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The regular expression every value matches.
            pub const PATTERN: &'static str = $pattern;
            /// The longest value, in characters.
            pub const MAX_LEN: usize = $max_len;

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Checks `s` against the pattern (for values that come from flags
            /// rather than a config).
            pub fn parse(s: &str) -> Result<Self, String> {
                let schema = serde_json::json!({
                    "type": "string", "pattern": $pattern, "maxLength": $max_len,
                });
                if jsonschema::is_valid(&schema, &serde_json::Value::from(s)) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(format!(
                        "expected {} (at most {} characters), got {:?}",
                        $description.to_lowercase(),
                        $max_len,
                        s
                    ))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "maxLength": $max_len,
                    "description": $description,
                })
            }
        }
    };
}

pattern_string!(
    /// An absolute path without whitespace, quotes, `;`, `$`, `\`, `{`, `}` or `#`.
    AbsPath,
    r##"^/[^\s'"`;$\\{}#]*$"##,
    1024,
    "An absolute path (starts with `/`) without whitespace, quotes, `;`, `$`, `\\`, `{`, `}` or `#`"
);

pattern_string!(
    /// A file name: letters, digits, `.`, `_`, `-`, `%` (for printf patterns).
    FileName,
    r"^[A-Za-z0-9][A-Za-z0-9._%-]*$",
    255,
    "A file name of letters, digits, `.`, `_`, `-` and `%` (no `/`, no spaces)"
);

pattern_string!(
    /// A short identifier: letters, digits, `_`, `-`.
    Ident,
    r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
    63,
    "A name of letters, digits, `_` and `-`"
);

pattern_string!(
    /// A bitrate in kbit/s (`2000k`) or Mbit/s (`5M`), at most 999999k or 999M
    /// (about 1 Gbit/s): the digits are bounded so that every consumer
    /// (FFmpeg, x264, the sizing arithmetic) gets a number it can hold.
    Bitrate,
    r"^([1-9][0-9]{0,5}k|[1-9][0-9]{0,2}M)$",
    7,
    "A bitrate like `2000k` (kbit/s) or `5M` (Mbit/s), at most `999999k` or `999M`"
);

pattern_string!(
    /// A byte size as nginx writes it: `512k`, `4m`, `1024`; at most 6 digits.
    ByteSize,
    r"^[1-9][0-9]{0,5}[kKmM]?$",
    7,
    "A size like `512k`, `4m` or `65536` (bytes), at most 6 digits"
);

pattern_string!(
    /// A duration as nginx writes it: `10s`, `500ms`, `1m`; at most 6 digits.
    Interval,
    r"^[1-9][0-9]{0,5}(ms|s|m|h)$",
    8,
    "A duration like `10s`, `500ms` or `1m`, at most 6 digits"
);

pattern_string!(
    /// A MAC address, lower- or upper-case hex, colon-separated.
    MacAddr,
    r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$",
    17,
    "A MAC address like `02:00:00:01:77:01`"
);

pattern_string!(
    /// An IPv4 address in dotted-quad form.
    Ipv4,
    r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$",
    15,
    "An IPv4 address like `10.177.0.10`"
);

pattern_string!(
    /// An IPv4 network in CIDR form.
    Ipv4Cidr,
    r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$",
    18,
    "An IPv4 network like `10.177.0.0/24`"
);

pattern_string!(
    /// An IPv4 address or network: `10.0.0.5` or `10.0.0.0/8`.
    Ipv4Net,
    r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(/([0-9]|[12][0-9]|3[0-2]))?$",
    18,
    "An IPv4 address like `10.0.0.5` or network like `10.0.0.0/8`"
);

pattern_string!(
    /// A network interface name (at most 15 characters).
    IfName,
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$",
    15,
    "A network interface name of up to 15 letters, digits, `_`, `.` and `-`"
);

pattern_string!(
    /// A host name (DNS labels joined by `.`) or an IP address: what a
    /// certificate names its server by.
    HostName,
    r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$",
    253,
    "A host name like `origin.example` or an IP address like `10.0.0.5` or `fd00::5`"
);

pattern_string!(
    /// An `http://` or `https://` URL that is inert in a shell word, a unit
    /// file and a Nix string: no whitespace, quotes, `\\`, `$`, backquote or `%`.
    HttpUrl,
    r#"^https?://[^\s'"\\$`%]+$"#,
    2048,
    "An http:// or https:// URL without spaces, quotes, `$`, `%` or backslashes"
);

impl Bitrate {
    /// The bitrate in kbit/s: `2000k` → 2000, `5M` → 5000.
    pub fn kbps(&self) -> u64 {
        let (digits, unit) = self.0.split_at(self.0.len() - 1);
        let n: u64 = digits.parse().unwrap_or(0);
        match unit {
            "M" => n * 1000,
            _ => n,
        }
    }
}

impl Interval {
    /// The duration in milliseconds.
    pub fn millis(&self) -> u64 {
        let s = self.0.as_str();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let n: u64 = s[..split].parse().unwrap_or(0);
        n * match &s[split..] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            _ => 3_600_000,
        }
    }
}

impl ByteSize {
    /// The size in bytes (`k` = 1024).
    pub fn bytes(&self) -> u64 {
        let s = self.0.as_str();
        let (digits, mult) = match s.chars().last() {
            Some('k' | 'K') => (&s[..s.len() - 1], 1024),
            Some('m' | 'M') => (&s[..s.len() - 1], 1024 * 1024),
            _ => (s, 1),
        };
        digits.parse::<u64>().unwrap_or(0) * mult
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schema_of;
    use serde_json::json;

    fn accepts<T: JsonSchema>(s: &str) -> bool {
        let schema = schema_of::<T>();
        jsonschema::is_valid(&schema, &json!(s))
    }

    #[test]
    fn paths_reject_what_would_not_be_inert() {
        assert!(accepts::<AbsPath>("/var/hls"));
        assert!(accepts::<AbsPath>("/tmp/hls-1.2_x"));
        for bad in [
            "var/hls", "/tmp/a b", "/x;y", "/x}", "/x{", "/a\"b", "/a'b", "/a$b", "/a\nb", "/a\\b",
            "/a#b", "/a\tb", "",
        ] {
            assert!(!accepts::<AbsPath>(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_and_numbers() {
        assert!(accepts::<FileName>("seg%05d.ts"));
        assert!(!accepts::<FileName>("../x"));
        assert!(!accepts::<FileName>("a b"));
        assert!(accepts::<Bitrate>("2000k") && accepts::<Bitrate>("5M"));
        assert!(
            !accepts::<Bitrate>("fast") && !accepts::<Bitrate>("0k") && !accepts::<Bitrate>("2000")
        );
        assert_eq!(Bitrate("2000k".into()).kbps(), 2000);
        assert_eq!(Bitrate("5M".into()).kbps(), 5000);
        assert_eq!(ByteSize("512k".into()).bytes(), 524288);
        assert!(accepts::<Ipv4>("10.177.0.10") && !accepts::<Ipv4>("10.177.0.256"));
        assert!(accepts::<Ipv4Cidr>("10.177.0.0/24") && !accepts::<Ipv4Cidr>("10.177.0.0/33"));
        assert!(accepts::<MacAddr>("02:00:00:01:77:01") && !accepts::<MacAddr>("02:00:00:01:77"));
        assert!(accepts::<Interval>("10s") && !accepts::<Interval>("10"));
        assert_eq!(Interval("500ms".into()).millis(), 500);
        assert_eq!(Interval("2m".into()).millis(), 120_000);
        assert_eq!(Interval("1h".into()).millis(), 3_600_000);
        // the largest value of each number-like type fits; one digit more does not
        assert!(accepts::<Bitrate>("999999k") && !accepts::<Bitrate>("1000000k"));
        assert!(accepts::<Bitrate>("999M") && !accepts::<Bitrate>("1000M"));
        assert!(!accepts::<Bitrate>("99999999999999999999999k"));
        assert!(accepts::<ByteSize>("999999m") && !accepts::<ByteSize>("1000000m"));
        assert!(accepts::<Interval>("999999h") && !accepts::<Interval>("1000000h"));
        assert!(accepts::<Ipv4Net>("10.0.0.5") && accepts::<Ipv4Net>("10.0.0.0/8"));
        assert!(!accepts::<Ipv4Net>("10.0.0.0/33") && !accepts::<Ipv4Net>("all"));
        // strings are bounded in length as well as shape
        assert!(accepts::<FileName>(&"a".repeat(255)) && !accepts::<FileName>(&"a".repeat(256)));
        let long_path = format!("/{}", "a".repeat(1023));
        assert!(accepts::<AbsPath>(&long_path) && !accepts::<AbsPath>(&format!("{long_path}a")));
        assert!(accepts::<HttpUrl>("http://127.0.0.1:17080/stream.m3u8"));
        for bad in [
            "ftp://x/",
            "http://a b/",
            "http://x/$(id)",
            "http://x/`id`",
            "http://x/'",
            "http://x/%0a",
            "http://",
        ] {
            assert!(!accepts::<HttpUrl>(bad), "{bad:?}");
        }
    }
}
