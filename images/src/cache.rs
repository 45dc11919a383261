//! Where vigil keeps what it downloads and builds, and content hashing.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{io_err, ImageError};

/// vigil's cache directory: `$VIGIL_CACHE`, else `$XDG_CACHE_HOME/vigil`,
/// else `~/.cache/vigil`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VIGIL_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("vigil")
}

/// An exclusive lock on the cache, held while building: tests and tools
/// may build the same image at once, in threads or processes.
pub struct CacheLock(std::fs::File);

impl Drop for CacheLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking our own open file.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Takes the cache lock, waiting for other builders.
pub fn lock() -> Result<CacheLock, ImageError> {
    use std::os::fd::AsRawFd;
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
    let file = std::fs::File::create(dir.join(".lock")).map_err(io_err("create cache lock"))?;
    // SAFETY: flock on a file we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io_err("lock cache")(std::io::Error::last_os_error()));
    }
    Ok(CacheLock(file))
}

/// SHA-256 of a file, hex-encoded.
pub fn sha256_file(path: &Path) -> Result<String, ImageError> {
    let mut file = std::fs::File::open(path).map_err(io_err(format!("open {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io_err(format!("read {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// [`sha256_file`], remembered in the cache (by device and inode) and
/// reused while the file's size, mtime and ctime are unchanged: hashing a
/// 70 MB package in a debug build, or a kernel on every boot inside an
/// emulated test host, costs seconds. ctime cannot be set by users, so a
/// file rewritten with its old mtime restored is still hashed again.
pub fn sha256_cached(path: &Path) -> Result<String, ImageError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(io_err(format!("stat {}", path.display())))?;
    let stamp = format!(
        "{} {}.{} {}.{}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    );
    let memo = cache_dir()
        .join("hashes")
        .join(format!("{:x}-{:x}", meta.dev(), meta.ino()));
    if let Ok(text) = std::fs::read_to_string(&memo) {
        if let Some((seen, sha)) = text.trim().rsplit_once(' ') {
            if seen == stamp && sha.len() == 64 {
                return Ok(sha.to_owned());
            }
        }
    }
    let sha = sha256_file(path)?;
    // Best effort: an unwritable cache just means hashing again.
    let _ = write_atomic(&memo, format!("{stamp} {sha}\n").as_bytes());
    Ok(sha)
}

/// Writes `bytes` to `path` atomically (temporary file, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err("temporary file"))?;
    tmp.write_all(bytes)
        .map_err(io_err(format!("write {}", path.display())))?;
    // Images are read by other users' VMMs too; tempfile makes them 0600.
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io_err(format!("chmod {}", path.display())))?;
    }
    tmp.persist(path)
        .map_err(|e| ImageError::Io {
            what: format!("rename to {}", path.display()),
            source: e.error,
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_hash_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.deb");
        std::fs::write(&f, b"one").unwrap();
        assert_eq!(sha256_cached(&f).unwrap(), sha256_file(&f).unwrap());
        assert!(
            !dir.path().join(".x.deb.sha256").exists(),
            "nothing beside the file"
        );
        assert_eq!(sha256_cached(&f).unwrap(), sha256_file(&f).unwrap());
        // Changed contents (and size): hashed again.
        std::fs::write(&f, b"second").unwrap();
        assert_eq!(sha256_cached(&f).unwrap(), sha256_file(&f).unwrap());
    }
}
