//! The microVM's shell scripts: the guest's /init, and the host's
//! `microvm-run`, `microvm-stop` and (tap networking) `microvm-net`. The
//! long texts are `.sh` files beside this one with `@NAME@` placeholders.

use crate::render::shell::quote;

use super::*;

/// `template` with each `@KEY@` replaced by its value, in one pass (a value
/// is never searched for keys).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let hit = values
            .iter()
            .find(|(k, _)| after.starts_with(k) && after[k.len()..].starts_with('@'));
        match hit {
            Some((k, v)) => {
                out.push_str(v);
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('@');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The initramfs's /init (busybox sh): the modules (each after its
/// dependencies), then the base mounted read-only under a tmpfs overlay,
/// and the base's /init.
pub(super) fn boot_init(module_paths: &[String], version: &str) -> String {
    let mut modules = String::new();
    for m in module_paths {
        let path = format!("/lib/modules/{version}/{m}");
        if m.ends_with("virtio_mmio.ko") {
            // the kernel leaves module parameters on its command line to modprobe
            modules.push_str("args=\"\"\n# shellcheck disable=SC2013 # the command line is words\nfor p in $(cat /proc/cmdline); do case \"$p\" in virtio_mmio.device=*) args=\"$args device=${p#virtio_mmio.device=}\" ;; esac; done\n");
            modules.push_str(&format!(
                "# shellcheck disable=SC2086\ninsmod {} $args\n",
                quote(&path)
            ));
        } else {
            modules.push_str(&format!("insmod {}\n", quote(&path)));
        }
    }
    fill(
        include_str!("boot.sh"),
        &[("MODULES", &modules), ("SERIAL", BASE_DISK_SERIAL)],
    )
}

/// The base's /init (busybox sh): mounts, the profile's config unpacked
/// from the firmware config, then the profile's init.
pub(super) fn base_init() -> String {
    fill(
        include_str!("init.sh"),
        &[("CONFIG", FW_CFG_CONFIG), ("PROFILE_INIT", PROFILE_INIT)],
    )
}

/// The profile's init (busybox sh), run by the base's: TLS, kernel
/// settings, network, the log volume and the services.
pub(super) fn init_script(spec: &VmSpec) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# hls-swarm microVM profile init (generated; do not edit)\n\
         export PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin\n",
    );
    if let Some(tls) = &spec.tls {
        // the host's certificate, through the firmware config (qemu_fw_cfg)
        let (cert, key) = (quote(&tls.guest_cert), quote(&tls.guest_key));
        s.push_str(&format!(
            "echo 'init: TLS certificate'\nfw=/sys/firmware/qemu_fw_cfg/by_name/{FW_CFG_TLS}\n\
             if [ -r \"$fw/cert.pem/raw\" ] && [ -r \"$fw/key.pem/raw\" ]; then\n\
             \x20 for f in {cert} {key}; do mkdir -p \"${{f%/*}}\"; chown {owner} \"${{f%/*}}\"; done\n\
             \x20 cat \"$fw/cert.pem/raw\" > {cert}\n\
             \x20 (umask 077; cat \"$fw/key.pem/raw\" > {key})\n\
             \x20 chown {owner} {cert} {key}\n\
             else echo 'init: no TLS certificate from the host'; fi\n",
            owner = quote(&tls.owner),
        ));
    }
    s.push_str("echo 'init: kernel settings'\n");
    for (k, v) in &spec.sysctls {
        let file = format!("/proc/sys/{}", k.replace('.', "/"));
        s.push_str(&format!(
            "if [ ! -e {f} ]; then echo {msg}; elif ! echo {v} 2>/dev/null > {f}; then echo {fail}; fi\n",
            fail = quote(&format!("init: cannot set {k} (the kernel refused {v})")),
            f = quote(&file),
            v = quote(v),
            msg = quote(&format!("init: skipping {k}: not in this kernel"))
        ));
    }
    s.push_str("echo 'init: network'\nip link set lo up\nip link set eth0 up\n");
    match &spec.shape.net {
        Net::User { .. } => {
            s.push_str("ip addr add 10.0.2.15/24 dev eth0\nip route add default via 10.0.2.2\n")
        }
        Net::Tap {
            ip,
            prefix,
            gateway,
            ..
        } => {
            s.push_str(&format!(
                "ip addr add {}/{prefix} dev eth0\nip route add default via {}\n",
                quote(ip),
                quote(gateway)
            ));
        }
    }
    if let Some((mp, _, uid)) = &spec.shape.log_volume {
        s.push_str(&format!(
            "echo 'init: log volume'\nmkdir -p {mp}\nlogs=\"\"\nfor _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do\n  for d in /sys/block/vd*; do [ \"$(cat \"$d/serial\" 2>/dev/null)\" = {serial} ] && logs=\"/dev/${{d##*/}}\"; done\n  [ -n \"$logs\" ] && [ -b \"$logs\" ] && break\n  sleep 0.2\ndone\nif [ -n \"$logs\" ] && mount -t ext4 \"$logs\" {mp}; then chown {uid}:{uid} {mp}; else echo 'init: no log volume; block devices:'; cat /proc/partitions; fi\n",
            serial = LOG_DISK_SERIAL,
            mp = quote(mp)
        ));
    }
    s.push_str("guest_env=\"\"\n# shellcheck disable=SC2013 # the command line is words\nfor p in $(cat /proc/cmdline); do case \"$p\" in hlsenv.*=*) guest_env=\"$guest_env ${p#hlsenv.}\" ;; esac; done\n");
    s.push_str("pids=\"\"\n");
    for svc in &spec.services {
        let env: Vec<String> = svc
            .env
            .iter()
            .map(|(k, v)| quote(&format!("{k}={v}")))
            .collect();
        let argv: Vec<String> = svc.argv.iter().map(|a| quote(a)).collect();
        let command = format!(
            "exec env -i PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin HOME=/tmp {} \"$@\" {}",
            env.join(" "),
            argv.join(" ")
        );
        s.push_str(&format!(
            "echo {msg}\n# host settings (guest_env) come last and win\n# shellcheck disable=SC2086\nsu -s /bin/sh {user} -c {cmd} sh $guest_env </dev/null &\npids=\"$pids $!\"\n",
            msg = quote(&format!("init: starting {} as {}", svc.name, svc.user)),
            cmd = quote(&command),
            user = quote(&svc.user),
        ));
    }
    s.push_str(
        "# the services get SIGTERM and up to 3 s to end, checked every 0.1 s\n\
         stop() { echo 'init: stopping'; for p in $pids; do kill -TERM \"$p\" 2>/dev/null; done; \
         i=0; while [ $i -lt 30 ]; do up=0; for p in $pids; do if kill -0 \"$p\" 2>/dev/null; then up=1; fi; done; \
         if [ $up = 0 ]; then break; fi; sleep 0.1; i=$((i + 1)); done; \
         sync; umount -a -r 2>/dev/null; poweroff -f; }\n\
         trap stop TERM INT\n\
         # microvm-stop writes this line on the console for a clean shutdown; the\n\
         # services read nothing from it (their stdin is /dev/null)\n\
         (while read -r line; do case \"$line\" in *hls-swarm:poweroff*) stop ;; esac; done) </dev/console &\n\
         # when a service ends the machine powers off\n\
         for p in $pids; do wait \"$p\"; done\n\
         echo 'init: services ended'\nsync\npoweroff -f\n",
    );
    s
}

