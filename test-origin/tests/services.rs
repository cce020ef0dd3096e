//! The systemd, NixOS-module and sysctl targets, checked with
//! `systemd-analyze verify`, `nix-instantiate --parse` and a proc-like tree.

use std::process::Command;

use common::render::Template;
use test_origin::TestOrigin;

const BIN: &str = env!("CARGO_BIN_EXE_test-origin");

fn run(args: &[&str]) -> String {
    testkit::run_ok(Command::new(BIN).args(args))
}

#[test]
fn systemd_units_of_every_profile_verify() {
    for profile in common::profile_names::<TestOrigin>().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let listed = run(&[
            "systemd",
            "-p",
            &profile,
            "-o",
            dir.path().to_str().unwrap(),
        ]);
        // 9 files, and the TLS unit, the LL server's unit and its settings
        let ll = profile.starts_with("ll-");
        assert_eq!(listed.lines().count(), if ll { 12 } else { 9 }, "{listed}");
        let sd = dir.path().join("systemd");
        let (generator, nginx) = (
            sd.join("hls-generator.service"),
            sd.join("hls-nginx.service"),
        );
        let mut units = vec![generator.clone(), nginx.clone()];
        // the LL server and the TLS unit of the profiles that have them
        for extra in ["hls-ll-server.service", "hls-tls.service"] {
            if sd.join(extra).exists() {
                units.push(sd.join(extra));
            }
        }
        assert_eq!(sd.join("hls-ll-server.service").exists(), ll, "{profile}");
        let units: Vec<&std::path::Path> = units.iter().map(|p| p.as_path()).collect();
        testkit::tools::systemd_verify(&units).unwrap_or_else(|e| panic!("{profile}: {e}"));

        // ExecStart is the one FFmpeg builder, with % doubled and the HLS dir a variable
        let l = common::load::<TestOrigin>(&common::Request {
            profile: profile.clone(),
            ..Default::default()
        })
        .unwrap();
        let args =
            test_origin::ffmpeg::ffmpeg_args(&l.config, &l.derived, &Template::var("HLS_DIR"));
        let expected: Vec<String> = args
            .iter()
            .map(common::render::systemd::exec_template)
            .collect();
        let unit = std::fs::read_to_string(&generator).unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        assert!(exec.ends_with(&expected.join(" ")), "{exec}");
        // the HLS muxer's segment pattern, or the dash muxer's manifest
        let (output, muxer) = if ll {
            ("manifest.mpd", "-f dash")
        } else {
            ("seg%%05d.ts", "-f hls")
        };
        assert!(
            exec.contains("${HLS_DIR}/") && exec.contains(output) && exec.contains(muxer),
            "{exec}"
        );
        let nginx_unit = std::fs::read_to_string(&nginx).unwrap();
        for line in [
            "DynamicUser=yes",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "CapabilityBoundingSet=",
            "SystemCallFilter=@system-service",
            "SystemCallFilter=~@privileged",
            "SystemCallFilter=~@resources",
            "BindReadOnlyPaths=/var/hls",
        ] {
            assert!(
                nginx_unit.lines().any(|l| l == line),
                "{profile}: no {line}"
            );
        }
        let slice = std::fs::read_to_string(sd.join("hls-origin.slice")).unwrap();
        assert!(slice.contains("MemoryMax=3G") && slice.contains("MemoryHigh=2560M"));
        if profile == "default" {
            insta::assert_snapshot!("systemd-hls-generator-default", unit);
            insta::assert_snapshot!("systemd-hls-nginx-default", nginx_unit);
        }
        // the service nginx config passes nginx -t
        let conf = dir.path().join("hls-swarm/test-origin/nginx.conf");
        // a TLS config's certificate, where the unit's credentials would be
        let tls = dir.path().join("tls");
        testkit::tools::self_signed(&tls);
        let text = std::fs::read_to_string(&conf)
            .unwrap()
            .replace("/run/credentials/hls-nginx.service", tls.to_str().unwrap())
            .replace("/run/hls-nginx", dir.path().join("run").to_str().unwrap());
        std::fs::create_dir_all(dir.path().join("run/logs")).unwrap();
        let test_conf = dir.path().join("t.conf");
        std::fs::write(&test_conf, text).unwrap();
        testkit::tools::nginx_t_file(&test_conf, dir.path())
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
    }
}

#[test]
fn verify_catches_a_broken_unit() {
    let dir = tempfile::tempdir().unwrap();
    // a file that is not a program
    let not_a_program = dir.path().join("ffmpeg.txt");
    std::fs::write(&not_a_program, "text").unwrap();
    run(&[
        "systemd",
        "-o",
        dir.path().to_str().unwrap(),
        "--binary",
        &format!("ffmpeg={}", not_a_program.display()),
    ]);
    let unit = dir.path().join("systemd/hls-generator.service");
    assert!(
        testkit::tools::systemd_verify(&[&unit]).is_err(),
        "a missing program must fail verification"
    );
}

