//! Reading what a viewer reports: `-progress` blocks on its dedicated pipe, and
//! events in its log (stderr).

/// One `-progress` block (`key=value` lines ending with `progress=…`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Media time read so far, in microseconds.
    pub out_time_us: Option<i64>,
    /// Read speed relative to real time (1.0 = keeping up).
    pub speed: Option<f64>,
    pub frame: Option<u64>,
    /// `progress=end`: FFmpeg is finishing.
    pub end: bool,
}

/// Collects progress lines into blocks.
#[derive(Default)]
pub struct ProgressParser {
    cur: Progress,
}

impl ProgressParser {
    /// Feeds one line; returns the block it completes, if any.
    pub fn feed(&mut self, line: &str) -> Option<Progress> {
        let (key, value) = line.trim().split_once('=')?;
        let value = value.trim();
        match key {
            "out_time_us" => self.cur.out_time_us = value.parse().ok(),
            "speed" => self.cur.speed = value.trim_end_matches('x').trim().parse().ok(),
            "frame" => self.cur.frame = value.parse().ok(),
            "progress" => {
                let mut done = std::mem::take(&mut self.cur);
                done.end = value == "end";
                return Some(done);
            }
            _ => {}
        }
        None
    }
}

/// Something a viewer's log line tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent {
    /// A media segment was requested.
    Segment,
    /// A playlist was (re)loaded.
    Playlist,
    /// The input opened: the first playlist was read.
    InputOpened,
    /// The server answered with an HTTP error status.
    HttpError(u16),
    /// A read or connect timed out.
    Timeout,
    /// The connection was refused or reset.
    ConnectError,
}

/// Splits the `[level] ` tag (from `-loglevel level+…`) out of a log line:
/// `[http @ 0x5] [info] Opening …` → (`info`, `[http @ 0x5] Opening …`).
pub fn split_level(line: &str) -> (Option<crate::config::LogLevel>, String) {
    use crate::config::LogLevel::*;
    for (tag, level) in [
        ("[info] ", Info),
        ("[warning] ", Warning),
        ("[error] ", Error),
        ("[verbose] ", Verbose),
        ("[debug] ", Debug),
        ("[trace] ", Trace),
        ("[fatal] ", Fatal),
        ("[panic] ", Panic),
    ] {
        if let Some(i) = line.find(tag) {
            // the tag comes first, or right after one `[ctx @ addr] ` prefix
            let before = &line[..i];
            if before.is_empty()
                || (before.starts_with('[')
                    && before.ends_with("] ")
                    && before.matches('[').count() == 1)
            {
                return (Some(level), format!("{before}{}", &line[i + tag.len()..]));
            }
        }
    }
    (None, line.to_owned())
}

/// Classifies a log line of a viewer's FFmpeg.
pub fn classify(line: &str) -> Option<LogEvent> {
    if let Some(rest) = line.split("Opening '").nth(1) {
        if line.ends_with("' for reading") {
            let url = rest.trim_end_matches("' for reading");
            let path = url.split(['?', '#']).next().unwrap_or(url);
            return Some(if path.ends_with(".m3u8") || path.ends_with(".m3u") {
                LogEvent::Playlist
            } else {
                LogEvent::Segment
            });
        }
    }
    if line.starts_with("Input #0, hls") {
        return Some(LogEvent::InputOpened);
    }
    for marker in ["HTTP error ", "Server returned "] {
        if let Some(rest) = line.split(marker).nth(1) {
            let code: String = rest.chars().take(3).collect();
            if let Ok(c) = code.parse::<u16>() {
                return Some(LogEvent::HttpError(c));
            }
            if let Some(class) = code.strip_suffix("XX").and_then(|d| d.parse::<u16>().ok()) {
                return Some(LogEvent::HttpError(class * 100));
            }
        }
    }
    let lower = line.to_ascii_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        return Some(LogEvent::Timeout);
    }
    if lower.contains("connection refused") || lower.contains("connection reset") {
        return Some(LogEvent::ConnectError);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_blocks() {
        let mut p = ProgressParser::default();
        let lines = "frame=119\nfps=14.84\nbitrate=N/A\ntotal_size=N/A\nout_time_us=12032000\nspeed= 1.5x\nprogress=continue\nspeed=N/A\nprogress=end\n";
        let blocks: Vec<Progress> = lines.lines().filter_map(|l| p.feed(l)).collect();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0],
            Progress {
                out_time_us: Some(12032000),
                speed: Some(1.5),
                frame: Some(119),
                end: false
            }
        );
        assert_eq!(blocks[1].speed, None);
        assert!(blocks[1].end);
    }

    #[test]
    fn level_tags() {
        use crate::config::LogLevel;
        assert_eq!(
            split_level("[http @ 0x55] [info] Opening 'http://h/s.m3u8' for reading"),
            (
                Some(LogLevel::Info),
                "[http @ 0x55] Opening 'http://h/s.m3u8' for reading".into()
            )
        );
        assert_eq!(
            split_level("[error] http://h/x.m3u8: Connection refused"),
            (
                Some(LogLevel::Error),
                "http://h/x.m3u8: Connection refused".into()
            )
        );
        assert_eq!(
            split_level("no tag [info] here"),
            (None, "no tag [info] here".into())
        );
    }

    #[test]
    fn log_lines() {
        let check = |line: &str, e: Option<LogEvent>| assert_eq!(classify(line), e, "{line}");
        check(
            "[hls @ 0x55] Opening 'http://127.0.0.1:1/seg1795641750.ts' for reading",
            Some(LogEvent::Segment),
        );
        check(
            "[http @ 0x55] Opening 'http://127.0.0.1:1/stream.m3u8' for reading",
            Some(LogEvent::Playlist),
        );
        check(
            "[http @ 0x55] Opening 'http://h/720p/stream.m3u8?x=1' for reading",
            Some(LogEvent::Playlist),
        );
        check(
            "Input #0, hls, from 'http://127.0.0.1:18191/stream.m3u8':",
            Some(LogEvent::InputOpened),
        );
        check(
            "[http @ 0x55] HTTP error 404 Not Found",
            Some(LogEvent::HttpError(404)),
        );
        check(
            "http://x/stream.m3u8: Server returned 403 Forbidden (access denied)",
            Some(LogEvent::HttpError(403)),
        );
        check(
            "http://x/a.m3u8: Server returned 5XX Server Error reply",
            Some(LogEvent::HttpError(500)),
        );
        check(
            "[tcp @ 0x1] Connection to tcp://127.0.0.1:9 failed: Connection refused",
            Some(LogEvent::ConnectError),
        );
        check("http://x: Connection timed out", Some(LogEvent::Timeout));
        check("[hls @ 0x5] Skip ('#EXT-X-VERSION:3')", None);
    }
}