/// `bin/microvm-net` of a tap-networked VM: `up` (as root) creates the
/// bridge with the gateway's address and the tap device in it, `down`
/// removes them, `check` says what is missing. Doing any of them twice
/// changes nothing.
pub(super) fn net_script(spec: &VmSpec) -> Option<String> {
    let Net::Tap {
        device,
        bridge,
        ip,
        prefix,
        gateway,
        ..
    } = &spec.shape.net
    else {
        return None;
    };
    let q = crate::render::shell::quote;
    Some(format!(
        "#!/usr/bin/env bash\n# Sets up, removes or checks the network of the {name} microVM (generated by hls-swarm; do not edit).\nset -euo pipefail\nBRIDGE={bridge}\nTAP={tap}\nADDRESS={address}\nGUEST={guest}\n{body}",
        name = spec.name,
        bridge = q(bridge),
        tap = q(device),
        address = q(&format!("{gateway}/{prefix}")),
        guest = q(ip),
        body = include_str!("net.sh"),
    ))
}

/// `healthy HOST PORT PATH`: does a GET answer 200?
const HEALTHY_PLAIN: &str = r#"healthy() {
  local status=""
  exec 3<>"/dev/tcp/$1/$2" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3 || true
  IFS= read -r -t 2 status <&3 || true
  exec 3<&- 3>&-
  [[ $status == "HTTP/1."?" 200"* ]]
}
"#;

