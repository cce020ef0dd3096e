//! A component's run description: the settings it reads from the
//! environment, the directories and files it writes, the services it starts
//! and how it knows they are ready, and how the same services run as system
//! services. Every way of running a component renders this one description:
//! the runner script (`runner.rs`), the local run (`crate::local_run`), the
//! systemd units (`systemd.rs`) and the NixOS module.

use std::net::IpAddr;

use crate::error::UsageError;
use crate::render::Template;

use super::unit;

/// How an environment variable is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarKind {
    /// 1–65535.
    Port,
    /// An absolute path with none of: whitespace, quotes, `;`, `$`, `\`, `{`, `}`, `#`.
    Path,
    /// An IPv4 address; also defines `URL_HOST` (127.0.0.1 for 0.0.0.0).
    ListenAddr,
    /// An `http://` or `https://` URL without whitespace, quotes, `\`, `$` or backticks.
    Url,
}

impl VarKind {
    /// `value` of the setting `name`, checked as this kind expects (and
    /// normalised: an IPv6 address in brackets); the error names the setting
    /// and what it expected.
    pub fn check(self, name: &str, value: &str) -> Result<String, UsageError> {
        let bad =
            |expected: &str| UsageError(format!("{name}: expected {expected}, got `{value}`"));
        Ok(match self {
            VarKind::Port => match value.parse::<u16>() {
                Ok(p) if p > 0 => p.to_string(),
                _ => return Err(bad("a port number from 1 to 65535")),
            },
            VarKind::Path => {
                if !value.starts_with('/')
                    || value
                        .chars()
                        .any(|c| c.is_whitespace() || "'\"`;$\\{}#".contains(c))
                {
                    return Err(bad(
                        "an absolute path without spaces, quotes, `;`, `$`, `\\`, braces or `#`",
                    ));
                }
                value.to_owned()
            }
            VarKind::ListenAddr => match value.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(IpAddr::V6(a)) => format!("[{a}]"),
                Ok(a) => a.to_string(),
                Err(_) => return Err(bad("an IP address")),
            },
            VarKind::Url => {
                if !(value.starts_with("http://") || value.starts_with("https://"))
                    || value
                        .chars()
                        .any(|c| c.is_whitespace() || "'\"`$\\".contains(c))
                {
                    return Err(bad("an http:// or https:// URL"));
                }
                value.to_owned()
            }
        })
    }
}

/// A setting read from the environment.
#[derive(Clone, Debug)]
pub struct EnvVar {
    pub name: &'static str,
    /// The value when unset; may use `STATE_DIR` (the script's temp dir).
    pub default: Template,
    pub kind: VarKind,
    pub help: String,
}

/// A long-running program.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub program: &'static str,
    pub debian_package: &'static str,
    pub args: Vec<Template>,
    /// Its unit when it runs as a system service (the systemd target and the
    /// NixOS module), `None` when it does not. Its `exec_start` stays empty:
    /// [`super::systemd::units_of`] fills it in from `program` and `args`.
    pub unit: Option<unit::Service>,
}

/// One program run to its end before the services start.
#[derive(Clone, Debug)]
pub struct Step {
    pub program: &'static str,
    pub debian_package: &'static str,
    pub args: Vec<Template>,
    /// Its environment besides the caller's (fixed values).
    pub env: Vec<(&'static str, &'static str)>,
}

/// Work done before the services start, unless what it makes is already
/// there (e.g. a certificate the user mounted): its steps run in order and
/// each must succeed.
#[derive(Clone, Debug)]
pub struct Prepare {
    /// What it makes, for messages (`a TLS certificate`).
    pub what: String,
    /// Skipped when every one of these files exists.
    pub unless_exists: Vec<Template>,
    pub steps: Vec<Step>,
    /// Its oneshot unit when the services run as system services; its
    /// commands and condition are filled in from the steps by
    /// [`super::systemd::units_of`]. `None`: not done there.
    pub unit: Option<unit::Service>,
}

/// How the services of a run description run as system services (the
/// systemd target and the NixOS module): the same programs, arguments and
/// files, with the values fixed here.
#[derive(Clone, Debug, Default)]
pub struct System {
    /// The fixed value of each setting and computed value that the services'
    /// arguments and the files use. A setting stays `${NAME}` in
    /// `ExecStart=`, set by an `Environment=` line (so an admin can change
    /// it in a drop-in); a computed value is written in.
    pub values: Vec<(&'static str, String)>,
    /// The rest of the units' description: slices, users, directories,
    /// kernel settings, extra files. Its services and the description's own
    /// files are added by [`super::systemd::units_of`].
    pub units: unit::Units,
}

/// A condition the run waits for.
#[derive(Clone, Debug)]
pub enum Ready {
    /// A file exists.
    File(Template),
    /// `GET path` on `URL_HOST:port_var` answers 200 (over TLS when `tls`:
    /// the server's own readiness, its certificate is not judged).
    Http {
        port_var: &'static str,
        path: String,
        tls: bool,
    },
}

/// A component's run description: what the runner script does, what the
/// local run (`crate::local_run`) does, and, with [`System`], what the
/// systemd units and the NixOS module run.
#[derive(Clone, Debug)]
pub struct Script {
    /// File name, also used in messages (`test-hls-origin`).
    pub name: String,
    /// One line saying what it runs.
    pub title: String,
    pub env: Vec<EnvVar>,
    /// Values computed from the environment, in order (`RUN_DIR`, `BASE_URL`).
    pub computed: Vec<(&'static str, Template)>,
    /// `(address var, port var)` pairs that must be free before starting.
    pub free_ports: Vec<(&'static str, &'static str)>,
    /// Directories created before the services start.
    pub dirs: Vec<Template>,
    /// Files written before the services start: (path, content).
    pub files: Vec<(Template, Template)>,
    /// Work done after the files are written, before the services start.
    pub prepare: Vec<Prepare>,
    pub banner: Option<Template>,
    pub services: Vec<Service>,
    pub ready: Vec<Ready>,
    pub ready_timeout_secs: u32,
    /// How the services run as system services; `None` when they do not.
    pub system: Option<System>,
}
