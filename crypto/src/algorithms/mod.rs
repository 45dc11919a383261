//! Algorithm-type traits, shaped like the kernel Crypto API's transform types
//! (skcipher, aead, shash, akcipher). A *provider* is one implementation
//! (driver); `setkey` yields a keyed transform usable from many threads.

use crate::error::Result;

/// Symmetric cipher transform (kernel `skcipher`): in-place, IV per request.
pub trait Skcipher: Send + Sync {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()>;
    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()>;

    /// Disk-style batch: `data` is consecutive units of `unit` bytes, unit i
    /// using the plain64 IV `iv0 + i * iv_step` (little-endian, zero padded).
    /// Drivers override this to pay per-request setup once per batch.
    fn crypt_units(
        &self,
        encrypt: bool,
        iv0: u64,
        iv_step: u64,
        unit: usize,
        data: &mut [u8],
    ) -> Result<()> {
        for (i, chunk) in data.chunks_mut(unit.max(1)).enumerate() {
            let iv = plain64(iv0.wrapping_add(i as u64 * iv_step));
            if encrypt {
                self.encrypt(&iv, chunk)?;
            } else {
                self.decrypt(&iv, chunk)?;
            }
        }
        Ok(())
    }
}

/// dm-crypt's plain64 IV: the 64-bit sector number, little-endian, in 16 bytes.
pub fn plain64(n: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&n.to_le_bytes());
    iv
}

pub trait SkcipherProvider: Send + Sync {
    fn blocksize(&self) -> usize;
    fn ivsize(&self) -> usize;
    fn min_keysize(&self) -> usize;
    fn max_keysize(&self) -> usize;
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Skcipher>>;
}

/// Authenticated cipher (kernel `aead`). The tag is detached; its length
/// (`tag.len()`) is the authsize, at most `maxauthsize`.
pub trait Aead: Send + Sync {
    fn seal(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &mut [u8]) -> Result<()>;
    fn open(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<()>;
}

pub trait AeadProvider: Send + Sync {
    fn blocksize(&self) -> usize;
    fn ivsize(&self) -> usize;
    fn maxauthsize(&self) -> usize;
    fn min_keysize(&self) -> usize;
    fn max_keysize(&self) -> usize;
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Aead>>;
}

/// Running hash or MAC state (kernel `shash`).
pub trait HashState: Send {
    fn update(&mut self, data: &[u8]);
    fn finalize(self: Box<Self>) -> Vec<u8>;
}

pub trait HashProvider: Send + Sync {
    fn blocksize(&self) -> usize;
    fn digestsize(&self) -> usize;
    /// Keyed (HMAC) algorithms need a key; plain hashes take `None`.
    fn keyed(&self) -> bool;
    fn init(&self, key: Option<&[u8]>) -> Result<Box<dyn HashState>>;
    fn digest(&self, key: Option<&[u8]>, data: &[u8]) -> Result<Vec<u8>> {
        let mut s = self.init(key)?;
        s.update(data);
        Ok(s.finalize())
    }
}

/// Hash a signature covers, for `Verifier::verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// Signature verification (kernel `akcipher`/`sig`, verify only).
/// RSA keys are PKCS#1 `RSAPublicKey` DER (what the kernel's `rsa` takes);
/// ECDSA keys are SEC1 points, signatures X9.62 DER.
pub trait Verifier: Send + Sync {
    fn verify(
        &self,
        public_key: &[u8],
        digest_alg: DigestAlg,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<()>;
}
