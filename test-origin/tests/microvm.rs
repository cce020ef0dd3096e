//! The origin microVM, booted in QEMU (TCG here; KVM where it works): the
//! stream answers through the forwarded port, and microvm-stop leaves no qemu.

use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{free_port, serial, TINY};

const BIN: &str = env!("CARGO_BIN_EXE_test-origin");

/// `test-origin microvm ARGS` with the tiny stream, written into a temp dir.
fn origin_vm(args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    testkit::run_ok(
        Command::new(BIN)
            .arg("microvm")
            .args(args)
            .arg("-o")
            .arg(dir.path())
            .args(TINY),
    );
    dir
}

/// The entries of a newc cpio archive, in order: path and bytes.
fn cpio_entries(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut r = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut out = Vec::new();
    loop {
        let mut e = cpio::NewcReader::new(r).unwrap();
        if e.entry().is_trailer() {
            break;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        out.push((e.entry().name().to_owned(), bytes));
        r = e.finish().unwrap();
    }
    out
}

/// The paths in a newc cpio archive, in order.
fn cpio_paths(path: &std::path::Path) -> Vec<String> {
    cpio_entries(path).into_iter().map(|(p, _)| p).collect()
}

/// The bytes of `name` in a newc cpio archive.
fn cpio_file(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    cpio_entries(path)
        .into_iter()
        .find_map(|(p, bytes)| (p == name).then_some(bytes))
}

/// The paths in a squashfs image (without their leading `/`), and the
/// bytes of its file `name`.
fn squashfs_paths_and_file(path: &std::path::Path, name: &str) -> (Vec<String>, Option<Vec<u8>>) {
    let r = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let fs = backhand::FilesystemReader::from_reader(r).unwrap();
    let (mut paths, mut file) = (Vec::new(), None);
    for n in fs.files() {
        let p = n
            .fullpath
            .to_string_lossy()
            .trim_start_matches('/')
            .to_owned();
        if let backhand::InnerNode::File(f) = &n.inner {
            if p == name {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut fs.file(f).reader(), &mut bytes).unwrap();
                file = Some(bytes);
            }
        }
        if !p.is_empty() {
            paths.push(p);
        }
    }
    (paths, file)
}