/// `healthy HOST PORT PATH` over TLS (the server's readiness: its
/// certificate is not judged here).
const HEALTHY_TLS: &str = r#"healthy() {
  local status=""
  status=$(printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" \
    | timeout 3 openssl s_client -quiet -connect "$1:$2" 2>/dev/null \
    | { IFS= read -r line || true; printf '%s' "$line"; }) || true
  [[ $status == "HTTP/1."?" 200"* ]]
}
"#;

pub(super) fn run_script(spec: &VmSpec) -> String {
    let mut env_doc = String::new();
    let mut netdev = String::from("user,id=n0");
    let mut checks = String::new();
    let mut device = "virtio-net-device,netdev=n0".to_owned();
    let mut guest = String::new();
    let mut drive = String::new();
    if let Some((mp, size, _)) = &spec.shape.log_volume {
        guest.push_str(&format!(
            "logimg=\"$here/run/logs.img\"  # persistent {mp} volume\nif [[ ! -f $logimg ]]; then\n  command -v mke2fs >/dev/null 2>&1 || die \"mke2fs is not installed; install it with: sudo apt-get install e2fsprogs\"\n  mkdir -p \"$here/run\"\n  truncate -s {size}M \"$logimg\"\n  mke2fs -q -t ext4 -F \"$logimg\"\nfi\n"
        ));
        drive = format!(" \\\n  -drive \"file=$logimg,if=none,id=logs,format=raw\" -device virtio-blk-device,drive=logs,serial={LOG_DISK_SERIAL}");
    }
    for v in &spec.guest_env {
        env_doc.push_str(&format!(
            "#   {v:<14} passed to the guest's services when set (no spaces)\n"
        ));
        guest.push_str(&format!(
            "if [[ -n ${{{v}:-}} ]]; then\n  if ! [[ ${v} =~ ^[A-Za-z0-9:/._?=\\&%+,@-]+$ ]]; then die \"{v} may hold no spaces or shell characters\"; fi\n  append=\"$append hlsenv.{v}=${v}\"\nfi\n"
        ));
    }
    match &spec.shape.net {
        Net::User { forwards } => {
            for (var, default, guest) in forwards {
                env_doc.push_str(&format!("#   {var:<14} host port (127.0.0.1) for guest port {guest} (default {default})\n"));
                checks.push_str(&format!(
                    "{var}=\"${{{var}:-{default}}}\"\nif ! [[ ${var} =~ ^[0-9]{{1,5}}$ ]] || (({var} < 1 || {var} > 65535)); then die \"{var} must be a port number\"; fi\n"
                ));
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:${{{var}}}-:{guest}"));
            }
        }
        Net::Tap {
            device: dev, mac, ..
        } => {
            // what is missing goes to stderr, and the run stops
            checks.push_str("\"$here/bin/microvm-net\" check >/dev/null\n");
            netdev = format!("tap,id=n0,ifname={dev},script=no,downscript=no");
            device = format!("virtio-net-device,netdev=n0,mac={mac}");
        }
    }
    let mut fw_cfg = String::new();
    if let Some(tls) = &spec.tls {
        guest.push_str("# the TLS certificate handed to the guest\n");
        guest.push_str("command -v openssl >/dev/null 2>&1 || die \"openssl is not installed; install it with: sudo apt-get install openssl\"\n");
        match &tls.host_files {
            Some((cert, key)) => {
                guest.push_str(&format!(
                    "tls_cert={}\ntls_key={}\n",
                    quote(cert),
                    quote(key)
                ));
            }
            None => {
                env_doc.push_str("#   TLS_DIR        the TLS certificate handed to the guest: cert.pem and key.pem\n#                  used when there, else made with ca.pem (default DIR/run/tls)\n");
                guest.push_str("TLS_DIR=\"${TLS_DIR:-$here/run/tls}\"\nmkdir -p \"$here/run\"\n");
                let names: Vec<String> = tls.names.clone();
                let make = crate::deploy::tls::make_certificate(
                    &crate::render::Template::var("TLS_DIR"),
                    &names,
                );
                guest.push_str(&crate::deploy::runner::prepare_block(
                    &make,
                    "$here/run/tls.log",
                ));
                guest.push_str("tls_cert=\"$TLS_DIR/cert.pem\"\ntls_key=\"$TLS_DIR/key.pem\"\n");
                guest.push_str("if [[ -f $TLS_DIR/ca.pem ]]; then echo \"microvm-run: viewers trust $TLS_DIR/ca.pem (their --ca-file)\"; fi\n");
            }
        }
        // QEMU reads `,` in an option value as the next option
        guest.push_str("case $tls_cert$tls_key in *,*) die \"the TLS files' paths may not hold a comma\" ;; esac\n");
        fw_cfg = format!(
            " \\\n  -fw_cfg \"name={FW_CFG_TLS}/cert.pem,file=$tls_cert\" -fw_cfg \"name={FW_CFG_TLS}/key.pem,file=$tls_key\""
        );
    }
    // where the host reaches the guest's health check
    let health = match (&spec.health, &spec.shape.net) {
        (Some((port, path)), Net::User { forwards }) => forwards
            .iter()
            .find(|(_, _, guest)| guest == port)
            .map(|(var, _, _)| format!("health_url=(127.0.0.1 \"${var}\" {})\n", quote(path))),
        (Some((port, path)), Net::Tap { ip, .. }) => Some(format!(
            "health_url=({} {port} {})\n",
            quote(ip),
            quote(path)
        )),
        (None, _) => None,
    }
    .unwrap_or_else(|| "health_url=()\n".to_owned());
    fill(
        include_str!("run.sh"),
        &[
            ("HEALTH", &health),
            ("NAME", &spec.name),
            ("ENV_DOC", &env_doc),
            ("SERIAL", &spec.serial_port.to_string()),
            ("CHECKS", &checks),
            ("GUEST", &guest),
            ("VCPUS", &spec.shape.vcpus.to_string()),
            ("MEM", &spec.shape.memory_mb.to_string()),
            ("CONFIG", FW_CFG_CONFIG),
            ("NETDEV", &netdev),
            ("DEVICE", &device),
            ("DRIVE", &format!("{drive}{fw_cfg}")),
            ("BASE_SERIAL", BASE_DISK_SERIAL),
            (
                "HEALTHY",
                if spec.tls.is_some() {
                    HEALTHY_TLS
                } else {
                    HEALTHY_PLAIN
                },
            ),
            ("SCHEME", if spec.tls.is_some() { "https" } else { "http" }),
        ],
    )
}

/// The host's `bin/microvm-stop`.
pub(super) fn stop_script(spec: &VmSpec) -> String {
    fill(include_str!("stop.sh"), &[("NAME", &spec.name)])
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill("a @X@ b @Y@ @Z@ x@y.z", &[("X", "@Y@"), ("Y", "2")]),
            "a @Y@ b 2 @Z@ x@y.z"
        );
    }
}
