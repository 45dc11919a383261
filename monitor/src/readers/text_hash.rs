//! SHA-256 of kernel text and read-only data as they stand in guest memory
//! now (after boot-time patching: alternatives, jump labels, relocations).

use crate::error::GuestError;
use crate::guest::view::GuestView;
use crate::kaslr::Kernel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextHash {
    pub text_sha256: String,
    pub text_len: u64,
    pub rodata_sha256: String,
    pub rodata_len: u64,
}

/// Kernel text and read-only data copied out of the guest, to hash later:
/// a live VM is paused only for the copy, not for the hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextCopy {
    pub text: Vec<u8>,
    pub rodata: Vec<u8>,
}

impl TextCopy {
    pub fn hash(&self) -> TextHash {
        TextHash {
            text_sha256: hex::encode(Sha256::digest(&self.text)),
            text_len: self.text.len() as u64,
            rodata_sha256: hex::encode(Sha256::digest(&self.rodata)),
            rodata_len: self.rodata.len() as u64,
        }
    }
}

/// Reasonable upper bound for one section (Debian's text is ~10 MiB): a
/// corrupt profile cannot make the copy allocate without limit.
const MAX_SECTION: u64 = 256 << 20;

fn copy_range<V: GuestView + ?Sized>(
    k: &Kernel<V>,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, GuestError> {
    let len = end
        .checked_sub(start)
        .filter(|&l| l <= MAX_SECTION)
        .ok_or_else(|| GuestError::Corrupt(format!("section {start:#x}..{end:#x}")))?;
    let mut out = vec![0u8; len as usize];
    for (i, chunk) in out.chunks_mut(1 << 16).enumerate() {
        k.read(start + (i as u64) * (1 << 16), chunk)?;
    }
    Ok(out)
}

/// Copies text and rodata as they stand in guest memory now.
pub fn copy<V: GuestView + ?Sized>(k: &Kernel<V>) -> Result<TextCopy, GuestError> {
    let s = &k.profile.sections;
    let slide = k.kaslr.slide;
    Ok(TextCopy {
        text: copy_range(
            k,
            s.text.start.wrapping_add(slide),
            s.text.end.wrapping_add(slide),
        )?,
        rodata: copy_range(
            k,
            s.rodata.start.wrapping_add(slide),
            s.rodata.end.wrapping_add(slide),
        )?,
    })
}

pub fn read<V: GuestView + ?Sized>(k: &Kernel<V>) -> Result<TextHash, GuestError> {
    Ok(copy(k)?.hash())
}
