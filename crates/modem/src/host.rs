//! What the host machine does to a modem port: ModemManager probing it, a process holding it,
//! file permissions refusing it. Each finding comes with the exact fix.
//!
//! Why a module of its own: `conductor modem scan`, the daemon's start-up log and open errors,
//! `conductor doctor` and `conductor service install` all need the same facts and the same
//! words (issue 10, "Living with the host"). Reading them is best effort: a host without
//! `/proc` or `/sys` (Windows, macOS) gets `None`/empty answers, never an error, and callers
//! fall back to the generic advice of [`crate::OpenError`].
//!
//! Not here: opening ports (`transport`), probing them (`scan`).
//!
//! Every root (`/sys`, `/dev`, `/proc`) comes from [`HostRoots`], so tests point them at a
//! fixture tree built in a temp dir; [`HostRoots::from_env`] lets end-to-end tests do the same
//! to a whole `conductor` process.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Where the host's kernel interfaces are mounted. The real ones by default.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostRoots {
    /// sysfs (`/sys`): the serial ports and their USB parents.
    pub sys: PathBuf,
    /// Device nodes (`/dev`), including `serial/by-id`.
    pub dev: PathBuf,
    /// procfs (`/proc`): running processes and their open files.
    pub proc: PathBuf,
}

impl Default for HostRoots {
    fn default() -> HostRoots {
        HostRoots {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
            proc: PathBuf::from("/proc"),
        }
    }
}

impl HostRoots {
    /// The real roots, each replaced by `CONDUCTOR_SYS_ROOT`, `CONDUCTOR_DEV_ROOT` or
    /// `CONDUCTOR_PROC_ROOT` when set. Test hooks: they let an end-to-end test run the real
    /// binary against a fixture of a USB dongle; nobody needs them on a real machine.
    pub fn from_env() -> HostRoots {
        let pick = |name: &str, default: PathBuf| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or(default)
        };
        let real = HostRoots::default();
        HostRoots {
            sys: pick("CONDUCTOR_SYS_ROOT", real.sys),
            dev: pick("CONDUCTOR_DEV_ROOT", real.dev),
            proc: pick("CONDUCTOR_PROC_ROOT", real.proc),
        }
    }
}

/// A process, as procfs names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Process {
    /// Its id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`), e.g. `minicom`.
    pub name: String,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.name, self.pid)
    }
}

/// The numbered entries of a procfs root, with their command names.
fn processes(proc_root: &Path) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut found: Vec<Process> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            Some(Process {
                pid,
                name: name.trim().to_owned(),
            })
        })
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

/// ModemManager, when it runs. It opens every port that looks like a modem and sends its own
/// AT commands, so a conversation with the same port fails at random; the cure is to tell it
/// to ignore the device ([`udev_rule`]) or to stop it.
pub fn modem_manager(roots: &HostRoots) -> Option<Process> {
    processes(&roots.proc)
        .into_iter()
        .find(|p| p.name == "ModemManager")
}

/// Where [`udev_rule`] goes. The number sorts it before ModemManager's own
/// `80-mm-candidate.rules`, which read `ID_MM_DEVICE_IGNORE`.
pub const UDEV_RULE_PATH: &str = "/etc/udev/rules.d/77-conductor-modemmanager-ignore.rules";

/// The commands that make udev and ModemManager read a new rule.
pub const UDEV_RELOAD: &str = "sudo udevadm control --reload-rules && sudo udevadm trigger";

/// The udev rule that makes ModemManager leave the USB device `vendor:product` alone (hex ids
/// as sysfs prints them, e.g. `12d1`, `1506`).
pub fn udev_rule(vendor: &str, product: &str) -> String {
    format!(
        "ATTRS{{idVendor}}==\"{vendor}\", ATTRS{{idProduct}}==\"{product}\", \
         ENV{{ID_MM_DEVICE_IGNORE}}=\"1\""
    )
}

/// The full advice for a running ModemManager: the rules for the given USB ids (or a
/// placeholder when none are known), where to put them, and how to apply them.
pub fn modem_manager_advice(manager: &Process, usb_ids: &[(String, String)]) -> String {
    let mut rules: Vec<String> = usb_ids.iter().map(|(v, p)| udev_rule(v, p)).collect();
    rules.dedup();
    if rules.is_empty() {
        rules.push(format!(
            "{}   # the ids: `conductor modem scan` or `udevadm info -a -n /dev/ttyUSB2`",
            udev_rule("VVVV", "PPPP")
        ));
    }
    format!(
        "ModemManager is running ({manager}); it opens modem ports and sends its own AT \
         commands, which breaks Conductor's conversation at random. Make it ignore the modem: \
         put\n    {}\ninto {UDEV_RULE_PATH}, then run `{UDEV_RELOAD}` and replug the modem (or \
         stop it everywhere: `sudo systemctl disable --now ModemManager`)",
        rules.join("\n    ")
    )
}

