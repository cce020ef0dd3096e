//! Why a request failed, as the player is told it and the figures count it.

use super::playlist::PlaylistError;

/// The longest request target (path and query) the HTTP stack can send
/// (the `http` crate's limit on a URI): a longer URL is a failure of its
/// own, never requested.
pub const MAX_REQUEST_TARGET: usize = u16::MAX as usize - 1;

/// Why a request failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    Status(u16),
    Timeout,
    Connect,
    /// Reset, closed early or a protocol error.
    Broken,
    Playlist(PlaylistError),
    TooManyRedirects,
    /// A scheme the engine does not speak.
    Unsupported,
    /// The TLS handshake failed (e.g. a certificate not trusted).
    Tls,
    /// The URL is longer than an HTTP request line may be here: no
    /// request was sent, and none will be.
    UrlTooLong,
    /// `http = "2"`, and the origin did not choose HTTP/2 by ALPN (or the
    /// URL is plain `http`: cleartext HTTP/2 is not spoken).
    NoHttp2,
}

impl Failure {
    /// A short, fixed message (failures are counted by it).
    pub fn message(&self) -> String {
        match self {
            Failure::Status(s) => format!("HTTP {s}"),
            Failure::Timeout => "timeout".into(),
            Failure::Connect => "connection refused or unreachable".into(),
            Failure::Broken => "connection closed or broken mid-response".into(),
            Failure::Playlist(e) => e.reason().into(),
            Failure::TooManyRedirects => "more than 5 redirects".into(),
            Failure::Unsupported => "unsupported URL scheme".into(),
            Failure::Tls => "TLS handshake failed (certificate not trusted? see --ca-file)".into(),
            Failure::NoHttp2 => {
                "HTTP/2 not chosen by the origin (http = \"2\" needs https and h2 by ALPN)".into()
            }
            Failure::UrlTooLong => format!(
                "URL too long (over {} bytes): not requested",
                MAX_REQUEST_TARGET
            ),
        }
    }

    /// The messages of the failures counted by reason (`errors{reason}`):
    /// every kind but HTTP statuses, timeouts and refused connections.
    pub fn reasons() -> Vec<String> {
        let mut r: Vec<String> = [
            Failure::Broken,
            Failure::TooManyRedirects,
            Failure::Unsupported,
            Failure::Tls,
            Failure::UrlTooLong,
            Failure::NoHttp2,
        ]
        .iter()
        .map(Failure::message)
        .collect();
        r.extend(PlaylistError::ALL.iter().map(|e| e.reason().to_owned()));
        r
    }

    /// The message with its details (a playlist error's line), for a
    /// person reading one failure.
    pub fn detail(&self) -> String {
        match self {
            Failure::Playlist(e) => e.to_string(),
            other => other.message(),
        }
    }

    /// Whether trying the same request again could end otherwise.
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            Failure::UrlTooLong | Failure::Unsupported | Failure::NoHttp2
        )
    }
}
