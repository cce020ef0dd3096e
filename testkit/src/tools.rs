//! Real tools on generated files, for the tests and for `cargo xtask check`.
//! Each returns the tool's complaint (with the file) on failure, so a test
//! can also show that a broken file is caught; a missing tool is an error
//! that names the Debian package to install.

use std::path::Path;
use std::process::Command;

fn run(mut cmd: Command, program: &str, package: &str, file: &Path) -> Result<(), String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!(
            "cannot run {program} ({e}); install it: apt-get install {package}"
        )),
    }
}

/// `nginx -t` of the config file `conf` with `prefix` as nginx's prefix.
pub fn nginx_t_file(conf: &Path, prefix: &Path) -> Result<(), String> {
    let mut c = Command::new("nginx");
    c.arg("-t").arg("-p").arg(prefix).arg("-c").arg(conf);
    run(c, "nginx", "nginx-light", conf)
}

/// `nginx -t` of the config text `conf`, written into `prefix`.
pub fn nginx_t(conf: &str, prefix: &Path) -> Result<(), String> {
    let file = prefix.join("nginx.conf");
    std::fs::write(&file, conf).map_err(|e| format!("{}: {e}", file.display()))?;
    nginx_t_file(&file, prefix)
}

/// shellcheck of a script.
pub fn shellcheck(script: &Path) -> Result<(), String> {
    let mut c = Command::new("shellcheck");
    c.arg(script);
    run(c, "shellcheck", "shellcheck", script)
}

/// `nix-instantiate --parse` of a .nix file.
pub fn nix_parse(file: &Path) -> Result<(), String> {
    let mut c = Command::new("nix-instantiate");
    c.arg("--parse").arg(file);
    run(c, "nix-instantiate", "nix-bin", file)
}

/// `systemd-analyze verify` of units (one directory's worth). It exits 0
/// with warnings, so every line it writes that names one of the units counts
/// as a failure too.
pub fn systemd_verify<P: AsRef<Path>>(units: &[P]) -> Result<(), String> {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units.iter().map(AsRef::as_ref))
        .output()
        .map_err(|e| format!("cannot run systemd-analyze ({e}); it comes with systemd"))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let names: Vec<String> = units
        .iter()
        .filter_map(|u| u.as_ref().file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let ours = err
        .lines()
        .any(|l| names.iter().any(|n| l.contains(n.as_str())));
    if out.status.success() && !ours {
        Ok(())
    } else {
        Err(err)
    }
}

/// A self-signed certificate for localhost in `dir` (`cert.pem`,
/// `key.pem`), made with openssl: for configs that name one.
pub fn self_signed(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    crate::run_ok(
        std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-noenc", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .env("OPENSSL_CONF", "/dev/null"),
    );
}
