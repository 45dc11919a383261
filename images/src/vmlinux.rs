//! The uncompressed kernel inside a bzImage. The test host boots it
//! through QEMU's PVH entry (Debian sets CONFIG_PVH), which skips the
//! in-guest decompression: about 4 s of TCG time per test-host boot.

use std::path::{Path, PathBuf};

use vigil_monitor::profile::{bzimage, decompress};

use crate::cache::{cache_dir, sha256_cached, write_atomic};
use crate::{io_err, progress, ImageError};

/// Decompresses `bzimage`'s payload (the ELF kernel, followed by its
/// relocation table) into the cache, keyed by the image's SHA-256, and
/// returns its path. vigil's in-monitor KASLR loads this file, and QEMU's
/// PVH boot reads its ELF part.
pub fn extract(bzimage: &Path) -> Result<PathBuf, ImageError> {
    let sha = sha256_cached(bzimage)?;
    let out = cache_dir()
        .join("vmlinux")
        .join(format!("{}.elf", &sha[..16]));
    if out.is_file() {
        return Ok(out);
    }
    let _step = progress::step(format!("decompressing {}", bzimage.display()));
    let bz = std::fs::read(bzimage).map_err(io_err(format!("read {}", bzimage.display())))?;
    let invalid = |e: vigil_monitor::error::ProfileError| {
        ImageError::Invalid(format!("{}: {e}", bzimage.display()))
    };
    let header = bzimage::parse_setup_header(&bz).map_err(invalid)?;
    let payload = bzimage::payload(&bz, &header).map_err(invalid)?;
    let (_, elf) = decompress::decompress(payload).map_err(invalid)?;
    if !elf.starts_with(b"\x7fELF") {
        return Err(ImageError::Invalid(format!(
            "{}: the payload is not an ELF kernel",
            bzimage.display()
        )));
    }
    write_atomic(&out, &elf)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_bzimage() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zeros");
        std::fs::write(&file, [0u8; 4096]).unwrap();
        assert!(matches!(extract(&file), Err(ImageError::Invalid(_))));
        assert!(extract(&dir.path().join("missing")).is_err());
    }
}
