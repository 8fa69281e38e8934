//! A pseudo-terminal for one virtual modem, reached through a symlink the simulator owns.
//!
//! Why a symlink: a USB modem's stable name is `/dev/serial/by-id/…`, a link that disappears
//! when the device is unplugged and comes back (to a new `ttyUSBn`) when it is plugged in. The
//! simulator does the same: `<dir>/modem0 -> /dev/pts/N`, removed on unplug and re-pointed to
//! a fresh pty on replug, so a driver's reconnect logic meets what it meets in the field.
//!
//! The master is non-blocking and read through tokio's `AsyncFd`. The simulator keeps the
//! slave open itself, so the master neither reports EIO while no client has the port open nor
//! notices clients coming and going (a real UART does not either), and sets it to raw mode so
//! a client that opens the path with plain file I/O gets bytes untouched (no echo, no CR/LF
//! translation by the line discipline).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::{PtyMaster, grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;

/// How long a write may wait for a client that is not reading before the bytes are dropped,
/// as a UART's would be.
const WRITE_PATIENCE: Duration = Duration::from_millis(200);

/// An open pty and its symlink.
pub(crate) struct Pty {
    master: AsyncFd<PtyMaster>,
    _slave: File,
    link: PathBuf,
    target: String,
}

fn io_error(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Pty {
    /// Opens a pty and points `link` at its slave (replacing whatever was there).
    pub(crate) fn open(link: &Path) -> io::Result<Self> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).map_err(io_error)?;
        grantpt(&master).map_err(io_error)?;
        unlockpt(&master).map_err(io_error)?;
        let target = ptsname_r(&master).map_err(io_error)?;
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(&target)?;
        let mut termios = tcgetattr(slave.as_raw_fd()).map_err(io_error)?;
        cfmakeraw(&mut termios);
        tcsetattr(slave.as_raw_fd(), SetArg::TCSANOW, &termios).map_err(io_error)?;
        fcntl(master.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(io_error)?;
        match std::fs::remove_file(link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::symlink(&target, link)?;
        // `AsyncFd::new` is deprecated in favour of an `unsafe` constructor whose contract is
        // that the descriptor stays open and unchanged while registered. `PtyMaster` owns its
        // descriptor and closes it only on drop, which is that contract; the workspace forbids
        // unsafe code, so the safe (deprecated) constructor is used on purpose.
        #[allow(deprecated)]
        let master = AsyncFd::new(master)?;
        Ok(Self {
            master,
            _slave: slave,
            link: link.to_owned(),
            target,
        })
    }

    /// Reads what the client wrote.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable_mut().await?;
            if let Ok(result) = guard.try_io(|inner| inner.get_mut().read(buf)) {
                return result;
            }
        }
    }

    /// Writes to the client; what a client that does not read cannot take is dropped.
    pub(crate) async fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let ready = tokio::time::timeout(WRITE_PATIENCE, self.master.writable_mut()).await;
            let Ok(guard) = ready else {
                return Ok(());
            };
            let mut guard = guard?;
            match guard.try_io(|inner| inner.get_mut().write(bytes)) {
                Ok(Ok(n)) => bytes = bytes.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // Remove the link only if it still points at this pty.
        if std::fs::read_link(&self.link).is_ok_and(|t| t == Path::new(&self.target)) {
            let _ = std::fs::remove_file(&self.link);
        }
    }
}
