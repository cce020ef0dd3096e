//! The README's commands, run as written. Every command of its `sh` and
//! `console` blocks is covered by one rule below: it is run here by `bash`
//! (with `cargo run -p NAME --` standing for the workspace's binary NAME and
//! the binaries on PATH, each rule's substitutions shown beside it), or it
//! names the test that runs it (an image, a microVM boot or a workspace build:
//! too heavy to run twice), or it says why it cannot run on this machine (a
//! remote registry or CDN, a cluster, a change to the host's kernel). A README
//! command no rule covers fails the test, and so does a rule that covers
//! nothing: the README and this list move together.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::origin::TestOrigin;
use testkit::Captured;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// One command of the README: its text (continuation lines joined) and the
/// exit status the README shows for it (`$ echo $?`), if any.
#[derive(Debug)]
struct Shown {
    line: usize,
    text: String,
    exit: Option<i32>,
}

/// The commands of the README's `sh` and `console` blocks, and the files of
/// its `toml` blocks that name themselves in a first-line comment
/// (`# my-profiles.toml`).
fn readme() -> (Vec<Shown>, Vec<(String, String)>) {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut commands: Vec<Shown> = Vec::new();
    let mut files = Vec::new();
    let mut block: Option<(&str, usize)> = None;
    let mut body: Vec<&str> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if let Some(lang) = line.strip_prefix("```") {
            match block.take() {
                None => {
                    block = Some((lang, n));
                    body.clear();
                    continue;
                }
                Some((lang, start)) => {
                    match lang {
                        "sh" => commands.extend(sh(&body, start, false)),
                        "console" => commands.extend(sh(&body, start, true)),
                        "toml" => {
                            if let Some(name) = body
                                .first()
                                .and_then(|l| l.strip_prefix("# "))
                                .filter(|n| !n.contains(' '))
                            {
                                files.push((name.to_owned(), body[1..].join("\n") + "\n"));
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
            }
        }
        if block.is_some() {
            body.push(line);
        }
    }
    (commands, files)
}

/// The commands of one block starting at line `start`; in a console block
/// only `$ ` lines are commands, and the line after `$ echo $?` is the exit
/// status of the command before it.
fn sh(body: &[&str], start: usize, console: bool) -> Vec<Shown> {
    let mut out: Vec<Shown> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let n = start + 1 + i;
        let mut line = body[i].trim_end().to_owned();
        i += 1;
        if console {
            match line.strip_prefix("$ ") {
                Some(cmd) => line = cmd.to_owned(),
                None => continue,
            }
        }
        while line.ends_with('\\') && i < body.len() {
            line.pop();
            line.push(' ');
            line.push_str(body[i].trim());
            i += 1;
        }
        let line = line.trim().to_owned();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if console && line == "echo $?" {
            let status = body.get(i).and_then(|l| l.trim().parse().ok());
            let before = out.last_mut().expect("`echo $?` follows a command");
            before.exit = Some(status.expect("`echo $?` is followed by the status"));
            i += 1;
            continue;
        }
        out.push(Shown {
            line: n,
            text: line,
            exit: None,
        });
    }
    out
}

/// What to do with the commands a rule covers.
#[derive(Clone, Copy)]
enum How {
    /// Run it to its end (2 minutes at most); it exits 0, or with the
    /// status the README shows.
    Run,
    /// A server: run it until it prints `ready`, stop it as Ctrl-C would;
    /// it exits 0. With `beside`, the README's next command runs while it
    /// serves (the README shows them one after the other, as two terminals).
    Serve { ready: &'static str, beside: bool },
    /// A run until Ctrl-C: stopped after `secs`; it exits 0 and prints `says`.
    Stop { secs: u64, says: &'static str },
    /// Run by `test` in `file` (which must be there, and the file must
    /// hold `uses`: the subcommand or script it runs).
    Elsewhere {
        file: &'static str,
        test: &'static str,
        uses: &'static str,
    },
    /// Not on this machine, and why.
    NotHere(&'static str),
}

type Subs = &'static [(&'static str, &'static str)];

struct Rule {
    /// The start of the commands it covers.
    starts: &'static str,
    /// Text replaced before it runs (`{ORIGIN}`: the port of the test's own
    /// origin; `{FREE}`: a free port).
    subs: Subs,
    how: How,
}

/// The origin the README's swarm commands point at (`127.0.0.1:17080`, or
/// `origin:17080` on another machine) is this test's origin, on a free port.
const ORIGIN: &[(&str, &str)] = &[
    ("http://origin:17080", "http://127.0.0.1:{ORIGIN}"),
    ("127.0.0.1:17080", "127.0.0.1:{ORIGIN}"),
    (" URL ", " http://127.0.0.1:{ORIGIN}/stream.m3u8 "),
];

/// A swarm of minutes runs for seconds, and with a few viewers.
const SHORT: &[(&str, &str)] = &[
    ("http://origin:17080", "http://127.0.0.1:{ORIGIN}"),
    ("127.0.0.1:17080", "127.0.0.1:{ORIGIN}"),
    ("http://origin:9100", "http://127.0.0.1:{FREE}"),
    ("--duration 5m", "--duration 4s"),
    ("--duration 10m", "--duration 4s"),
    ("--duration 20s", "--duration 4s"),
    ("clients=2000", "clients=10"),
    ("clients=5000", "clients=5"),
];

/// Port 8080 may be taken here; a free one instead, and the stream in the
/// test's directory rather than /srv.
const PORT_8080: &[(&str, &str)] = &[("8080", "{FREE}"), ("/srv/hls", "srv-hls")];

const NO: &[(&str, &str)] = &[];

const fn run(starts: &'static str, subs: Subs) -> Rule {
    Rule {
        starts,
        subs,
        how: How::Run,
    }
}

const fn serve(starts: &'static str, subs: Subs, ready: &'static str, beside: bool) -> Rule {
    Rule {
        starts,
        subs,
        how: How::Serve { ready, beside },
    }
}

const fn stop(starts: &'static str, subs: Subs, secs: u64, says: &'static str) -> Rule {
    Rule {
        starts,
        subs,
        how: How::Stop { secs, says },
    }
}

/// (file, test, what the file runs)
const fn elsewhere(
    starts: &'static str,
    (file, test, uses): (&'static str, &'static str, &'static str),
) -> Rule {
    Rule {
        starts,
        subs: NO,
        how: How::Elsewhere { file, test, uses },
    }
}

const fn not_here(starts: &'static str, why: &'static str) -> Rule {
    Rule {
        starts,
        subs: NO,
        how: How::NotHere(why),
    }
}

/// The tests that run the README's images and microVMs.
const PODMAN: (&str, &str) = (
    "test-origin/tests/container.rs",
    "podman_runs_the_origin_image_and_the_swarm_image_plays_it",
);
const MICROVM: (&str, &str) = (
    "test-origin/tests/microvm.rs",
    "the_origin_vm_boots_serves_and_stops",
);

/// [`elsewhere`]: in [`PODMAN`]'s test.
const fn in_podman_test(starts: &'static str, uses: &'static str) -> Rule {
    elsewhere(starts, (PODMAN.0, PODMAN.1, uses))
}

/// [`elsewhere`]: in [`MICROVM`]'s test.
const fn in_microvm_test(starts: &'static str, uses: &'static str) -> Rule {
    elsewhere(starts, (MICROVM.0, MICROVM.1, uses))
}

const RULES: &[Rule] = &[
    elsewhere(
        "prometheus --web.enable-remote-write-receiver",
        (
            "swarm-client/tests/prometheus.rs",
            "pushed_and_scraped_metrics_answer_every_dashboard_query",
            "\"--web.enable-remote-write-receiver\"",
        ),
    ),
    elsewhere(
        "swarm-client run https://cdn.example/live/master.m3u8 -p stress --remote-write",
        (
            "swarm-client/tests/prometheus.rs",
            "pushed_and_scraped_metrics_answer_every_dashboard_query",
            "--remote-write=",
        ),
    ),
    elsewhere(
        "swarm-client run http://127.0.0.1:17080/stream.m3u8 --set clients=20 --duration 5m",
        (
            "swarm-client/tests/shapes.rs",
            "a_live_gate_stops_a_run_within_its_window_of_crossing_its_threshold",
            "\"--abort-on\"",
        ),
    ),
    run("swarm-client compare", NO),
    not_here(
        "swarm-client capacity http://127.0.0.1:17080/stream.m3u8 --start 4000",
        "a search of up to 40 000 viewers for minutes: `cargo xtask bench --only capacity` \
         runs it, tests/capacity.rs searches a link saturated at a known point",
    ),
    elsewhere(
        "cargo xtask demo",
        (
            "xtask/tests/soak.rs",
            "a_two_minute_soak_passes_and_every_viewer_plays_at_real_time",
            "\"soak\"",
        ),
    ),
    not_here(
        "cargo xtask test",
        "the whole suite, of which this test is a part",
    ),
    not_here(
        "cargo xtask check",
        "fmt, clippy and the whole suite, of which this test is a part",
    ),
    not_here(
        "cargo xtask bench",
        "measures this machine for minutes; tests never time",
    ),
    elsewhere(
        "cargo xtask build-all",
        (
            "xtask/tests/build_all.rs",
            "build_all_writes_an_index_and_reuses_what_is_built",
            "\"build-all\"",
        ),
    ),
    elsewhere(
        "cargo xtask nix-profiles",
        (
            "xtask/tests/build_all.rs",
            "a_new_profile_appears_in_profiles_build_all_and_nix_profiles",
            "\"nix-profiles\"",
        ),
    ),
    run("cargo run -p test-origin -- profiles", NO),
    run("cargo run -p swarm-client -- profiles", NO),
    run("cargo run -p test-origin -- config", NO),
    run("cargo run -p test-origin -- schema", NO),
    serve(
        "cargo run -p test-origin -- run",
        PORT_8080,
        "ready after",
        false,
    ),
    serve(
        "cargo run -p test-origin -- run -p low-latency --port 8080 --verify",
        PORT_8080,
        "verified ",
        false,
    ),
    serve(
        "PORT=8080 HLS_DIR=/srv/hls cargo run -p test-origin -- run",
        PORT_8080,
        "ready after",
        false,
    ),
    run("cargo run -p test-origin -- runner", NO),
    serve(
        "PORT=8080 out/bin/test-hls-origin",
        PORT_8080,
        "ready after",
        false,
    ),
    not_here(
        "cargo run -p swarm-client -- run https://cdn.example/",
        "a remote CDN: tests send traffic only to this machine",
    ),
    stop(
        "cargo run -p swarm-client -- run URL --set variant=abr",
        ORIGIN,
        4,
        "viewers",
    ),
    stop(
        "cargo run -p swarm-client -- run URL --engine ffmpeg",
        ORIGIN,
        4,
        "viewers",
    ),
    run("cargo run -p swarm-client -- run", SHORT),
    run("swarm-client run", SHORT),
    run("swarm-client merge box-a.json", NO),
    run("cargo run -p swarm-client -- viewer-args", ORIGIN),
    in_podman_test(
        "cargo run -p test-origin -- container",
        ".arg(\"container\")",
    ),
    in_podman_test(
        "cargo run -p swarm-client -- container",
        ".arg(\"container\")",
    ),
    in_podman_test("podman ", ".arg(\"load\")"),
    in_microvm_test("cargo run -p test-origin -- microvm", "\"microvm\""),
    in_microvm_test(
        "HTTP_PORT=17080 vm/bin/microvm-run && curl",
        "bin/microvm-run",
    ),
    in_microvm_test("vm/bin/microvm-stop", "bin/microvm-stop"),
    in_microvm_test("cargo run -p swarm-client -- microvm", "STREAM_URL"),
    in_microvm_test(
        "STREAM_URL=http://10.0.2.2:17080/stream.m3u8 CLIENTS=20 DURATION=5m svm/bin/microvm-run",
        "STREAM_URL",
    ),
    run("cargo run -p test-origin -- systemd", NO),
    run("cargo run -p test-origin -- nixos-module", NO),
    not_here(
        "cargo run -p test-origin -- sysctl --apply",
        "changes this machine's kernel settings, as root",
    ),
    run(
        "cargo run -p test-origin -- sysctl -o /etc/sysctl.d/",
        &[("/etc/sysctl.d/", "etc-sysctl.d/")],
    ),
    not_here("skopeo copy", "pushes to a remote registry"),
    not_here("podman login", "logs in to a remote registry"),
    elsewhere(
        "cargo run -p test-origin -- container -p low-latency --push",
        (
            "test-origin/tests/container.rs",
            "push_over_tls_with_credentials_reuses_what_the_registry_has",
            "\"--push\"",
        ),
    ),
    run("cargo run -p test-origin -- kubernetes", NO),
    run("cargo run -p swarm-client -- kubernetes", NO),
    not_here(
        "kubectl ",
        "needs a Kubernetes cluster (the manifests are validated below)",
    ),
    run("cargo run -p test-origin -- ffmpeg-args", NO),
    run("cargo run -p test-origin -- nginx-config", NO),
    serve("cargo run -p hls-probe -- run", ORIGIN, "health on", true),
    run("curl http://127.0.0.1:17090/health", NO),
    elsewhere(
        "cargo run -p hls-probe -- container",
        (
            "hls-probe/tests/probe.rs",
            "the_generated_image_runs_the_probe_in_podman",
            "\"container\"",
        ),
    ),
];

/// Files the README's commands read that it does not show.
const UNSHOWN: &[(&str, &str)] = &[("my-overrides.toml", "[hls]\nlistSize = 8\n")];

/// The rule with the longest start the command begins with.
fn rule(cmd: &Shown) -> Option<usize> {
    (0..RULES.len())
        .filter(|&i| cmd.text.starts_with(RULES[i].starts))
        .max_by_key(|&i| RULES[i].starts.len())
}

/// `cargo run -p NAME -- ARGS` as the binary NAME; any other cargo command
/// refused (the rules never run one).
fn prelude(bin: &Path) -> String {
    format!(
        "set -e\n\
         cargo() {{\n\
           if [ \"$1\" = run ] && [ \"$2\" = -p ] && [ \"$4\" = -- ]; then\n\
             local p=\"$3\"; shift 4; \"{bin}/$p\" \"$@\"\n\
           else echo \"not run by this test: cargo $*\" >&2; return 99; fi\n\
         }}\n",
        bin = bin.display()
    )
}

fn script(bin: &Path, text: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c").arg(format!("{}{text}\n", prelude(bin)));
    let path = std::env::var("PATH").unwrap_or_default();
    c.env("PATH", format!("{}:{path}", bin.display()));
    c.process_group(0);
    c
}

fn signal(p: &Captured, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, "--", &format!("-{}", p.child.id())])
        .status();
}

/// Waits for `p` to exit, `limit` at most (then kills its group).
fn wait(p: &mut Captured, limit: Duration, what: &str) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            // the readers may still hold the last lines
            p.drain(Duration::from_secs(5));
            return s.code().unwrap_or(-1);
        }
        if started.elapsed() > limit {
            signal(p, "-KILL");
            let _ = p.child.wait();
            panic!("{what} still running after {limit:?}:\n{}", p.output());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn until(p: &mut Captured, ready: &str, what: &str) {
    let started = Instant::now();
    while !p.output().contains(ready) {
        if let Some(s) = p.child.try_wait().unwrap() {
            p.drain(Duration::from_secs(5));
            panic!("{what} exited ({s}) before `{ready}`:\n{}", p.output());
        }
        if started.elapsed() > Duration::from_secs(60) {
            signal(p, "-KILL");
            panic!("{what}: no `{ready}` within 60 s:\n{}", p.output());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The command as it runs here.
fn substituted(cmd: &Shown, r: &Rule, origin: u16) -> String {
    let mut text = format!("{} ", cmd.text);
    for (from, to) in r.subs {
        let to = to
            .replace("{ORIGIN}", &origin.to_string())
            .replace("{FREE}", &testkit::free_port().to_string());
        text = text.replace(from, &to);
    }
    text.trim_end().to_owned()
}

#[test]
fn every_readme_command_is_run_here_or_by_a_named_test() {
    let (commands, files) = readme();
    assert!(commands.len() > 40, "{commands:#?}");

    // every command has a rule, every rule a command, every named test exists
    let mut used = vec![0; RULES.len()];
    let mut missing = Vec::new();
    for c in &commands {
        match rule(c) {
            Some(i) => used[i] += 1,
            None => missing.push(format!("README.md:{}: {}", c.line, c.text)),
        }
    }
    assert!(
        missing.is_empty(),
        "README commands no rule covers (add one to RULES):\n{}",
        missing.join("\n")
    );
    for (r, n) in RULES.iter().zip(&used) {
        assert!(*n > 0, "the rule `{}` covers no README command", r.starts);
        if let How::Elsewhere { file, test, uses } = r.how {
            let src = std::fs::read_to_string(root().join(file)).unwrap();
            assert!(
                src.contains(&format!("fn {test}(")),
                "no test `{test}` in {file}"
            );
            assert!(src.contains(uses), "{file} does not run {uses}");
        }
    }

    let bin = testkit::origin::binaries();
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files.iter().map(|(n, t)| (n.as_str(), t.as_str())) {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    for (name, text) in UNSHOWN {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let origin = TestOrigin::start(&[], 2);

    let mut ran = 0;
    let mut i = 0;
    while i < commands.len() {
        let c = &commands[i];
        i += 1;
        let r = &RULES[rule(c).unwrap()];
        let text = substituted(c, r, origin.port);
        let what = format!("README.md:{}: {text}", c.line);
        match r.how {
            How::Elsewhere { file, test, .. } => eprintln!("{what}\n  run by {file}: {test}"),
            How::NotHere(why) => eprintln!("{what}\n  not here: {why}"),
            _ => eprintln!("{what}"),
        }
        let began = Instant::now();
        let start = || Captured::spawn(script(&bin, &text).current_dir(dir.path()));
        match r.how {
            How::Elsewhere { .. } | How::NotHere(_) => continue,
            How::Run => {
                let mut p = start();
                let code = wait(&mut p, Duration::from_secs(120), &what);
                let want = c.exit.unwrap_or(0);
                assert_eq!(
                    code,
                    want,
                    "{what}: exit {code}, not {want}:\n{}",
                    p.output()
                );
            }
            How::Serve { ready, beside } => {
                let mut p = start();
                until(&mut p, ready, &what);
                if beside {
                    let next = &commands[i];
                    i += 1;
                    let nr = &RULES[rule(next).unwrap()];
                    assert!(matches!(nr.how, How::Run), "{next:?} runs beside {what}");
                    let text = substituted(next, nr, origin.port);
                    let mut q = Captured::spawn(script(&bin, &text).current_dir(dir.path()));
                    let code = wait(&mut q, Duration::from_secs(30), &text);
                    assert_eq!(code, 0, "README.md:{}: {text}:\n{}", next.line, q.output());
                    ran += 1;
                }
                signal(&p, "-INT");
                let code = wait(&mut p, Duration::from_secs(30), &what);
                assert_eq!(code, 0, "{what}: exit {code} after Ctrl-C:\n{}", p.output());
            }
            How::Stop { secs, says } => {
                let mut p = start();
                std::thread::sleep(Duration::from_secs(secs));
                signal(&p, "-INT");
                let code = wait(&mut p, Duration::from_secs(30), &what);
                assert_eq!(code, 0, "{what}: exit {code} after Ctrl-C:\n{}", p.output());
                assert!(p.output().contains(says), "{what}:\n{}", p.output());
            }
        }
        ran += 1;
        eprintln!("  ran in {:.1} s", began.elapsed().as_secs_f64());
        // what the command says it writes is there
        for (flag, path) in text.split_whitespace().zip(text.split_whitespace().skip(1)) {
            if ["-o", "--summary-json", "--report"].contains(&flag) {
                assert!(dir.path().join(path).exists(), "{what}: no {path} written");
            }
        }
    }
    assert!(ran >= 25, "only {ran} README commands ran here");

    // the Kubernetes walkthrough's manifests (step 3 with --start-at) pass
    // the official schemas, strictly
    let mut yaml = Vec::new();
    for sub in ["k8s/origin", "k8s/swarm"] {
        for e in std::fs::read_dir(dir.path().join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") && !p.ends_with("kustomization.yaml") {
                yaml.push(p);
            }
        }
    }
    assert!(yaml.len() >= 4, "{yaml:?}");
    testkit::kubernetes_validate(&yaml);
}
