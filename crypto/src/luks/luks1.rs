//! LUKS1 on-disk header (592 bytes, big-endian; cryptsetup's luks.h), the
//! format QEMU reads and writes.

use super::keyslot::{self, Kdf};
use super::{check_cipher, HashSpec, LuksError, LuksResult};

pub const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
pub const HEADER_LEN: usize = 592;
pub const KEY_ENABLED: u32 = 0x00AC_71F3;
pub const KEY_DISABLED: u32 = 0x0000_DEAD;

#[derive(Debug, Clone)]
pub struct Slot {
    pub active: bool,
    pub iterations: u32,
    pub salt: [u8; 32],
    pub material_offset: u32,
    pub stripes: u32,
}

#[derive(Debug, Clone)]
pub struct Luks1Header {
    pub cipher_name: String,
    pub cipher_mode: String,
    pub hash: HashSpec,
    pub payload_offset: u32,
    pub key_bytes: u32,
    pub mk_digest: [u8; 20],
    pub mk_salt: [u8; 32],
    pub mk_iterations: u32,
    pub uuid: String,
    pub slots: Vec<Slot>,
}

fn be32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_be_bytes(a)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl Luks1Header {
    pub fn parse(b: &[u8]) -> LuksResult<Self> {
        if b.len() < HEADER_LEN {
            return Err(LuksError::TruncatedHeader(format!(
                "{} bytes, LUKS1 needs {HEADER_LEN}",
                b.len()
            )));
        }
        if &b[0..6] != MAGIC {
            return Err(LuksError::NotLuks);
        }
        let version = u16::from_be_bytes([b[6], b[7]]);
        if version != 1 {
            return Err(LuksError::CorruptHeader(format!("version {version}")));
        }
        check_cipher(&cstr(&b[8..40]), &cstr(&b[40..72]))?;
        let mut mk_digest = [0u8; 20];
        mk_digest.copy_from_slice(&b[112..132]);
        let mut mk_salt = [0u8; 32];
        mk_salt.copy_from_slice(&b[132..164]);
        let mut slots = Vec::new();
        for i in 0..8 {
            let o = 208 + i * 48;
            let state = be32(b, o);
            let mut salt = [0u8; 32];
            salt.copy_from_slice(&b[o + 8..o + 40]);
            let active = match state {
                KEY_ENABLED => true,
                KEY_DISABLED => false,
                s => {
                    return Err(LuksError::CorruptHeader(format!(
                        "keyslot {i} state {s:#x}"
                    )))
                }
            };
            slots.push(Slot {
                active,
                iterations: be32(b, o + 4),
                salt,
                material_offset: be32(b, o + 40),
                stripes: be32(b, o + 44),
            });
        }
        let h = Luks1Header {
            cipher_name: cstr(&b[8..40]),
            cipher_mode: cstr(&b[40..72]),
            hash: HashSpec::parse(&cstr(&b[72..104]))?,
            payload_offset: be32(b, 104),
            key_bytes: be32(b, 108),
            mk_digest,
            mk_salt,
            mk_iterations: be32(b, 164),
            uuid: cstr(&b[168..208]),
            slots,
        };
        check_cipher(&h.cipher_name, &h.cipher_mode)?;
        if h.key_bytes != 32 && h.key_bytes != 64 {
            return Err(LuksError::UnsupportedCipher(format!(
                "key of {} bytes",
                h.key_bytes
            )));
        }
        if h.mk_iterations == 0 {
            return Err(LuksError::CorruptHeader("zero digest iterations".into()));
        }
        Ok(h)
    }

    pub fn serialize(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0..6].copy_from_slice(MAGIC);
        b[6..8].copy_from_slice(&1u16.to_be_bytes());
        let put = |b: &mut [u8], off: usize, len: usize, s: &str| {
            let n = s.len().min(len - 1);
            b[off..off + n].copy_from_slice(&s.as_bytes()[..n]);
        };
        put(&mut b, 8, 32, &self.cipher_name);
        put(&mut b, 40, 32, &self.cipher_mode);
        put(&mut b, 72, 32, self.hash.name());
        b[104..108].copy_from_slice(&self.payload_offset.to_be_bytes());
        b[108..112].copy_from_slice(&self.key_bytes.to_be_bytes());
        b[112..132].copy_from_slice(&self.mk_digest);
        b[132..164].copy_from_slice(&self.mk_salt);
        b[164..168].copy_from_slice(&self.mk_iterations.to_be_bytes());
        put(&mut b, 168, 40, &self.uuid);
        for (i, s) in self.slots.iter().enumerate().take(8) {
            let o = 208 + i * 48;
            let st = if s.active { KEY_ENABLED } else { KEY_DISABLED };
            b[o..o + 4].copy_from_slice(&st.to_be_bytes());
            b[o + 4..o + 8].copy_from_slice(&s.iterations.to_be_bytes());
            b[o + 8..o + 40].copy_from_slice(&s.salt);
            b[o + 40..o + 44].copy_from_slice(&s.material_offset.to_be_bytes());
            b[o + 44..o + 48].copy_from_slice(&s.stripes.to_be_bytes());
        }
        b
    }

    fn digest_ok(&self, mk: &[u8]) -> bool {
        let mut d = [0u8; 20];
        self.hash
            .pbkdf2(mk, &self.mk_salt, self.mk_iterations, &mut d);
        crate::software::aead::ct_eq(&d, &self.mk_digest)
    }

    /// Tries every active keyslot; `read_at` reads the image.
    pub fn unlock(
        &self,
        pass: &[u8],
        read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
    ) -> LuksResult<Vec<u8>> {
        let kl = self.key_bytes as usize;
        for s in self.slots.iter().filter(|s| s.active) {
            if s.stripes == 0 || s.stripes > 65536 || s.iterations == 0 {
                return Err(LuksError::CorruptHeader("keyslot parameters".into()));
            }
            let len = (kl * s.stripes as usize).div_ceil(512) * 512;
            let mut material = vec![0u8; len];
            read_at(s.material_offset as u64 * 512, &mut material)
                .map_err(|e| LuksError::TruncatedHeader(format!("keyslot material: {e}")))?;
            let kdf = Kdf::Pbkdf2 {
                hash: self.hash,
                iterations: s.iterations,
                salt: s.salt.to_vec(),
            };
            let slot_key = kdf.derive(pass, kl)?;
            let mk = keyslot::unlock_material(
                &mut material,
                &slot_key,
                kl,
                s.stripes as usize,
                self.hash,
            )?;
            if self.digest_ok(&mk) {
                return Ok(mk);
            }
        }
        Err(LuksError::WrongPassphrase)
    }
}
