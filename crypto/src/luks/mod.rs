//! LUKS1 and LUKS2 containers on plain files: headers, keyslots (pbkdf2,
//! argon2id), the AF splitter, and `aes-xts-plain64` sector encryption
//! through the registry's `xts(aes)`.

pub mod af;
pub mod keyslot;
pub mod luks1;
pub mod luks2;
pub mod volume;

pub use volume::LuksVolume;

use sha2::Digest;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LuksError {
    #[error("not a LUKS header")]
    NotLuks,
    #[error("truncated header: {0}")]
    TruncatedHeader(String),
    #[error("corrupt header: {0}")]
    CorruptHeader(String),
    #[error("no keyslot matches the passphrase")]
    WrongPassphrase,
    #[error("unsupported cipher or parameter: {0}")]
    UnsupportedCipher(String),
    #[error("sector {0} out of range")]
    OutOfRange(u64),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Crypto(#[from] crate::CryptoError),
}

pub type LuksResult<T> = std::result::Result<T, LuksError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSpec {
    Sha1,
    Sha256,
    Sha512,
}

impl HashSpec {
    pub fn parse(s: &str) -> LuksResult<Self> {
        match s.trim_end_matches('\0').to_ascii_lowercase().as_str() {
            "sha1" => Ok(HashSpec::Sha1),
            "sha256" => Ok(HashSpec::Sha256),
            "sha512" => Ok(HashSpec::Sha512),
            other => Err(LuksError::UnsupportedCipher(format!("hash {other}"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            HashSpec::Sha1 => "sha1",
            HashSpec::Sha256 => "sha256",
            HashSpec::Sha512 => "sha512",
        }
    }
    pub fn digest_len(self) -> usize {
        match self {
            HashSpec::Sha1 => 20,
            HashSpec::Sha256 => 32,
            HashSpec::Sha512 => 64,
        }
    }
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            parts.iter().for_each(|p| d.update(p));
            d.finalize().to_vec()
        }
        match self {
            HashSpec::Sha1 => run::<sha1::Sha1>(parts),
            HashSpec::Sha256 => run::<sha2::Sha256>(parts),
            HashSpec::Sha512 => run::<sha2::Sha512>(parts),
        }
    }
    pub fn pbkdf2(self, pass: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        use hmac::Hmac;
        match self {
            HashSpec::Sha1 => pbkdf2::pbkdf2::<Hmac<sha1::Sha1>>(pass, salt, iterations, out),
            HashSpec::Sha256 => pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(pass, salt, iterations, out),
            HashSpec::Sha512 => pbkdf2::pbkdf2::<Hmac<sha2::Sha512>>(pass, salt, iterations, out),
        }
        .unwrap_or(()); // only fails for zero-length output, excluded by callers
    }
}

/// Only `aes-xts-plain64` is supported (what QEMU and cryptsetup default to).
pub fn check_cipher(cipher: &str, mode: &str) -> LuksResult<()> {
    let c = cipher.trim_end_matches('\0');
    let m = mode.trim_end_matches('\0');
    if c == "aes" && m == "xts-plain64" {
        Ok(())
    } else {
        Err(LuksError::UnsupportedCipher(format!("{c}-{m}")))
    }
}

pub(crate) fn random(buf: &mut [u8]) -> crate::Result<()> {
    getrandom::getrandom(buf)
        .map_err(|e| crate::CryptoError::Io(std::io::Error::other(e.to_string())))
}

/// Encrypts or decrypts a keyslot area / data run with aes-xts-plain64:
/// one XTS unit per `sector` bytes, IV = `iv_base + offset / 512`.
pub(crate) fn xts_sectors(
    tfm: &dyn crate::algorithms::Skcipher,
    data: &mut [u8],
    sector: usize,
    iv_base: u64,
    encrypt: bool,
) -> crate::Result<()> {
    tfm.crypt_units(encrypt, iv_base, (sector / 512) as u64, sector, data)
}

/// The `xts(aes)` containers use: the highest-priority implementation that
/// accepts the key (FIPS-style drivers refuse keys with equal halves, which
/// an imported image may still have).
pub(crate) fn xts(key: &[u8]) -> LuksResult<Box<dyn crate::algorithms::Skcipher>> {
    let reg = registry();
    for imp in reg.implementations("xts(aes)") {
        if imp.selftest == crate::registry::SelfTest::Failed {
            continue;
        }
        if let Ok(t) = imp.skcipher(key) {
            return Ok(t);
        }
    }
    Err(LuksError::UnsupportedCipher(format!(
        "aes-xts-plain64 with {}-byte key",
        key.len()
    )))
}

fn registry() -> &'static crate::Registry {
    static REG: std::sync::OnceLock<crate::Registry> = std::sync::OnceLock::new();
    REG.get_or_init(crate::Registry::with_defaults)
}
