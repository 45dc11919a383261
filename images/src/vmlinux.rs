//! The uncompressed kernel inside a bzImage. The test host boots it
//! through QEMU's PVH entry (Debian sets CONFIG_PVH), which skips the
//! in-guest decompression: about 4 s of TCG time per test-host boot.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cache::{cache_dir, sha256_cached, write_atomic};
use crate::{io_err, progress, run, ImageError};

/// The compressed payload of a bzImage: (offset, length) in the file,
/// from the setup header's `setup_sects`, `payload_offset` and
/// `payload_length` (boot protocol 2.08+).
pub fn payload(bz: &[u8]) -> Result<&[u8], ImageError> {
    let bad = |why: &str| ImageError::Invalid(format!("not a bzImage: {why}"));
    let u32_at = |at: usize| -> Result<usize, ImageError> {
        bz.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(|b| u32::from_le_bytes(b) as usize)
            .ok_or_else(|| bad("truncated setup header"))
    };
    if bz.get(0x202..0x206) != Some(b"HdrS") {
        return Err(bad("no HdrS signature"));
    }
    let setup_sects = match bz.get(0x1f1).copied() {
        Some(0) => 4,
        Some(n) => n as usize,
        None => return Err(bad("truncated")),
    };
    let start = (setup_sects + 1) * 512;
    let offset = start
        .checked_add(u32_at(0x248)?)
        .ok_or_else(|| bad("payload offset overflows"))?;
    let length = u32_at(0x24c)?;
    offset
        .checked_add(length)
        .and_then(|end| bz.get(offset..end))
        .ok_or_else(|| bad("payload runs past the end"))
}

/// The decompressor for a payload, from its magic bytes.
fn decompressor(payload: &[u8]) -> Result<&'static [&'static str], ImageError> {
    // xz payloads carry the kernel's 4-byte size appended after the
    // stream, hence --single-stream (stop at the stream's end).
    const TABLE: &[(&[u8], &[&str])] = &[
        (b"\xfd7zXZ\x00", &["xz", "-dc", "--single-stream"]),
        (b"\x28\xb5\x2f\xfd", &["zstd", "-dcq"]),
        (b"\x1f\x8b", &["gzip", "-dc"]),
        (b"\x02\x21\x4c\x18", &["lz4", "-dc"]),
    ];
    TABLE
        .iter()
        .find(|(magic, _)| payload.starts_with(magic))
        .map(|(_, cmd)| *cmd)
        .ok_or_else(|| ImageError::Invalid("unknown bzImage payload compression".into()))
}

/// Decompresses `bzimage`'s kernel into the cache (by the image's hash)
/// and returns the path of the ELF vmlinux.
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
    let payload = payload(&bz)?;
    let cmd = decompressor(payload)?;
    let tmp = tempfile::NamedTempFile::new().map_err(io_err("temporary file"))?;
    std::fs::write(tmp.path(), payload).map_err(io_err("write the payload"))?;
    let elf = run(Command::new(cmd[0]).args(&cmd[1..]).arg(tmp.path()))?;
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
        assert!(payload(b"").is_err());
        assert!(payload(&[0u8; 4096]).is_err());
        let mut hdr = vec![0u8; 0x300];
        hdr[0x202..0x206].copy_from_slice(b"HdrS");
        hdr[0x1f1] = 1;
        hdr[0x248..0x24c].copy_from_slice(&u32::MAX.to_le_bytes());
        hdr[0x24c..0x250].copy_from_slice(&16u32.to_le_bytes());
        assert!(payload(&hdr).is_err(), "payload past the end");
        assert!(decompressor(b"\x00\x00\x00\x00").is_err());
    }
}
