//! Console output that can never panic: `println!` panics when stdout
//! fails, and a panicking PID 1 panics the kernel.

use std::io::Write;

/// Prints `vigil-agent: <line>` on the console, ignoring write errors.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "vigil-agent: {line}");
    let _ = out.flush();
}

/// Opens the console as fds 0-2 if the kernel could not (no /dev/console
/// in the initramfs): then the only way to be heard is /dev/console or
/// ttyS0 from devtmpfs.
pub fn ensure_stdio() {
    // SAFETY: F_GETFD only queries the descriptor.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } != -1 {
        return;
    }
    for dev in [c"/dev/console", c"/dev/ttyS0"] {
        // SAFETY: a NUL-terminated path; the fd is ours to dup and close.
        unsafe {
            let fd = libc::open(dev.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
            if fd < 0 {
                continue;
            }
            for target in 0..3 {
                if fd != target {
                    libc::dup2(fd, target);
                }
            }
            if fd > 2 {
                libc::close(fd);
            }
        }
        return;
    }
}
