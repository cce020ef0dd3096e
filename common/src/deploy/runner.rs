//! The runner target: a standalone bash script that does what a component's
//! local run does — environment overrides, checks, a banner, its services
//! started in their own process groups and restarted when they die, a wait for
//! readiness, and a cleanup trap — needing only bash, coreutils and the
//! services' programs.
//!
//! A component describes the run as a [`Script`] (`super::description`);
//! the text is rendered here.

use std::fmt::Write;

use crate::render::shell::{heredoc_body, quote, word};

use super::description::{Prepare, Ready, Script, VarKind};

const PATH_CHECK: &str = r#"valid_path() {
  [[ $1 == /* ]] || return 1
  case $1 in
    *[[:space:]]* | *[\'\"\`\;\$\\{}\#]*) return 1 ;;
  esac
  return 0
}
"#;

const URL_CHECK: &str = r#"valid_url() {
  [[ $1 == http://?* || $1 == https://?* ]] || return 1
  case $1 in
    *[[:space:]]* | *[\'\"\`\$\\]*) return 1 ;;
  esac
  return 0
}
"#;

const HTTP_OK: &str = r#"http_ok() { # HOST PORT PATH: does GET PATH answer 200?
  local status=""
  exec 3<>"/dev/tcp/$1/$2" || return 1
  # in a subshell: a peer that resets the connection kills it with SIGPIPE, not the script
  (printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3) 2>/dev/null || { exec 3<&- 3>&-; return 1; }
  IFS= read -r status <&3 || true
  exec 3<&- 3>&-
  [[ $status == *" 200 "* ]]
}
"#;

const HTTPS_OK: &str = r#"https_ok() { # HOST PORT PATH: does GET PATH over TLS answer 200?
  # the server's own readiness: its certificate is not judged here
  local status=""
  status=$(printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" \
    | timeout 2 openssl s_client -quiet -connect "$1:$2" 2>/dev/null \
    | { IFS= read -r line || true; printf '%s' "$line"; }) || true
  [[ $status == *" 200 "* ]]
}
"#;

const SUPERVISE: &str = r#"# Restart a service that exits; three quick failures in a row end the run.
supervise() {
  local i now ran delay
  while true; do
    wait -n || true
    for i in "${!pids[@]}"; do
      kill -0 "${pids[$i]}" 2>/dev/null && continue
      now=$SECONDS
      ran=$((now - started[i]))
      if ((ran < 5)); then fails[i]=$((fails[i] + 1)); else fails[i]=0; fi
      if ((fails[i] >= 3)); then
        log "${names[$i]} failed ${fails[$i]} times in a row; its last lines:"
        tail -n 15 "$STATE_DIR/${names[$i]}.log" >&2 || true
        exit 1
      fi
      delay=$((1 << fails[i]))
      log "${names[$i]} exited after ${ran} s; restarting in ${delay} s"
      sleep "$delay"
      "start_$i"
    done
  done
}
"#;

/// Writes the script to `DIR/bin/NAME` (mode 0755, atomically); returns the path.
pub fn write(dir: &std::path::Path, s: &Script) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("bin").join(&s.name);
    crate::artifact::write_atomic_mode(&path, render(s).as_bytes(), 0o755)?;
    Ok(path)
}

/// Renders the script.
/// Bash that does `p` unless what it makes is there: each step at most
/// 30 s, its output appended to `log` (a shell word's inside, e.g.
/// `$STATE_DIR/prepare.log`) and its last lines shown when it fails; needs
/// the script's `die`.
pub(crate) fn prepare_block(p: &Prepare, log: &str) -> String {
    let mut o = String::new();
    let w = &mut o;
    macro_rules! out {
        ($($arg:tt)*) => { let _ = writeln!(w, $($arg)*); };
    }
    let made: Vec<String> = p
        .unless_exists
        .iter()
        .map(|f| format!("-f {}", word(f)))
        .collect();
    if made.is_empty() {
        out!("{{");
    } else {
        out!("if ! [[ {} ]]; then", made.join(" && "));
    }
    for step in &p.steps {
        let args: Vec<String> = step.args.iter().map(word).collect();
        let env: Vec<String> = step
            .env
            .iter()
            .map(|(k, v)| format!("{k}={} ", quote(v)))
            .collect();
        out!(
            "  {}timeout 30 {} {} >>\"{log}\" 2>&1 \\",
            env.concat(),
            quote(step.program),
            args.join(" ")
        );
        out!(
            "    || {{ tail -n 10 \"{log}\" >&2; die {}; }}",
            quote(&format!("cannot make {}: {} failed", p.what, step.program))
        );
    }
    out!("{}", if made.is_empty() { "}" } else { "fi" });
    o
}

pub fn render(s: &Script) -> String {
    assert!(
        !s.name.is_empty()
            && s.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "script names are lower-case words joined by `-`"
    );
    let mut o = String::new();
    let w = &mut o;
    macro_rules! out {
        ($($arg:tt)*) => { let _ = writeln!(w, $($arg)*); };
    }
    let mut programs: Vec<&str> = s.services.iter().map(|x| x.program).collect();
    let tls_ready = s
        .ready
        .iter()
        .any(|r| matches!(r, Ready::Http { tls: true, .. }));
    let steps = s.prepare.iter().flat_map(|p| &p.steps).map(|x| x.program);
    for program in steps.chain(tls_ready.then_some("openssl")) {
        if !programs.contains(&program) {
            programs.push(program);
        }
    }
    out!("#!/usr/bin/env bash");
    out!("# {}: {}", s.name, s.title);
    out!(
        "# Generated by hls-swarm; do not edit. Needs bash, coreutils and {}.",
        programs.join(", ")
    );
    out!("#");
    out!("# Environment:");
    for v in &s.env {
        let default = v
            .default
            .as_plain()
            .unwrap_or_else(|| "a fresh temp dir".into());
        out!("#   {:<12} {} (default: {default})", v.name, v.help);
    }
    out!("set -euo pipefail");
    out!("set -m # job control: every service runs in its own process group");
    out!();
    out!("readonly SCRIPT_NAME={}", quote(&s.name));
    w.push_str(
        r#"die() { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }
log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
"#,
    );
    out!();
    let https_ready = s
        .ready
        .iter()
        .any(|r| matches!(r, Ready::Http { tls: true, .. }));
    let needs = s
        .services
        .iter()
        .map(|x| (x.program, x.debian_package))
        .chain(
            s.prepare
                .iter()
                .flat_map(|p| &p.steps)
                .map(|x| (x.program, x.debian_package)),
        )
        .chain(https_ready.then_some(("openssl", "openssl")));
    let mut checked = Vec::new();
    for (program, package) in needs {
        if checked.contains(&program) {
            continue;
        }
        checked.push(program);
        out!(
            "command -v {prog} >/dev/null 2>&1 || die {msg}",
            prog = quote(program),
            msg = quote(&if package.is_empty() {
                format!("{program} is not installed; put it on PATH")
            } else {
                format!(
                    "{program} is not installed; install it with: sudo apt-get install {package}"
                )
            })
        );
    }
    out!();
    out!("pids=()");
    out!("names=()");
    out!("started=()");
    out!("fails=()");
    out!("STATE_DIR=\"\"");
    out!("cleanup() {{");
    out!("  trap - EXIT INT TERM HUP");
    out!("  local pid _");
    out!("  for pid in \"${{pids[@]}}\"; do kill -TERM -- \"-$pid\" 2>/dev/null || true; done");
    out!("  for _ in $(seq 50); do");
    out!("    local alive=0");
    out!("    for pid in \"${{pids[@]}}\"; do kill -0 -- \"-$pid\" 2>/dev/null && alive=1; done");
    out!("    ((alive)) || break");
    out!("    sleep 0.1");
    out!("  done");
    out!("  for pid in \"${{pids[@]}}\"; do kill -KILL -- \"-$pid\" 2>/dev/null || true; done");
    out!("  if [[ -n $STATE_DIR ]]; then rm -rf -- \"$STATE_DIR\"; fi");
    out!("}}");
    out!("trap cleanup EXIT");
    out!("trap 'log stopping; exit 0' INT TERM HUP");
    out!();
    out!(
        "STATE_DIR=$(mktemp -d \"${{TMPDIR:-/tmp}}/{}.XXXXXX\")",
        s.name
    );
    out!("chmod 755 \"$STATE_DIR\"");
    out!();
    w.push_str(PATH_CHECK);
    if s.env.iter().any(|v| v.kind == VarKind::Url) {
        w.push_str(URL_CHECK);
    }
    for v in &s.env {
        out!("{n}=\"${{{n}:-}}\"", n = v.name);
        out!(
            "if [[ -z ${} ]]; then {}={}; fi",
            v.name,
            v.name,
            word(&v.default)
        );
        let check = match v.kind {
            VarKind::Port => format!(
                "if ! [[ ${n} =~ ^[0-9]{{1,5}}$ ]] || (({n} < 1 || {n} > 65535)); then die \"{n} must be a port number from 1 to 65535, got '${n}'\"; fi",
                n = v.name
            ),
            VarKind::Path => format!(
                "valid_path \"${n}\" || die \"{n} must be an absolute path without spaces, quotes, ';', '$', '\\\\', braces or '#', got '${n}'\"",
                n = v.name
            ),
            VarKind::ListenAddr => format!(
                "[[ ${n} =~ ^([0-9]{{1,3}}\\.){{3}}[0-9]{{1,3}}$ ]] || die \"{n} must be an IPv4 address, got '${n}'\"",
                n = v.name
            ),
            VarKind::Url => format!(
                "valid_url \"${n}\" || die \"{n} must be an http:// or https:// URL without spaces, quotes, '$' or '\\\\', got '${n}'\"",
                n = v.name
            ),
        };
        out!("{check}");
        if v.kind == VarKind::ListenAddr {
            out!("URL_HOST=${}", v.name);
            out!("if [[ $URL_HOST == 0.0.0.0 ]]; then URL_HOST=127.0.0.1; fi");
        }
    }
    for (name, value) in &s.computed {
        out!("{name}={}", word(value));
    }
    out!();
    for (addr, port) in &s.free_ports {
        out!(
            "if (exec 3<>\"/dev/tcp/${addr}/${port}\") 2>/dev/null; then die \"port ${port} on ${addr} is already in use; set {port} to another\"; fi"
        );
    }
    for d in &s.dirs {
        let d = word(d);
        out!("mkdir -p -- {d} 2>/dev/null || die \"cannot create \"{d}");
        out!("[[ -w {d} ]] || die {d}\" is not writable\"");
    }
    for (path, content) in &s.files {
        out!("cat >{} <<HLS_SWARM_EOF", word(path));
        let body = heredoc_body(content);
        w.push_str(&body);
        if !body.ends_with('\n') {
            w.push('\n');
        }
        out!("HLS_SWARM_EOF");
    }
    for p in &s.prepare {
        w.push_str(&prepare_block(p, "$STATE_DIR/prepare.log"));
    }
    if let Some(b) = &s.banner {
        out!();
        out!("cat <<HLS_SWARM_EOF");
        let body = heredoc_body(b);
        w.push_str(&body);
        if !body.ends_with('\n') {
            w.push('\n');
        }
        out!("HLS_SWARM_EOF");
    }
    out!();
    for (i, svc) in s.services.iter().enumerate() {
        out!("start_{i}() {{");
        out!("  {} \\", quote(svc.program));
        let args: Vec<String> = svc.args.iter().map(word).collect();
        for a in &args {
            out!("    {a} \\");
        }
        out!("    >>\"$STATE_DIR/{}.log\" 2>&1 </dev/null &", svc.name);
        out!("  pids[{i}]=$!");
        out!("  names[{i}]={}", quote(&svc.name));
        out!("  started[{i}]=$SECONDS");
        out!("}}");
        out!("fails[{i}]=0");
        out!("start_{i}");
    }
    out!();
    if !s.ready.is_empty() {
        w.push_str(HTTP_OK);
        if https_ready {
            w.push_str(HTTPS_OK);
        }
        let conds: Vec<String> = s
            .ready
            .iter()
            .map(|r| match r {
                Ready::File(p) => format!("[[ -f {} ]]", word(p)),
                Ready::Http {
                    port_var,
                    path,
                    tls: false,
                } => format!("http_ok \"$URL_HOST\" \"${port_var}\" {}", quote(path)),
                Ready::Http {
                    port_var,
                    path,
                    tls: true,
                } => format!("https_ok \"$URL_HOST\" \"${port_var}\" {}", quote(path)),
            })
            .collect();
        // what each condition is, as `log` arguments (shell words), for the
        // message when one is not met
        let names: Vec<String> = s
            .ready
            .iter()
            .map(|r| match r {
                Ready::File(p) => format!("{} exists", word(p)),
                Ready::Http {
                    port_var,
                    path,
                    tls,
                } => {
                    let scheme = if *tls { "https" } else { "http" };
                    format!(
                        "\"{scheme}://$URL_HOST:${port_var}\"{} answers",
                        quote(path)
                    )
                }
            })
            .collect();
        out!("deadline=$((SECONDS + {}))", s.ready_timeout_secs);
        out!("until {}; do", conds.join(" && "));
        out!("  if ((SECONDS >= deadline)); then");
        out!("    log \"not ready within {} s:\"", s.ready_timeout_secs);
        for (c, n) in conds.iter().zip(&names) {
            out!("    if {c}; then log \"  yes:\" {n}; else log \"  NO:\" {n}; fi");
        }
        out!("    log \"last lines of each service:\"");
        out!("    for n in \"${{names[@]}}\"; do log \"--- $n\"; tail -n 10 \"$STATE_DIR/$n.log\" >&2 || true; done");
        out!("    exit 1");
        out!("  fi");
        out!("  sleep 0.5");
        out!("done");
        out!("log \"ready after $SECONDS s; Ctrl-C stops (service logs: $STATE_DIR/*.log)\"");
    }
    out!();
    w.push_str(SUPERVISE);
    out!("supervise");
    o
}
