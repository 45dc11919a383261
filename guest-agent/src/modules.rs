//! Loading kernel modules with finit_module(2), in the order listed.
//! Each path is loaded as is: the image pipeline already resolved
//! dependencies, so no modules.dep is needed in the guest.

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

/// finit_module flag: the kernel decompresses the file itself
/// (CONFIG_MODULE_DECOMPRESS). Debian 6.1 ships plain .ko files.
const MODULE_INIT_COMPRESSED_FILE: libc::c_int = 4;

/// Whether `path` names a compressed module (`.ko.xz`, `.ko.zst`, `.ko.gz`).
pub fn is_compressed(path: &Path) -> bool {
    let name = path.to_string_lossy();
    [".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

pub fn load(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let params = c"";
    let flags = if is_compressed(path) {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    // SAFETY: a valid fd and an empty NUL-terminated parameter string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EEXIST) {
        return Ok(());
    }
    Err(format!("load {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_modules_are_recognised() {
        assert!(is_compressed(Path::new("/lib/modules/x/virtio.ko.xz")));
        assert!(is_compressed(Path::new("a.ko.zst")));
        assert!(!is_compressed(Path::new("/lib/modules/x/virtio.ko")));
        assert!(!is_compressed(Path::new("xz.ko")));
    }

    #[test]
    fn a_missing_list_or_module_is_reported_not_fatal() {
        assert!(load_listed(Path::new("/nonexistent/list")).is_empty());
        let dir = std::env::temp_dir().join(format!("vigil-agent-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let list = dir.join("order");
        std::fs::write(&list, "# comment\n\n/nonexistent/a.ko\n").unwrap();
        let errors = load_listed(&list);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("/nonexistent/a.ko"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
