//! The systemd units a component runs as, as data: service and slice units
//! and everything else a systemd target holds. `systemd.rs` renders them;
//! a run description (`description.rs`) carries them.

use crate::render::Template;

/// A service unit.
#[derive(Clone, Debug, Default)]
pub struct Service {
    /// Unit name without `.service`.
    pub name: String,
    pub description: String,
    /// Program and arguments; template variables become `${VAR}` and must be
    /// set in `environment`.
    pub exec_start: Vec<Template>,
    pub environment: Vec<(String, String)>,
    /// A fixed system user, or `None` with `dynamic_user`.
    pub user: Option<String>,
    pub dynamic_user: bool,
    /// `always` or `on-failure`.
    pub restart: String,
    pub restart_sec: u32,
    pub after: Vec<String>,
    pub slice: Option<String>,
    pub limit_nofile: Option<u64>,
    pub memory_max: Option<String>,
    /// Paths the service may write (everything else is read-only).
    pub read_write_paths: Vec<String>,
    /// Paths bound read-only into the service's view.
    pub bind_read_only_paths: Vec<String>,
    /// `/run/<name>` created for it.
    pub runtime_directory: Option<String>,
    /// `WantedBy=` target; `None` leaves the unit for the admin to enable.
    pub wanted_by: Option<String>,
    /// Documentation line for people reading the unit.
    pub note: Option<String>,
    /// Also deny `@resources` system calls and writable-executable memory
    /// (right for nginx; an encoder may need them).
    pub strict: bool,
    /// `EnvironmentFile=` (settings the admin provides, e.g. a stream URL).
    pub environment_file: Option<String>,
    /// `oneshot`: runs its commands to their end, once (`exec` otherwise).
    pub oneshot: bool,
    /// A oneshot's commands after `exec_start`, in order.
    pub exec_start_more: Vec<Vec<Template>>,
    /// Run only when one of these files is missing
    /// (`ConditionPathExists=|!PATH`).
    pub unless_exists: Vec<String>,
    /// Units it needs started first (`Requires=` and `After=`).
    pub requires: Vec<String>,
    /// `/var/lib/<this>` created for it.
    pub state_directory: Option<String>,
    /// Files handed to it (`LoadCredential=NAME:PATH`): readable in
    /// `/run/credentials/<unit>.service/NAME` by its user alone.
    pub load_credentials: Vec<(String, String)>,
}

/// A slice unit.
#[derive(Clone, Debug, Default)]
pub struct Slice {
    pub name: String,
    pub description: String,
    pub memory_max: Option<String>,
    pub memory_high: Option<String>,
}

/// Everything a component's systemd target holds, as one description that
/// [`files`] writes out: units, the accounts and directories they need, the
/// component's kernel settings, and the files its units read.
#[derive(Clone, Debug, Default)]
pub struct Units {
    /// The component (names the sysctl.d file).
    pub component: String,
    pub services: Vec<Service>,
    pub slices: Vec<Slice>,
    /// The name of the sysusers.d and tmpfiles.d files (`hls-origin`).
    pub set_name: String,
    /// System users: (name, description, home).
    pub users: Vec<(String, String, String)>,
    /// Directories: (path, mode, user, group).
    pub dirs: Vec<(String, u32, String, String)>,
    /// Kernel settings (empty: no sysctl.d file); the same file as the
    /// component's sysctl target writes.
    pub sysctls: std::collections::BTreeMap<&'static str, &'static str>,
    /// Other files (path relative to the output, text): configs the units
    /// read, examples for the admin.
    pub files: Vec<(String, String)>,
}
