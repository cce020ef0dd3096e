//! Headless Chromium driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: commands on its fd 3, answers and events on
//! its fd 4, each a JSON message ended by a NUL), for what a page cannot do
//! itself: throttling its network as DevTools does.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use serde_json::{json, Value};

/// The longest message read from Chromium.
const MAX_MESSAGE: u64 = 64 << 20;

/// How long one command may take to be answered.
const ANSWER: Duration = Duration::from_secs(20);

/// A Chromium with one page attached; killed when dropped.
pub struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: mpsc::Receiver<Value>,
    next: u64,
    session: String,
}

impl Browser {
    /// Chromium ([`crate::chromium`], with `profile` and `args`) on a blank
    /// page, attached.
    pub fn launch(profile: &std::path::Path, args: &[&str]) -> Browser {
        let (cmd_read, to) = std::io::pipe().expect("a pipe");
        let (from_read, answer_write) = std::io::pipe().expect("a pipe");
        let mut cmd = crate::chromium(profile);
        cmd.args(args)
            .args(["--remote-debugging-pipe", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.fd_mappings(vec![
            FdMapping {
                parent_fd: OwnedFd::from(cmd_read),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: OwnedFd::from(answer_write),
                child_fd: 4,
            },
        ])
        .expect("fds 3 and 4 for Chromium");
        let child = cmd.spawn().expect("chromium starts");
        // the command above keeps the child's ends open until it is dropped
        drop(cmd);
        let (tx, from) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from_read);
            let mut buf = Vec::new();
            // one message at most MAX_MESSAGE bytes: a longer one ends the reading
            while (&mut r)
                .take(MAX_MESSAGE)
                .read_until(0, &mut buf)
                .is_ok_and(|n| n > 0)
            {
                if buf.pop_if(|b| *b == 0).is_none() {
                    break;
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
                buf.clear();
            }
        });
        let mut b = Browser {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
        };
        let deadline = Instant::now() + ANSWER;
        let page = loop {
            let targets = b.call("Target.getTargets", json!({}));
            let page = targets["targetInfos"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["type"] == "page"))
                .map(|t| t["targetId"].as_str().unwrap_or_default().to_owned());
            if let Some(p) = page {
                break p;
            }
            assert!(Instant::now() < deadline, "Chromium opened no page");
            std::thread::sleep(Duration::from_millis(100));
        };
        let attached = b.call(
            "Target.attachToTarget",
            json!({ "targetId": page, "flatten": true }),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        b
    }

    /// Sends `method` (to the attached page once there is one) and returns
    /// its result; panics on an error or no answer in time.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("JSON");
        bytes.push(0);
        self.to.write_all(&bytes).expect("Chromium reads its pipe");
        let deadline = Instant::now() + ANSWER;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no answer to {method} from Chromium: {e}"));
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Emulates a link as DevTools' network throttling does: downloads
    /// held to `bits_per_sec` (none: unthrottled) and `latency` from each
    /// request sent to its response head; uploads as they are.
    pub fn emulate(&mut self, bits_per_sec: Option<u64>, latency: Duration) {
        self.call("Network.enable", json!({}));
        self.call(
            "Network.emulateNetworkConditions",
            json!({
                "offline": false,
                "latency": latency.as_secs_f64() * 1000.0,
                "downloadThroughput": bits_per_sec.map_or(-1.0, |b| b as f64 / 8.0),
                "uploadThroughput": -1,
            }),
        );
    }

    /// Loads `url` in the page.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