#[test]
fn nixos_modules_parse_and_grant_no_access() {
    for profile in common::profile_names::<TestOrigin>().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        run(&[
            "nixos-module",
            "-p",
            &profile,
            "-o",
            dir.path().to_str().unwrap(),
        ]);
        let file = dir.path().join("test-origin.nix");
        testkit::tools::nix_parse(&file).unwrap_or_else(|e| panic!("{profile}: {e}"));
        let text = std::fs::read_to_string(&file).unwrap();
        let access = "password Password authorizedKeys PermitRootLogin autologin 0.0.0.0";
        for bad in access.split(' ') {
            assert!(!text.contains(bad), "{profile}: module mentions {bad}");
        }
        assert!(text.contains("listenAddress = \"127.0.0.1\";"));
        assert!(text.contains("ExecStart = \"${cfg.ffmpeg}/bin/ffmpeg "));
        let output = if profile.starts_with("ll-") {
            "manifest.mpd"
        } else {
            "seg%%05d.ts"
        };
        assert!(
            text.contains("\\${HLS_DIR}/") && text.contains(output),
            "unit variables are escaped for Nix"
        );
        if profile == "default" {
            insta::assert_snapshot!("nixos-module-default", text);
        }
        let guest = dir.path().join("test-origin-microvm.nix");
        testkit::tools::nix_parse(&guest).unwrap_or_else(|e| panic!("{profile} guest: {e}"));
        let g = std::fs::read_to_string(&guest).unwrap();
        assert!(g.contains("vcpu = 4;") && g.contains("mem = 4096;"));
        assert_eq!(
            g.contains("volumes = ["),
            profile.contains("logged") || profile == "debug",
            "{profile}: log volume"
        );
        assert_eq!(
            g.contains("type = \"tap\""),
            profile.starts_with("tap"),
            "{profile}: networking"
        );
        for bad in ["password", "authorizedKeys", "PermitRootLogin", "0.0.0.0"] {
            assert!(!g.contains(bad), "{profile}: guest mentions {bad}");
        }
    }
}

#[test]
fn sysctl_apply_skips_keys_the_kernel_lacks() {
    let proc = tempfile::tempdir().unwrap();
    // a kernel that has somaxconn but not tcp_fack
    let p = proc.path().join("sys/net/core/somaxconn");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, "4096\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "sysctl",
            "--apply",
            "--proc-root",
            proc.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("skipped net.ipv4.tcp_fack"), "{err}");
    assert!(err.contains("set net.core.somaxconn = 65535"), "{err}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "65535\n");
}

/// TLS with a made certificate as system services: a oneshot unit makes it
/// once (its commands, run here as written, give a certificate its CA
/// verifies), nginx requires that unit and reads the files as its
/// credentials, and the NixOS module runs the same commands from nixpkgs.
#[test]
fn tls_units_make_the_certificate_once_and_hand_it_to_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let listed = run(&[
        "systemd",
        "--set",
        "tls.enable=true",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(listed.lines().count(), 10, "{listed}");
    let sd = out.join("systemd");
    let (tls_unit, nginx) = (sd.join("hls-tls.service"), sd.join("hls-nginx.service"));
    testkit::tools::systemd_verify(&[&tls_unit, &nginx]).unwrap_or_else(|e| panic!("{e}"));
    let unit = std::fs::read_to_string(&tls_unit).unwrap();
    for line in [
        "Type=oneshot",
        "RemainAfterExit=yes",
        "StateDirectory=hls-origin-tls",
        "ConditionPathExists=|!/var/lib/hls-origin-tls/cert.pem",
        "Environment=TLS_DIR=/var/lib/hls-origin-tls",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line}:\n{unit}");
    }
    let nginx_unit = std::fs::read_to_string(&nginx).unwrap();
    for line in [
        "Requires=hls-tls.service",
        "LoadCredential=cert.pem:/var/lib/hls-origin-tls/cert.pem",
        "LoadCredential=key.pem:/var/lib/hls-origin-tls/key.pem",
    ] {
        assert!(
            nginx_unit.lines().any(|l| l == line),
            "no {line}:\n{nginx_unit}"
        );
    }

    // the oneshot's commands, as written, into a directory of this test
    let tls = dir.path().join("tls");
    for exec in unit.lines().filter_map(|l| l.strip_prefix("ExecStart=")) {
        let line = exec.replace("${TLS_DIR}", tls.to_str().unwrap());
        testkit::run_ok(
            Command::new("sh")
                .args(["-c", &line])
                .env("OPENSSL_CONF", "/dev/null"),
        );
    }
    let mut made: Vec<String> = std::fs::read_dir(&tls)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["ca.pem", "cert.pem", "key.pem"]);
    let verified = testkit::run_ok(
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(tls.join("ca.pem"))
            .arg(tls.join("cert.pem")),
    );
    assert!(verified.contains(": OK"), "{verified}");

    // nginx, handed those files as its credentials, accepts its config
    let conf = std::fs::read_to_string(out.join("hls-swarm/test-origin/nginx.conf")).unwrap();
    assert!(conf.contains("ssl_certificate \"/run/credentials/hls-nginx.service/cert.pem\";"));
    let text = conf
        .replace("/run/credentials/hls-nginx.service", tls.to_str().unwrap())
        .replace("/run/hls-nginx", dir.path().join("run").to_str().unwrap());
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    let test_conf = dir.path().join("t.conf");
    std::fs::write(&test_conf, text).unwrap();
    testkit::tools::nginx_t_file(&test_conf, dir.path()).unwrap_or_else(|e| panic!("{e}"));

    let nix = dir.path().join("nix");
    run(&[
        "nixos-module",
        "--set",
        "tls.enable=true",
        "-o",
        nix.to_str().unwrap(),
    ]);
    let module = nix.join("test-origin.nix");
    testkit::tools::nix_parse(&module).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&module).unwrap();
    for part in [
        "systemd.services.hls-tls = {",
        "\"${pkgs.coreutils}/bin/mkdir -p \\${TLS_DIR}\"",
        "\"${pkgs.openssl}/bin/openssl req -x509 ",
        "LoadCredential = [ \"cert.pem:/var/lib/hls-origin-tls/cert.pem\"",
    ] {
        assert!(text.contains(part), "no {part}:\n{text}");
    }
}
