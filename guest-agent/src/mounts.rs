//! The filesystems every guest program expects.

use std::ffi::CString;

const MOUNTS: &[(&str, &str, &str)] = &[
    ("proc", "/proc", "proc"),
    ("sysfs", "/sys", "sysfs"),
    ("devtmpfs", "/dev", "devtmpfs"),
    ("tmpfs", "/run", "tmpfs"),
    ("tmpfs", "/tmp", "tmpfs"),
    ("securityfs", "/sys/kernel/security", "securityfs"),
];

/// Mounts each filesystem; returns an error line for each that failed.
pub fn mount_all() -> Vec<String> {
    let mut errors = Vec::new();
    for &(source, target, fstype) in MOUNTS {
        let _ = std::fs::create_dir_all(target);
        let (Ok(s), Ok(t), Ok(f)) = (
            CString::new(source),
            CString::new(target),
            CString::new(fstype),
        ) else {
            continue;
        };
        // SAFETY: valid NUL-terminated strings; no data argument.
        let rc = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            // devtmpfs may already be mounted by the kernel (CONFIG_DEVTMPFS_MOUNT).
            if err.raw_os_error() != Some(libc::EBUSY) {
                errors.push(format!("mount {target}: {err}"));
            }
        }
    }
    errors
}
