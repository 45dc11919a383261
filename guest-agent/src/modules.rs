//! Loading kernel modules with finit_module(2), in the order listed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Loads every module named in `list`; returns an error line per failure.
/// A module already loaded (EEXIST) is not an error.
pub fn load_listed(list: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(list) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|path| load(Path::new(path)).err())
        .collect()
}

pub fn load(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let params = c"";
    // SAFETY: a valid fd and an empty NUL-terminated parameter string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EEXIST) {
        return Ok(());
    }
    Err(format!("load {}: {err}", path.display()))
}
