//! Decompressed kernel payloads, cached by the bzImage's SHA-256 so the
//! (slow, especially under emulation) decompression happens once per image.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use vigil_images::cache_dir;
use vigil_monitor::profile::{bzimage, decompress};

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot extract the kernel payload of {path}: {reason}")]
    Extract { path: PathBuf, reason: String },
    #[error("cannot write payload cache {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Returns the decompressed payload of `kernel`, extracting it on first use.
pub fn prepare(kernel: &Path) -> Result<PathBuf, PayloadError> {
    let read_err = |source| PayloadError::Read {
        path: kernel.to_owned(),
        source,
    };
    let image = std::fs::read(kernel).map_err(read_err)?;
    let digest = hex::encode(Sha256::digest(&image));
    let dir = cache_dir().join("payloads");
    let path = dir.join(format!("{digest}.vmlinux"));
    if path.is_file() {
        return Ok(path);
    }
    let extract_err = |reason: String| PayloadError::Extract {
        path: kernel.to_owned(),
        reason,
    };
    let header = bzimage::parse_setup_header(&image).map_err(|e| extract_err(e.to_string()))?;
    let payload = bzimage::payload(&image, &header).map_err(|e| extract_err(e.to_string()))?;
    let (_, vmlinux) = decompress::decompress(payload).map_err(|e| extract_err(e.to_string()))?;

    let write_err = |source| PayloadError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(write_err)?;
    // Write then rename, so a concurrent or interrupted run never sees half.
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(write_err)?;
    tmp.write_all(&vmlinux).map_err(write_err)?;
    tmp.persist(&path).map_err(|e| write_err(e.error))?;
    Ok(path)
}
