//! Locating the real Debian kernel for tests: `$VIGIL_KERNEL`, else a copy
//! fetched with apt into the cache directory (once).

use std::path::PathBuf;
use std::process::Command;

/// Path to Debian's linux-image-amd64 vmlinuz, or None (with a reason on
/// stderr) when it cannot be had here.
pub fn debian_kernel() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIGIL_KERNEL") {
        return Some(PathBuf::from(p));
    }
    let dir = crate::profile::cache::cache_dir()
        .parent()
        .map(|p| p.join("kernel"))
        .unwrap_or_else(|| PathBuf::from("/tmp/vigil-kernel"));
    if let Some(found) = find_vmlinuz(&dir) {
        return Some(found);
    }
    if let Err(e) = fetch(&dir) {
        eprintln!("debian kernel unavailable: {e}");
        return None;
    }
    find_vmlinuz(&dir)
}

fn find_vmlinuz(dir: &std::path::Path) -> Option<PathBuf> {
    let boot = dir.join("boot");
    std::fs::read_dir(boot)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
}

fn sh(cmd: &str, dir: &std::path::Path) -> Result<String, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn fetch(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let pkg = sh(
        "apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}'",
        dir,
    )?;
    let pkg = pkg.trim();
    if pkg.is_empty() {
        return Err("apt-cache knows no linux-image-amd64 (run apt-get update)".into());
    }
    sh(
        &format!("apt-get download {pkg} && dpkg-deb -x {pkg}_*.deb . && rm -f {pkg}_*.deb"),
        dir,
    )?;
    Ok(())
}
