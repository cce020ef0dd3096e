//! Debian's docker-registry on 127.0.0.1 for the push tests and the bench:
//! plain HTTP, or HTTPS with a CA of its own and a bcrypt htpasswd file,
//! or any `auth` section; and the auth file `podman login` writes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running registry; killed (and waited for) when dropped.
pub struct Registry {
    child: std::process::Child,
    pub port: u16,
}

impl Registry {
    /// A registry storing in `dir`, its config's `http` section followed by
    /// `extra` (more `http` keys, an `auth` section); waited for (10 s).
    pub fn start(dir: &Path, extra: &str) -> Registry {
        let port = crate::free_port();
        let conf = dir.join(format!("registry-{port}.yml"));
        std::fs::write(
            &conf,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.join(format!("data-{port}")).display()
            ),
        )
        .unwrap();
        let child = crate::tool("docker-registry", "docker-registry")
            .arg("serve")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry is installed");
        let mut r = Registry { child, port };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t.elapsed() > Duration::from_secs(10) {
                let _ = r.child.kill();
                panic!("the registry did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    /// A registry with HTTPS (a CA made in `dir`; the server certificate
    /// for 127.0.0.1 and localhost) and basic authentication of `user`
    /// with `password` (bcrypt, by `htpasswd`). Returns it and the
    /// directory holding its CA as `ca.crt`, as certs.d holds it.
    pub fn with_tls_and_password(dir: &Path, user: &str, password: &str) -> (Registry, PathBuf) {
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        self_signed(dir, "registry CA", "ca.key", "certs/ca.crt", true);
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "certs/ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "server.pem",
            ],
        );
        let registry = Registry::start(
            dir,
            &format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.join("server.pem").display(),
                dir.join("server.key").display(),
                htpasswd(dir, user, password).display()
            ),
        );
        (registry, certs)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl ARGS` in `dir` (with no openssl.cnf); panics when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env("OPENSSL_CONF", "/dev/null")
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed RSA certificate `cert` with its key `key` in `dir`, for
/// two days; with `ca`, one that may sign others.
pub fn self_signed(dir: &Path, cn: &str, key: &str, cert: &str, ca: bool) {
    let subject = format!("/CN={cn}");
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject,
    ];
    if ca {
        args.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
    }
    args.extend(["-keyout", key, "-out", cert]);
    openssl(dir, &args);
}

/// `dir/htpasswd` with `user`'s bcrypt hash; the password goes on
/// htpasswd's standard input, not its command line.
pub fn htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    use std::io::Write;
    let mut c = Command::new("htpasswd")
        .args(["-Bin", user])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("htpasswd is installed (apache2-utils)");
    c.stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "htpasswd failed");
    let path = dir.join("htpasswd");
    std::fs::write(&path, out.stdout).unwrap();
    path
}

/// An auth file as `podman login` writes it, for `user:password` at `registry`.
pub fn auth_file(path: &Path, registry: &str, user: &str, password: &str) {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        path,
        serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string(),
    )
    .unwrap();
}
