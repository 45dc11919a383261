//! Keyslot key derivation (pbkdf2 or argon2id) and keyslot-area crypto.

use super::{HashSpec, LuksError, LuksResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kdf {
    Pbkdf2 {
        hash: HashSpec,
        iterations: u32,
        salt: Vec<u8>,
    },
    Argon2id {
        time: u32,
        memory_kib: u32,
        cpus: u32,
        salt: Vec<u8>,
    },
}

impl Kdf {
    pub fn derive(&self, pass: &[u8], len: usize) -> LuksResult<Vec<u8>> {
        let mut out = vec![0u8; len];
        match self {
            Kdf::Pbkdf2 {
                hash,
                iterations,
                salt,
            } => {
                if *iterations == 0 || len == 0 {
                    return Err(LuksError::CorruptHeader("pbkdf2 parameters".into()));
                }
                hash.pbkdf2(pass, salt, *iterations, &mut out);
            }
            Kdf::Argon2id {
                time,
                memory_kib,
                cpus,
                salt,
            } => {
                // Refuse absurd costs from a hostile header (cryptsetup caps at 4 GiB).
                if *memory_kib > 4 * 1024 * 1024 || *time > 1000 || *cpus > 64 {
                    return Err(LuksError::CorruptHeader("argon2 cost too high".into()));
                }
                let params = argon2::Params::new(*memory_kib, *time, *cpus, Some(len))
                    .map_err(|e| LuksError::CorruptHeader(format!("argon2 params: {e}")))?;
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password_into(pass, salt, &mut out)
                    .map_err(|e| LuksError::CorruptHeader(format!("argon2: {e}")))?;
            }
        }
        Ok(out)
    }
}

/// Decrypts keyslot material (aes-xts-plain64, 512-byte IV units from 0)
/// and merges it back into the volume key candidate.
pub fn unlock_material(
    material: &mut [u8],
    slot_key: &[u8],
    key_len: usize,
    stripes: usize,
    af_hash: HashSpec,
) -> LuksResult<Vec<u8>> {
    let tfm = super::xts(slot_key)?;
    super::xts_sectors(tfm.as_ref(), material, 512, 0, false)?;
    super::af::merge(material, key_len, stripes, af_hash)
        .ok_or_else(|| LuksError::CorruptHeader("keyslot material too short".into()))
}

/// The inverse of [`unlock_material`]: AF-split and encrypt.
pub fn lock_material(
    volume_key: &[u8],
    slot_key: &[u8],
    stripes: usize,
    af_hash: HashSpec,
) -> LuksResult<Vec<u8>> {
    let mut m = super::af::split(volume_key, stripes, af_hash, &mut super::random)?;
    // Pad to whole sectors as cryptsetup does.
    let padded = m.len().div_ceil(512) * 512;
    m.resize(padded, 0);
    let tfm = super::xts(slot_key)?;
    super::xts_sectors(tfm.as_ref(), &mut m, 512, 0, true)?;
    Ok(m)
}