/// Who holds a device open, as far as this process may look.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Holders {
    /// Processes with the device open (this process excluded).
    pub processes: Vec<Process>,
    /// Processes whose open files could not be read (other users' without root).
    pub unreadable: usize,
}

impl Holders {
    /// "minicom (pid 4242), ModemManager (pid 812)".
    pub fn describe(&self) -> String {
        self.processes
            .iter()
            .map(Process::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether `path` is (a link to) a pseudo-terminal: its other side is always held by the
/// program serving it (the simulator, ser2net's pty mode, socat), so "held by another process"
/// means nothing there.
pub fn is_pseudo_terminal(path: &Path) -> bool {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_owned())
        .starts_with("/dev/pts")
}

/// The processes that have `device` open, found by reading every `PROC/*/fd/*` link. Best
/// effort: without root, other users' processes (ModemManager runs as root) are counted in
/// [`Holders::unreadable`] instead. Pseudo-terminals are never reported ([`is_pseudo_terminal`]).
pub fn holders(roots: &HostRoots, device: &Path) -> Holders {
    let mut result = Holders::default();
    if is_pseudo_terminal(device) {
        return result;
    }
    let mut names: Vec<PathBuf> = vec![device.to_owned()];
    if let Ok(real) = std::fs::canonicalize(device) {
        names.push(real);
    }
    // A link in a fixture `/dev` (or `/dev/serial/by-id/...`) names its target too.
    if let Ok(target) = std::fs::read_link(device) {
        names.push(device.parent().unwrap_or(Path::new("/")).join(target));
    }
    let own = std::process::id();
    for process in processes(&roots.proc) {
        if process.pid == own {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(roots.proc.join(process.pid.to_string()).join("fd")) else {
            result.unreadable += 1;
            continue;
        };
        let holds = fds
            .filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| names.contains(&target)));
        if holds {
            result.processes.push(process);
        }
    }
    result
}

/// The group a device file belongs to and whether its group may read and write it, from the
/// file's metadata and `/etc/group`.
#[cfg(unix)]
fn device_group(device: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let gid = std::fs::metadata(device).ok()?.gid();
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    group_name(&groups, gid)
}

#[cfg(not(unix))]
fn device_group(_device: &Path) -> Option<String> {
    None
}

/// The name of group `gid` in an `/etc/group` text.
fn group_name(groups: &str, gid: u32) -> Option<String> {
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id = fields.next()?.parse::<u32>().ok()?;
        (id == gid).then(|| name.to_owned())
    })
}

/// The exact fix for "permission denied" on `device`: the group that owns the port (`dialout`
/// on Debian and Ubuntu, `uucp` on Arch and Fedora's older releases) and the commands for a
/// login user and for the service account.
pub fn permission_fix(device: &Path) -> String {
    let group = device_group(device)
        .filter(|g| g != "root")
        .unwrap_or_else(|| "dialout".to_owned());
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "$USER".to_owned());
    format!(
        "{} is writable only by the `{group}` group: run `sudo usermod -aG {group} {user}` and \
         log in again (for the service: `sudo usermod -aG {group} conductor`, or \
         `SupplementaryGroups={group}` in its unit, then `sudo systemctl restart conductor`)",
        device.display()
    )
}

/// What the host says about a port that could not be opened, for the open error's detail:
/// the permission fix, or who holds a busy port (and ModemManager's cure when it is the
/// holder). `None` when there is nothing more specific than the error's own advice.
pub fn explain_open_failure(
    roots: &HostRoots,
    device: &Path,
    kind: crate::OpenErrorKind,
) -> Option<String> {
    match kind {
        crate::OpenErrorKind::PermissionDenied => Some(permission_fix(device)),
        crate::OpenErrorKind::Busy => {
            let held = holders(roots, device);
            if held.processes.is_empty() {
                return (held.unreadable > 0).then(|| {
                    "its holder is another user's process (run `sudo fuser -v` on the port to \
                     see which)"
                        .to_owned()
                });
            }
            let mut text = format!("held by {}", held.describe());
            if let Some(manager) = held.processes.iter().find(|p| p.name == "ModemManager") {
                let ids = crate::scan::usb_ids_of(roots, device)
                    .map(|ids| vec![ids])
                    .unwrap_or_default();
                text.push_str("; ");
                text.push_str(&modem_manager_advice(manager, &ids));
            } else {
                text.push_str(" (stop it, or use another port)");
            }
            Some(text)
        }
        _ => None,
    }
}

