//! The origin microVM, booted in QEMU (TCG here; KVM where it works): the
//! stream answers through the forwarded port, and microvm-stop leaves no qemu.

use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{free_port, serial, TINY};

const BIN: &str = env!("CARGO_BIN_EXE_test-origin");

#[test]
fn the_origin_vm_boots_serves_and_stops() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["microvm", "-o"])
        .arg(dir.path())
        .args(TINY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for script in ["microvm-run", "microvm-stop"] {
        let sc = Command::new("shellcheck")
            .arg(dir.path().join("bin").join(script))
            .output()
            .unwrap();
        assert!(
            sc.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&sc.stdout)
        );
    }
    let run = std::fs::read_to_string(dir.path().join("bin/microvm-run")).unwrap();
    assert!(
        run.contains("hostfwd=tcp:127.0.0.1:${HTTP_PORT}-:17080"),
        "forwards bind to loopback"
    );
    assert!(
        run.contains("host=127.0.0.1,port=$SERIAL_PORT"),
        "the console binds to loopback"
    );
    assert!(run.contains("-smp 4 -m 4096"));

    let (http, serial_port) = (free_port(), free_port());
    let t = Instant::now();
    let started = Command::new(dir.path().join("bin/microvm-run"))
        .env("HTTP_PORT", http.to_string())
        .env("SERIAL_PORT", serial_port.to_string())
        .env("SSH_PORT", free_port().to_string())
        .env("NGINX_EXPORTER_PORT", free_port().to_string())
        .env("NODE_EXPORTER_PORT", free_port().to_string())
        .output()
        .expect("qemu-system-x86 is installed");
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let pid: u32 = std::fs::read_to_string(dir.path().join("run/microvm.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let console =
        || std::fs::read_to_string(dir.path().join("run/console.log")).unwrap_or_default();
    let base = format!("http://127.0.0.1:{http}");
    let mut health_at = None;
    let mut playlist_at = None;
    while t.elapsed() < Duration::from_secs(120) && playlist_at.is_none() {
        if health_at.is_none()
            && matches!(
                common::probe::http_get(&format!("{base}/health"), Duration::from_secs(2)),
                Ok((200, _))
            )
        {
            health_at = Some(t.elapsed());
        }
        if let Ok((200, p)) =
            common::probe::http_get(&format!("{base}/stream.m3u8"), Duration::from_secs(2))
        {
            if p.contains("#EXTINF") {
                playlist_at = Some(t.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let ok = health_at.is_some() && playlist_at.is_some();
    let stop = Command::new(dir.path().join("bin/microvm-stop"))
        .output()
        .unwrap();
    assert!(ok, "no stream within 120 s; console:\n{}", console());
    eprintln!(
        "microVM: /health after {:.1} s, playlist after {:.1} s",
        health_at.unwrap().as_secs_f64(),
        playlist_at.unwrap().as_secs_f64()
    );
    assert!(
        console().contains("init: starting test origin as nginx"),
        "{}",
        console()
    );
    assert!(stop.status.success());
    let gone = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z") {
            break;
        }
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "qemu {pid} is still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.path().join("run/microvm.pid").exists());
}
