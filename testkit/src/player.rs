//! A real player beside the tests: hls.js (as `cargo xtask test
//! --setup-only` installs it from npm) on a page in headless Chromium,
//! which reports what it saw by fetching a URL of the test's.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// hls.js's script.
pub fn hlsjs() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/npm/node_modules/hls.js/dist/hls.min.js");
    assert!(
        p.is_file(),
        "hls.js is not installed: `cargo xtask test --setup-only` installs everything the \
         tests use (or: npm install --prefix target/npm hls.js@1.7.4)"
    );
    p
}

/// Where a page reports: a listener on loopback.
pub struct Report {
    listener: std::net::TcpListener,
}

impl Report {
    pub fn new() -> Report {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Report { listener }
    }

    /// The URL the page fetches, with its figures as query parameters.
    pub fn url(&self) -> String {
        format!("http://{}/report", self.listener.local_addr().unwrap())
    }

    /// The request line of the page's report (`GET /report?a=1&b=2 …`);
    /// panics when none comes within `limit`.
    pub fn wait(&self, limit: Duration) -> String {
        let t = Instant::now();
        loop {
            if let Ok((mut sock, _)) = self.listener.accept() {
                sock.set_nonblocking(false).unwrap();
                let mut first = String::new();
                std::io::BufReader::new(&sock)
                    .read_line(&mut first)
                    .unwrap();
                let _ = sock.write_all(
                    b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n\r\n",
                );
                if first.contains("/report?") {
                    return first;
                }
            }
            assert!(t.elapsed() < limit, "no report from the page in {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Default for Report {
    fn default() -> Self {
        Report::new()
    }
}

/// The value of `name` in a report's request line.
pub fn field(line: &str, name: &str) -> String {
    line.split([' ', '?', '&'])
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} in {line}"))
        .to_owned()
}