/// Profiles built with one --base-dir share one base (the kernel and every
/// program, hundreds of MB); each keeps only its config archive (kB), which
/// holds its generated files and init. The base is the same bytes when built
/// again, and its kernel is unpacked for a direct boot.
#[test]
fn profiles_share_one_base_and_keep_only_their_config() {
    let bases = tempfile::tempdir().unwrap();
    let vms: Vec<tempfile::TempDir> = ["default", "ll-hls", "logged"]
        .iter()
        .map(|p| {
            let dir = tempfile::tempdir().unwrap();
            let out = testkit::run_ok(
                Command::new(BIN)
                    .args(["microvm", "-p", p, "-o"])
                    .arg(dir.path())
                    .arg("--base-dir")
                    .arg(bases.path()),
            );
            assert!(out.contains("config "), "{out}");
            dir
        })
        .collect();
    let keys: Vec<_> = std::fs::read_dir(bases.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 2, "one base and one kernel for all: {keys:?}");
    let (kernels, bases): (Vec<_>, Vec<_>) = keys.iter().partition(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("kernel-")
    });
    let (base, kernel) = (bases[0], kernels[0]);
    let mut configs = Vec::new();
    for vm in &vms {
        for (name, to) in [("base", base), ("kernel", kernel)] {
            let link = vm.path().join(name);
            assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
            assert!(std::fs::read_link(&link).unwrap().is_relative());
            assert_eq!(
                std::fs::canonicalize(&link).unwrap(),
                std::fs::canonicalize(to).unwrap()
            );
        }
        let config = vm.path().join("config.cpio");
        let size = std::fs::metadata(&config).unwrap().len();
        assert!(size < 256 << 10, "config of {size} bytes");
        let names = cpio_paths(&config);
        assert!(
            names.contains(&"etc/hls-swarm/vm-init".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"etc/nginx/nginx.conf".to_owned()),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.contains("libavcodec")), "{names:?}");
        configs.push(std::fs::read(&config).unwrap());
    }
    assert!(configs[0] != configs[1] && configs[1] != configs[2]);
    // the programs are in the read-only root; the initramfs only mounts it
    let root = base.join("root.img");
    let big = std::fs::metadata(&root).unwrap().len();
    assert!(big > 50 << 20, "the base holds the programs: {big} bytes");
    assert_eq!(big % 4096, 0, "a disk of whole 4 KiB blocks");
    let (names, base_init) = squashfs_paths_and_file(&root, "init");
    for want in [
        "init",
        "bin/busybox",
        "usr/bin/ffmpeg",
        "usr/local/bin/test-origin",
    ] {
        assert!(names.contains(&want.to_owned()), "{want} not in the base");
    }
    assert!(!names.iter().any(|n| n == "etc/nginx/nginx.conf"));
    let initramfs = base.join("initramfs.cpio");
    let small = std::fs::metadata(&initramfs).unwrap().len();
    assert!(small < 16 << 20, "an initramfs of {small} bytes");
    let names = cpio_paths(&initramfs);
    for want in ["init", "bin/busybox", "bin/switch_root"] {
        assert!(
            names.contains(&want.to_owned()),
            "{want} not in the initramfs: {names:?}"
        );
    }
    assert!(
        names.iter().any(|n| n.ends_with("/squashfs.ko")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("ffmpeg")), "{names:?}");
    // the guest's three inits pass shellcheck: the initramfs's, the
    // root's and the profile's
    let inits = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("boot-init", cpio_file(&initramfs, "init")),
        ("base-init", base_init),
        (
            "profile-init",
            cpio_file(&vms[2].path().join("config.cpio"), "etc/hls-swarm/vm-init"),
        ),
    ] {
        let file = inits.path().join(name);
        std::fs::write(&file, bytes.unwrap_or_else(|| panic!("no {name}"))).unwrap();
        if let Err(e) = testkit::tools::shellcheck(&file) {
            panic!("{name}: {e}");
        }
    }
    // built again elsewhere: the same bytes
    let again = tempfile::tempdir().unwrap();
    testkit::run_ok(
        Command::new(BIN)
            .args(["microvm", "-p", "logged", "-o"])
            .arg(again.path()),
    );
    for (shared, f) in [
        (base, "base/initramfs.cpio"),
        (base, "base/root.img"),
        (kernel, "kernel/vmlinuz"),
    ] {
        let name = f.split('/').nth(1).unwrap();
        assert!(
            std::fs::read(shared.join(name)).unwrap()
                == std::fs::read(again.path().join(f)).unwrap(),
            "{f} differs between two builds"
        );
    }
    let kernel = std::fs::read(kernel.join("vmlinuz")).unwrap();
    assert_eq!(
        &kernel[..4],
        b"\x7fELF",
        "the kernel is unpacked for a direct boot"
    );
}

