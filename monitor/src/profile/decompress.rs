//! Detect and decompress the bzImage payload. Output is capped so a
//! crafted payload cannot exhaust host memory.

use crate::error::ProfileError;
use serde::{Deserialize, Serialize};
use std::io::Read;

/// Largest decompressed kernel accepted (real ones are ~30-70 MiB).
pub const MAX_KERNEL: u64 = 512 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
    Lz4,
    /// Payload is already an ELF.
    None,
}

pub fn detect(payload: &[u8]) -> Result<Compression, ProfileError> {
    let c = match payload {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Compression::Xz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        [0x02, 0x21, 0x4c, 0x18, ..] => Compression::Lz4,
        [0x7f, b'E', b'L', b'F', ..] => Compression::None,
        _ => {
            let head: Vec<u8> = payload.iter().take(8).copied().collect();
            return Err(ProfileError::UnknownCompression(hex::encode(head)));
        }
    };
    Ok(c)
}

pub fn decompress(payload: &[u8]) -> Result<(Compression, Vec<u8>), ProfileError> {
    let c = detect(payload)?;
    let out = match c {
        Compression::Gzip => read_capped("gzip", flate2::read::GzDecoder::new(payload))?,
        Compression::Xz => read_capped("xz", xz2::read::XzDecoder::new(xz_stream(payload)))?,
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::new(payload).map_err(|e| {
                ProfileError::Decompress {
                    format: "zstd",
                    reason: e.to_string(),
                }
            })?;
            read_capped("zstd", dec)?
        }
        Compression::Lz4 => lz4_legacy(payload)?,
        Compression::None => payload.to_vec(),
    };
    Ok((c, out))
}

/// The bzImage appends the decompressed size after the xz stream; liblzma
/// treats those bytes as a corrupt next stream, so cut at the last footer
/// magic ("YZ") near the end.
fn xz_stream(payload: &[u8]) -> &[u8] {
    let tail_start = payload.len().saturating_sub(16);
    match payload[tail_start..].windows(2).rposition(|w| w == b"YZ") {
        Some(p) => &payload[..tail_start + p + 2],
        None => payload,
    }
}

fn read_capped(format: &'static str, r: impl Read) -> Result<Vec<u8>, ProfileError> {
    let mut out = Vec::new();
    let n = r
        .take(MAX_KERNEL + 1)
        .read_to_end(&mut out)
        .map_err(|e| ProfileError::Decompress {
            format,
            reason: e.to_string(),
        })?;
    if n as u64 > MAX_KERNEL {
        return Err(ProfileError::Decompress {
            format,
            reason: format!("output exceeds {MAX_KERNEL} bytes"),
        });
    }
    Ok(out)
}

/// The kernel uses the LZ4 "legacy" frame (lz4 -l): magic, then blocks of
/// `u32 compressed_len` + raw LZ4 block, each expanding to at most 8 MiB.
/// The bzImage appends a u32 size trailer, which ends the block loop.
fn lz4_legacy(payload: &[u8]) -> Result<Vec<u8>, ProfileError> {
    const BLOCK: usize = 8 << 20;
    let err = |reason: String| ProfileError::Decompress {
        format: "lz4",
        reason,
    };
    let mut out = Vec::new();
    let mut pos = 4;
    let mut buf = vec![0u8; BLOCK];
    while let Some(len) = crate::bytes::u32_at(payload, pos) {
        if len == 0x184c_2102 {
            // A concatenated legacy frame.
            pos += 4;
            continue;
        }
        let Some(block) = crate::bytes::slice(payload, pos + 4, len as usize) else {
            // Only the 4-byte size trailer may be left over.
            if payload.len() - pos <= 4 {
                break;
            }
            return Err(err(format!("block at {pos:#x} runs past end")));
        };
        let n = lz4_flex::block::decompress_into(block, &mut buf)
            .map_err(|e| err(format!("block at {pos:#x}: {e}")))?;
        if (out.len() + n) as u64 > MAX_KERNEL {
            return Err(err("output too large".into()));
        }
        out.extend_from_slice(&buf[..n]);
        pos += 4 + len as usize;
    }
    if out.is_empty() {
        return Err(err("no blocks".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Vec<u8> {
        let mut v = b"\x7fELF".to_vec();
        for i in 0..50_000u32 {
            v.extend_from_slice(&(i % 251).to_le_bytes());
        }
        v
    }

    #[test]
    fn roundtrips_all_formats() {
        let data = sample();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 1).unwrap();
        let mut lz = 0x184c_2102u32.to_le_bytes().to_vec();
        let blk = lz4_flex::block::compress(&data);
        lz.extend_from_slice(&(blk.len() as u32).to_le_bytes());
        lz.extend_from_slice(&blk);
        lz.extend_from_slice(&(data.len() as u32).to_le_bytes());
        for (want, p) in [
            (Compression::Gzip, gz),
            (Compression::Xz, xz),
            (Compression::Zstd, zs),
            (Compression::Lz4, lz),
            (Compression::None, data.clone()),
        ] {
            let (c, out) = decompress(&p).unwrap();
            assert_eq!(c, want);
            assert_eq!(out, data, "{want:?}");
        }
    }

    #[test]
    fn rejects_unknown_and_corrupt() {
        assert!(matches!(
            decompress(b"BZh91AY"),
            Err(ProfileError::UnknownCompression(_))
        ));
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&sample()).unwrap();
        let mut xz = xz.finish().unwrap();
        xz.truncate(xz.len() / 2);
        assert!(matches!(
            decompress(&xz),
            Err(ProfileError::Decompress { .. })
        ));
        assert!(decompress(&[0x02, 0x21, 0x4c, 0x18, 9, 0, 0, 0, 1]).is_err());
    }
}
