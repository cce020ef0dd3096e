//! What the generated nginx config refuses, tried with real nginx in a network
//! namespace of the test's own, so that requests come from an address that is
//! not loopback: `/nginx_status` answers loopback and the config's allow-list
//! only; dotfiles are never served; no request body, no oversized header, no
//! slowly sent request is taken.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::netns::Netns;

/// nginx running in a namespace; stopped with its workers when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would orphan them)
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

/// Sends `request` raw to `to` and returns the status code (0 when the
/// server closed without an answer) and the whole answer. Run in the
/// namespace, a connection to one of lo's addresses comes from that address.
fn send(to: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(to: SocketAddr, path: &str) -> u16 {
    let req = format!("GET {path} HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n");
    send(to, req.as_bytes()).0
}

fn write_stream(dir: &Path) {
    std::fs::write(
        dir.join("stream.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n",
    )
    .unwrap();
    std::fs::write(dir.join("seg00001.ts"), vec![0x47u8; 188 * 10]).unwrap();
    std::fs::write(dir.join(".hidden.ts"), "secret").unwrap();
    std::fs::write(dir.join(".env"), "secret").unwrap();
}

#[test]
fn status_answers_loopback_and_the_allow_list_only_and_nothing_else_leaks() {
    let _serial = testkit::serial();
    let ns = Netns::new();
    // two more addresses of the namespace: one the config allows, one it does not
    ns.add_address("10.213.0.1/32");
    ns.add_address("10.213.0.2/32");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("hls");
    let run = tmp.path().join("run");
    std::fs::create_dir(&root).unwrap();
    write_stream(&root);
    let port = 17480u16;
    let config = testkit::run_ok(
        Command::new(env!("CARGO_BIN_EXE_test-origin"))
            .args(["nginx-config", "--flavour", "local", "--listen", "0.0.0.0"])
            .args(["--port", &port.to_string()])
            .args(["--root", root.to_str().unwrap()])
            .args(["--run-dir", run.to_str().unwrap()])
            .args(["--set", "server.statusAllow=[\"10.213.0.2\"]"]),
    );
    assert!(
        run.is_dir(),
        "nginx-config --flavour local creates its run dir"
    );
    let conf = tmp.path().join("nginx.conf");
    std::fs::write(&conf, config).unwrap();
    let _nginx = Nginx(
        ns.command("nginx")
            .args(["-p", run.to_str().unwrap(), "-c", conf.to_str().unwrap()])
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let at = |ip: &str| SocketAddr::new(ip.parse().unwrap(), port);
    ns.run(|| {
        assert!(
            testkit::procs::wait_until(Duration::from_secs(10), || {
                TcpStream::connect(at("127.0.0.1")).is_ok()
            }),
            "nginx listens in the namespace"
        );
        // a connection to an address of lo comes from that address
        assert_eq!(get(at("127.0.0.1"), "/nginx_status"), 200, "loopback");
        assert_eq!(get(at("10.213.0.2"), "/nginx_status"), 200, "allow-listed");
        assert_eq!(get(at("10.213.0.1"), "/nginx_status"), 403, "anyone else");
        // the stream itself answers everyone
        assert_eq!(get(at("10.213.0.1"), "/stream.m3u8"), 200);
        assert_eq!(get(at("10.213.0.1"), "/seg00001.ts"), 200);
        // dotfiles: not served, by either path, and not listed
        for path in ["/.env", "/.hidden.ts", "/files/.env", "/files/json/.hidden.ts"] {
            assert_eq!(get(at("10.213.0.1"), path), 404, "{path}");
        }
        let (status, listing) = send(
            at("10.213.0.1"),
            b"GET /files/json/ HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
        assert!(listing.contains("seg00001.ts") && !listing.contains(".env"), "{listing}");
        // a request body is refused (only GET, HEAD and OPTIONS are served)
        let body = "x".repeat(4096);
        let post = format!(
            "POST /stream.m3u8 HTTP/1.1\r\nHost: o\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, _) = send(at("127.0.0.1"), post.as_bytes());
        assert!(status == 405 || status == 413, "POST with a body: {status}");
        // a header longer than the 8k buffers
        let big = format!(
            "GET /stream.m3u8 HTTP/1.1\r\nHost: o\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "y".repeat(9000)
        );
        assert_eq!(send(at("127.0.0.1"), big.as_bytes()).0, 400);
        // a client that sends half a request and stalls is cut off after
        // client_header_timeout (10 s), not held open
        let started = Instant::now();
        let (status, _) = send(at("127.0.0.1"), b"GET /stream.m3u8 HTTP/1.1\r\nHost: o\r\n");
        let held = started.elapsed();
        assert!(status == 0 || status == 408, "a stalled request: {status}");
        assert!(
            held >= Duration::from_secs(9) && held < Duration::from_secs(15),
            "the stalled connection was closed after {held:?}"
        );
    });
}
