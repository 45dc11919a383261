//! SHA-256 of kernel text and read-only data as they stand in guest memory
//! now (after boot-time patching: alternatives, jump labels, relocations).

use crate::error::GuestError;
use crate::guest::view::GuestView;
use crate::kaslr::Kernel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextHash {
    pub text_sha256: String,
    pub text_len: u64,
    pub rodata_sha256: String,
    pub rodata_len: u64,
}

fn hash_range<V: GuestView + ?Sized>(
    k: &Kernel<V>,
    start: u64,
    end: u64,
) -> Result<String, GuestError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut va = start;
    while va < end {
        let n = ((end - va) as usize).min(buf.len());
        k.read(va, &mut buf[..n])?;
        h.update(&buf[..n]);
        va += n as u64;
    }
    Ok(hex::encode(h.finalize()))
}

pub fn read<V: GuestView + ?Sized>(k: &Kernel<V>) -> Result<TextHash, GuestError> {
    let s = &k.profile.sections;
    let slide = k.kaslr.slide;
    Ok(TextHash {
        text_sha256: hash_range(k, s.text.start + slide, s.text.end + slide)?,
        text_len: s.text.len(),
        rodata_sha256: hash_range(k, s.rodata.start + slide, s.rodata.end + slide)?,
        rodata_len: s.rodata.len(),
    })
}