/// The file name of a path, as text.
pub(crate) fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(OsStr::to_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_proc(dir: &Path, processes: &[(u32, &str, &[&Path])]) -> HostRoots {
        let proc = dir.join("proc");
        for (pid, name, open) in processes {
            let base = proc.join(pid.to_string());
            std::fs::create_dir_all(base.join("fd")).expect("mkdir");
            std::fs::write(base.join("comm"), format!("{name}\n")).expect("comm");
            for (fd, target) in open.iter().enumerate() {
                #[cfg(unix)]
                std::os::unix::fs::symlink(target, base.join("fd").join(fd.to_string()))
                    .expect("fd link");
                #[cfg(not(unix))]
                let _ = (fd, target);
            }
        }
        std::fs::create_dir_all(proc.join("self")).expect("self");
        HostRoots {
            sys: dir.join("sys"),
            dev: dir.join("dev"),
            proc,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "conductor-host-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn modem_manager_is_found_by_its_command_name() {
        let dir = temp_dir("mm");
        let roots = fixture_proc(
            &dir,
            &[
                (1, "systemd", &[]),
                (812, "ModemManager", &[]),
                (900, "bash", &[]),
            ],
        );
        assert_eq!(
            modem_manager(&roots),
            Some(Process {
                pid: 812,
                name: "ModemManager".into()
            })
        );
        let quiet = fixture_proc(&temp_dir("quiet"), &[(1, "systemd", &[])]);
        assert_eq!(modem_manager(&quiet), None);
        let missing = HostRoots {
            proc: dir.join("nowhere"),
            ..roots
        };
        assert_eq!(modem_manager(&missing), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_udev_rule_names_the_real_ids_and_where_it_goes() {
        assert_eq!(
            udev_rule("12d1", "1506"),
            "ATTRS{idVendor}==\"12d1\", ATTRS{idProduct}==\"1506\", ENV{ID_MM_DEVICE_IGNORE}=\"1\""
        );
        let manager = Process {
            pid: 812,
            name: "ModemManager".into(),
        };
        let advice = modem_manager_advice(&manager, &[("12d1".into(), "1506".into())]);
        assert!(advice.contains("pid 812"), "{advice}");
        assert!(advice.contains("ATTRS{idVendor}==\"12d1\""), "{advice}");
        assert!(advice.contains(UDEV_RULE_PATH), "{advice}");
        assert!(
            advice.contains("udevadm control --reload-rules"),
            "{advice}"
        );
        let unknown = modem_manager_advice(&manager, &[]);
        assert!(unknown.contains("VVVV"), "{unknown}");
    }

    #[cfg(unix)]
    #[test]
    fn the_holder_of_a_port_is_named_from_proc() {
        let dir = temp_dir("holders");
        let port = dir.join("ttyUSB2");
        std::fs::write(&port, "").expect("node");
        let other = dir.join("ttyUSB0");
        let roots = fixture_proc(
            &dir,
            &[
                (4242, "minicom", &[&port]),
                (4300, "bash", &[&other]),
                (812, "ModemManager", &[&port]),
            ],
        );
        let held = holders(&roots, &port);
        assert_eq!(
            held.describe(),
            "ModemManager (pid 812), minicom (pid 4242)",
            "{held:?}"
        );
        let text = explain_open_failure(&roots, &port, crate::OpenErrorKind::Busy)
            .expect("a busy port is explained");
        assert!(text.contains("minicom (pid 4242)"), "{text}");
        assert!(text.contains("ID_MM_DEVICE_IGNORE"), "{text}");
        assert!(holders(&roots, &dir.join("ttyACM0")).processes.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_permission_error_names_the_group_and_both_fixes() {
        assert_eq!(
            group_name("root:x:0:\ndialout:x:20:pi\nuucp:x:14:", 20),
            Some("dialout".into())
        );
        assert_eq!(group_name("garbage\n:x:y", 20), None);
        let fix = permission_fix(Path::new("/nonexistent/ttyUSB2"));
        assert!(fix.contains("usermod -aG dialout"), "{fix}");
        assert!(fix.contains("systemctl restart conductor"), "{fix}");
    }
}