#[test]
fn the_origin_vm_boots_serves_and_stops() {
    let _g = serial();
    // 1 s segments: the first is listed a second sooner
    // the two VMs are built side by side, before either boots
    let building = Instant::now();
    let swarm_vm = std::thread::spawn(swarm_vm);
    let dir = origin_vm(&["--set", "hls.segmentDuration=1"]);
    let swarm_vm = swarm_vm.join().expect("the swarm VM is built");
    let built = building.elapsed();
    for script in ["microvm-run", "microvm-stop"] {
        if let Err(e) = testkit::tools::shellcheck(&dir.path().join("bin").join(script)) {
            panic!("{script}: {e}");
        }
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
    assert!(run.contains("-smp 4 -m \"$mem\""));
    assert!(run.contains("mem=4096\n"));
    assert!(
        run.contains(
            "format=raw,readonly=on\" -device virtio-blk-device,drive=base,serial=hls-base"
        ),
        "the base is a read-only disk, which VMs sharing it can all open"
    );

    // A guest whose kernel did not reach our init in 120 s (seen rarely under
    // TCG on a loaded 2-core host) is stopped and booted once more, and the
    // test says so; a broken init fails both boots.
    let mut attempt = 0;
    let (http, pid, health_at, playlist_at, console) = loop {
        attempt += 1;
        let (http, serial_port) = (free_port(), free_port());
        let t = Instant::now();
        // microvm-run returns when /health answers (or fails saying why)
        let started = Command::new(dir.path().join("bin/microvm-run"))
            .env("HTTP_PORT", http.to_string())
            .env("SERIAL_PORT", serial_port.to_string())
            .env("WAIT_SECS", "150")
            .output()
            .expect("qemu-system-x86 is installed");
        let returned = t.elapsed();
        let stdout = String::from_utf8_lossy(&started.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&started.stderr).into_owned();
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
        if started.status.success() {
            // `microvm-run && curl …/health`, as the README says: no wait here
            assert!(stdout.contains("ready after"), "{stdout}");
            assert!(
                matches!(
                    common::http_check::http_get(&format!("{base}/health"), Duration::from_secs(2)),
                    Ok((200, _))
                ),
                "microvm-run returned before /health answered:\n{stdout}"
            );
            health_at = Some(returned);
            while t.elapsed() < returned + Duration::from_secs(120) && playlist_at.is_none() {
                if let Ok((200, p)) = common::http_check::http_get(
                    &format!("{base}/stream.m3u8"),
                    Duration::from_secs(2),
                ) {
                    if p.contains("#EXTINF") {
                        playlist_at = Some(t.elapsed());
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        } else {
            assert!(
                stderr.contains("not ready after"),
                "microvm-run failed:\n{stderr}"
            );
        }
        let booted = console().contains("init: loading modules") || playlist_at.is_some();
        if booted || attempt == 2 {
            break (http, pid, health_at, playlist_at, console);
        }
        eprintln!(
            "the kernel did not reach the init in 150 s; console:\n{}\nbooting it once more",
            console()
        );
        let _ = Command::new(dir.path().join("bin/microvm-stop")).output();
    };
    let ok = health_at.is_some() && playlist_at.is_some();
    // the swarm VM plays the origin VM through the host (10.0.2.2 from a guest)
    let swarm_report = if ok {
        Some(swarm_vm_against(&swarm_vm, http))
    } else {
        None
    };
    let stopping = Instant::now();
    let stop = Command::new(dir.path().join("bin/microvm-stop"))
        .output()
        .unwrap();
    let stopped = stopping.elapsed();
    assert!(ok, "no stream within 120 s; console:\n{}", console());
    let report = swarm_report.unwrap();
    assert!(report.contains("started 2 of 2 viewers"), "{report}");
    assert!(report.contains("HTTP errors 0,"), "{report}");
    let segments: u64 = report
        .lines()
        .filter(|l| l.contains(" segments, "))
        .find_map(|l| {
            l.split(" segments, ")
                .next()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    // how many segments two viewers get in an emulated guest depends on
    // the emulation's speed: only that they played
    assert!(segments > 0, "{report}");
    assert!(
        !report.contains("read 0 B"),
        "bytes are measured in the guest: {report}"
    );
    eprintln!(
        "microVM: built in {:.1} s, /health after {:.1} s, playlist after {:.1} s, stopped in {:.1} s",
        built.as_secs_f64(),
        health_at.unwrap().as_secs_f64(),
        playlist_at.unwrap().as_secs_f64(),
        stopped.as_secs_f64()
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

fn swarm_bin() -> std::path::PathBuf {
    let p = std::path::Path::new(BIN).with_file_name("swarm-client");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build -p swarm-client`",
        p.display()
    );
    p
}

/// The swarm-client's microVM, built in a temp dir.
fn swarm_vm() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    testkit::run_ok(
        Command::new(swarm_bin())
            .args(["microvm", "-o"])
            .arg(dir.path()),
    );
    dir
}

/// Boots the swarm-client VM in `dir` with 2 viewers for 4 s against the
/// origin on host port `http`; returns its console (the swarm's summary).
fn swarm_vm_against(dir: &tempfile::TempDir, http: u16) -> String {
    let booting = Instant::now();
    testkit::run_ok(
        Command::new(dir.path().join("bin/microvm-run"))
            .env("STREAM_URL", format!("http://10.0.2.2:{http}/stream.m3u8"))
            .env("CLIENTS", "2")
            .env("DURATION", "4s")
            .env("METRICS_PORT", free_port().to_string())
            .env("SERIAL_PORT", free_port().to_string()),
    );
    let pid: u32 = std::fs::read_to_string(dir.path().join("run/microvm.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let t = Instant::now();
    let alive =
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"));
    while alive() && t.elapsed() < Duration::from_secs(150) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let console = std::fs::read_to_string(dir.path().join("run/console.log")).unwrap_or_default();
    let _ = Command::new(dir.path().join("bin/microvm-stop")).output();
    assert!(
        !alive(),
        "the swarm VM did not power off after its swarm:\n{console}"
    );
    eprintln!(
        "swarm VM: its swarm started after {:.1} s, then it ran and powered off after {:.1} s",
        (t - booting).as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    console
}

/// `curl` of `url` trusting `ca`: the body when it answered 200.
fn curl_ok(url: &str, ca: &std::path::Path) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--fail", "--cacert"])
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl is installed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `ll-hls` profile in a VM: the LL server runs in the guest beside
/// FFmpeg and nginx (its binary in the guest's files, nginx reaching it on
/// its socket), and over HTTPS a blocking reload for the next part is held
/// until that part is listed, and the part answers.
#[test]
fn an_ll_hls_vm_answers_blocking_reloads_over_https() {
    let _g = serial();
    let mut args = vec!["-p", "ll-hls"];
    args.extend(testkit::origin::LIGHT_LL);
    let dir = origin_vm(&args);
    let http = free_port();
    let started = testkit::run_ok(
        Command::new(dir.path().join("bin/microvm-run"))
            .env("HTTP_PORT", http.to_string())
            .env("SERIAL_PORT", free_port().to_string())
            .env("WAIT_SECS", "150")
            .env("ACCEL", "tcg"),
    );
    let ca = dir.path().join("run/tls/ca.pem");
    let base = format!("https://127.0.0.1:{http}");
    let t = Instant::now();
    let mut answered = None;
    while t.elapsed() < Duration::from_secs(120) && answered.is_none() {
        if let Some(p) = curl_ok(&format!("{base}/video/stream.m3u8"), &ca) {
            if let Some((m, part)) = last_listed_part(&p) {
                let next = format!(
                    "{base}/video/stream.m3u8?_HLS_msn={m}&_HLS_part={}",
                    part + 1
                );
                let asked = Instant::now();
                if let Some(blocked) = curl_ok(&next, &ca) {
                    answered = Some((m, part, blocked, asked.elapsed()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // the newest part the answer lists, fetched before the VM stops
    let part_status = match &answered {
        Some((_, _, blocked, _)) => {
            let (lm, lp) = last_listed_part(blocked).expect("parts in the answer");
            let out = Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "5",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--cacert",
                ])
                .arg(&ca)
                .arg(format!("{base}/video/{lm}.{lp}.m4s"))
                .output()
                .expect("curl is installed");
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        None => Default::default(),
    };
    let stop = Command::new(dir.path().join("bin/microvm-stop"))
        .output()
        .unwrap();
    let console = std::fs::read_to_string(dir.path().join("run/console.log")).unwrap_or_default();
    let (m, part, blocked, held) =
        answered.unwrap_or_else(|| panic!("no blocking reload answered:\n{started}\n{console}"));
    // the part asked for is listed (or the segment closed first: part 0 of
    // the next, §6.2.5.2), and the wait was a wait for it, not an error
    let listed = last_listed_part(&blocked).expect("parts in the answer");
    assert!(
        listed >= (m, part + 1) || listed >= (m + 1, 0),
        "{listed:?} after {m}.{part}:\n{blocked}"
    );
    assert!(held < Duration::from_secs(3), "held {held:?}");
    let (lm, lp) = listed;
    assert!(stop.status.success());
    assert_eq!(
        part_status.0, "200",
        "part {lm}.{lp}: {}\n{console}",
        part_status.1
    );
    assert!(!console.contains("ll-server: cannot"), "{console}");
}

/// The last part (MSN, index) a media playlist lists.
fn last_listed_part(playlist: &str) -> Option<(u64, u64)> {
    let uri = playlist
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("#EXT-X-PART:"))?
        .split("URI=\"")
        .nth(1)?;
    let (m, p) = uri
        .split('"')
        .next()?
        .trim_end_matches(".m4s")
        .split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

/// With logging on, the VM keeps nginx's logs on a persistent ext4 volume,
/// written through a clean guest shutdown by microvm-stop.
/// The logged profile over TLS: its access logs go to a volume that outlives
/// the VM, and `microvm-run` makes the certificate on the host (the CA stays
/// there for viewers) and hands it to the guest at start.
#[test]
fn a_logged_tls_vm_keeps_its_logs_on_a_volume() {
    let _g = serial();
    let dir = origin_vm(&["-p", "logged", "--set", "tls.enable=true"]);
    if let Err(e) = testkit::tools::shellcheck(&dir.path().join("bin/microvm-run")) {
        panic!("microvm-run: {e}");
    }
    let http = free_port();
    let started = testkit::run_ok(
        Command::new(dir.path().join("bin/microvm-run"))
            .env("HTTP_PORT", http.to_string())
            .env("SERIAL_PORT", free_port().to_string())
            .env("ACCEL", "tcg"),
    );
    let ca = dir.path().join("run/tls/ca.pem");
    assert!(
        started.contains(&format!("viewers trust {}", ca.display())),
        "{started}"
    );
    assert!(!dir.path().join("run/tls/ca.key").exists());
    let base = format!("https://127.0.0.1:{http}");
    let t = Instant::now();
    let mut fetched = Vec::new();
    while t.elapsed() < Duration::from_secs(120) && fetched.len() < 2 {
        if let Some(p) = curl_ok(&format!("{base}/stream.m3u8"), &ca) {
            for seg in p.lines().filter(|l| l.ends_with(".ts")) {
                if !fetched.iter().any(|f: &String| f == seg)
                    && curl_ok(&format!("{base}/{seg}"), &ca).is_some()
                {
                    fetched.push(seg.to_owned());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let stop = Command::new(dir.path().join("bin/microvm-stop"))
        .output()
        .unwrap();
    let console = std::fs::read_to_string(dir.path().join("run/console.log")).unwrap_or_default();
    assert!(fetched.len() >= 2, "no segments served:\n{console}");
    assert!(
        console.contains("init: TLS certificate") && !console.contains("no TLS certificate"),
        "{console}"
    );
    assert!(stop.status.success());
    assert!(
        console.contains("init: stopping"),
        "a clean shutdown: {}\n{console}",
        String::from_utf8_lossy(&stop.stdout)
    );
    let log = Command::new("debugfs")
        .args(["-R", "cat /segments.log"])
        .arg(dir.path().join("run/logs.img"))
        .output()
        .expect("debugfs is installed (e2fsprogs)");
    let text = String::from_utf8_lossy(&log.stdout);
    for seg in &fetched {
        assert!(
            text.contains(&format!("/{seg}")),
            "{seg} not in the segment log:\n{text}\n{console}"
        );
    }
}

/// The tap profile's network, whole: `bin/microvm-net` refuses to change
/// anything without root, `check` says what is missing, `up` and `down` are
/// idempotent — and the guest, booted on the tap device, serves the stream
/// at its static address. All of it inside a network namespace this test
/// creates, so the host's own network is never touched.
#[test]
fn the_tap_network_is_set_up_in_a_namespace_and_the_guest_serves_on_it() {
    let _g = serial();
    let dir = origin_vm(&["-p", "tap"]);
    let net = dir.path().join("bin/microvm-net");
    testkit::tools::shellcheck(&net).unwrap_or_else(|e| panic!("microvm-net: {e}"));
    let run = std::fs::read_to_string(dir.path().join("bin/microvm-run")).unwrap();
    assert!(run.contains("ifname=hlstap0"), "{run}");
    assert!(!run.contains("hostfwd"), "a tap guest has no forwards");

    // without root nothing changes, and it says how to do it
    let as_nobody = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&net)
        .arg("up")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&as_nobody.stderr);
    assert_eq!(as_nobody.status.code(), Some(1), "{err}");
    assert!(err.contains("up needs root: run `sudo"), "{err}");

    // set-up, check and tear-down, twice each, in a fresh namespace
    let steps = format!(
        r#"set -u
n={net}
echo "== check before"; "$n" check; echo "rc=$?"
"$n" up && "$n" up || exit 9
echo "== check after"; "$n" check; echo "rc=$?"
ip -o link show dev hlstap0
ip -o addr show dev hlsbr0
"$n" down && "$n" down || exit 9
echo "== check removed"; "$n" check; echo "rc=$?"
"#,
        net = net.display()
    );
    let out = testkit::run_ok(
        Command::new("unshare")
            .args(["--net", "bash", "-c", &steps])
            .stderr(std::process::Stdio::inherit()),
    );
    let sections: Vec<&str> = out.split("== ").collect();
    assert!(sections[1].starts_with("check before\nrc=1\n"), "{out}");
    assert!(sections[2].contains("rc=0"), "{out}");
    assert!(sections[2].contains("master hlsbr0"), "{out}");
    assert!(sections[2].contains("inet 10.177.0.1/24"), "{out}");
    assert!(sections[3].ends_with("rc=1\n"), "{out}");
    let check = Command::new("unshare")
        .args(["--net"])
        .arg(&net)
        .arg("check")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("bridge hlsbr0 does not exist"), "{err}");
    assert!(err.contains("tap device hlstap0 does not exist"), "{err}");
    assert!(err.contains("sudo "), "{err}");
    // microvm-run refuses to start on a missing network, saying what is missing
    let refused = testkit::output(
        Command::new("unshare")
            .args(["--net"])
            .arg(dir.path().join("bin/microvm-run")),
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_ne!(refused.status.code(), Some(0), "{err}");
    assert!(err.contains("the network is not ready"), "{err}");

    // the guest on the tap device: its stream at 10.177.0.10
    let serial_port = free_port();
    let boot = format!(
        r#"set -u
ip link set lo up  # the console listens on 127.0.0.1 of the namespace
"{dir}/bin/microvm-net" up >/dev/null || exit 9
SERIAL_PORT={serial_port} "{dir}/bin/microvm-run" >/dev/null || exit 9
served=no
for _ in $(seq 120); do
  if curl -sf --max-time 2 http://10.177.0.10:17080/stream.m3u8 | grep -q EXTINF; then served=yes; break; fi
  sleep 1
done
"{dir}/bin/microvm-stop" >/dev/null
"{dir}/bin/microvm-net" down >/dev/null
echo "served=$served"
"#,
        dir = dir.path().display()
    );
    let out = testkit::run_ok(Command::new("unshare").args(["--net", "bash", "-c", &boot]));
    let console = std::fs::read_to_string(dir.path().join("run/console.log")).unwrap_or_default();
    assert!(out.contains("served=yes"), "{out}\nconsole:\n{console}");
}
