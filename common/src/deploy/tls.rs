//! A TLS certificate made when a server starts, never before: a run's own
//! CA signs a server certificate for the names it is reached by, and the
//! CA's key is deleted at once, so nothing else can ever be signed by it.
//! The CA certificate stays beside the server's files for clients to trust
//! (a viewer's `--ca-file DIR/ca.pem`). A certificate the user put there
//! (a mounted `cert.pem` and `key.pem`) is used as it is.

use crate::render::Template;

use super::description::{Prepare, Step};

/// The server certificate chain in a TLS directory.
pub const CERT: &str = "cert.pem";
/// The server's private key in a TLS directory.
pub const KEY: &str = "key.pem";
/// The CA certificate clients trust.
pub const CA: &str = "ca.pem";
/// Days the made certificates are valid.
pub const DAYS: u32 = 365;

/// The names every made certificate holds: a server on this machine.
pub const LOCAL_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// `subjectAltName` of `names` (DNS names and IP addresses; checked by the
/// caller's config type to be names or addresses only).
fn subject_alt_names(names: &[String]) -> String {
    let mut out = Vec::new();
    for n in LOCAL_NAMES
        .iter()
        .copied()
        .chain(names.iter().map(String::as_str))
    {
        let entry = if n.parse::<std::net::IpAddr>().is_ok() {
            format!("IP:{n}")
        } else {
            format!("DNS:{n}")
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    format!("subjectAltName={}", out.join(","))
}

/// Makes `dir`/{ca.pem,cert.pem,key.pem} with openssl unless `cert.pem` and
/// `key.pem` are already there; `names` are added to [`LOCAL_NAMES`].
pub fn make_certificate(dir: &Template, names: &[String]) -> Prepare {
    let file = |name: &str| dir.join(&format!("/{name}"));
    let ca_key = file("ca.key");
    let text = |s: &str| Template::text(s);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-noenc",
    ];
    let days = DAYS.to_string();
    let mut ca = vec![text("req"), text("-x509")];
    ca.extend(ec.map(text));
    ca.extend(["-days", &days, "-subj", "/CN=hls-swarm run CA"].map(text));
    ca.extend(
        [
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
        ]
        .map(text),
    );
    ca.extend([ca_key.clone(), text("-out"), file(CA)]);
    let mut server = vec![
        text("req"),
        text("-x509"),
        text("-CA"),
        file(CA),
        text("-CAkey"),
    ];
    server.push(ca_key.clone());
    server.extend(ec.map(text));
    server.extend(["-days", &days, "-subj", "/CN=localhost", "-addext"].map(text));
    server.push(text(&subject_alt_names(names)));
    server.extend(
        [
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
        ]
        .map(text),
    );
    server.extend([file(KEY), text("-out"), file(CERT)]);
    let openssl = |args| Step {
        program: "openssl",
        debian_package: "openssl",
        args,
        // the same certificates whatever the host's openssl.cnf says, and
        // none is needed in an image
        env: vec![("OPENSSL_CONF", "/dev/null")],
    };
    Prepare {
        unit: None,
        what: "a TLS certificate".into(),
        unless_exists: vec![file(CERT), file(KEY)],
        steps: vec![
            // the directory may be the user's (a mounted one, read-only when
            // it holds their certificate): made here, only when needed
            Step {
                program: "mkdir",
                debian_package: "coreutils",
                args: vec![text("-p"), dir.clone()],
                env: Vec::new(),
            },
            openssl(ca),
            openssl(server),
            Step {
                program: "rm",
                debian_package: "coreutils",
                args: vec![text("-f"), ca_key],
                env: Vec::new(),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_names_or_addresses_once_each() {
        assert_eq!(
            subject_alt_names(&[
                "origin.example".into(),
                "10.0.0.5".into(),
                "localhost".into()
            ]),
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,DNS:origin.example,IP:10.0.0.5"
        );
    }
}
