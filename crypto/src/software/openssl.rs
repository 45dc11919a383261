//! Drivers over the host's OpenSSL libcrypto (feature `openssl`), which has
//! VAES/AVX-512 assembly for XTS and GCM that no Rust crate has yet.
//! Keyed contexts are pooled so a request only sets its IV (no key
//! schedule per request); buffers are processed in place.

use crate::algorithms::{Aead, AeadProvider, HashProvider, HashState, Skcipher, SkcipherProvider};
use crate::error::{CryptoError, Result};
use foreign_types::ForeignTypeRef;
use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use std::sync::Mutex;

fn ossl(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::SelfTest(format!("openssl: {e}"))
}

struct Pool {
    cipher: &'static CipherRef,
    key: Vec<u8>,
    enc: bool,
    ctxs: Mutex<Vec<CipherCtx>>,
}

impl Pool {
    fn new(cipher: &'static CipherRef, key: &[u8], enc: bool) -> Result<Self> {
        let p = Pool {
            cipher,
            key: key.to_vec(),
            enc,
            ctxs: Mutex::new(Vec::new()),
        };
        // Key errors surface at setkey time, not on the first request.
        let c = p.fresh()?;
        p.put(c);
        Ok(p)
    }
    fn fresh(&self) -> Result<CipherCtx> {
        let mut c = CipherCtx::new().map_err(ossl)?;
        if self.enc {
            c.encrypt_init(Some(self.cipher), Some(&self.key), None)
        } else {
            c.decrypt_init(Some(self.cipher), Some(&self.key), None)
        }
        .map_err(ossl)?;
        c.set_padding(false);
        Ok(c)
    }
    fn take(&self) -> Result<CipherCtx> {
        match self.ctxs.lock().ok().and_then(|mut v| v.pop()) {
            Some(c) => Ok(c),
            None => self.fresh(),
        }
    }
    fn put(&self, c: CipherCtx) {
        if let Ok(mut v) = self.ctxs.lock() {
            v.push(c);
        }
    }
    fn set_iv(&self, c: &mut CipherCtx, iv: &[u8]) -> Result<()> {
        if self.enc {
            c.encrypt_init(None, None, Some(iv))
        } else {
            c.decrypt_init(None, None, Some(iv))
        }
        .map_err(ossl)
    }
}

/// EVP_CipherUpdate in place (OpenSSL allows out == in).
fn update_in_place(c: &mut CipherCtx, data: &mut [u8]) -> Result<()> {
    let len = i32::try_from(data.len()).map_err(|_| CryptoError::InvalidLength {
        alg: "openssl",
        len: data.len(),
        why: "too long",
    })?;
    let mut outl = 0i32;
    // SAFETY: ctx is initialised; data is valid for len bytes of input and
    // output; with padding off, block modes emit exactly len bytes here.
    let rc = unsafe {
        openssl_sys::EVP_CipherUpdate(c.as_ptr(), data.as_mut_ptr(), &mut outl, data.as_ptr(), len)
    };
    if rc != 1 || outl != len {
        return Err(ossl("EVP_CipherUpdate failed"));
    }
    Ok(())
}

fn aad_update(c: &mut CipherCtx, aad: &[u8]) -> Result<()> {
    if aad.is_empty() {
        return Ok(());
    }
    c.cipher_update(aad, None).map_err(ossl).map(|_| ())
}

struct Sk {
    enc: Pool,
    dec: Pool,
    ivsize: usize,
    /// Shortest request (XTS: one block; CTR: one byte).
    block: usize,
    /// CBC takes whole blocks only (XTS steals, CTR streams).
    whole_blocks: bool,
}

impl Sk {
    fn run(&self, pool: &Pool, iv: &[u8], data: &mut [u8]) -> Result<()> {
        if iv.len() != self.ivsize {
            return Err(CryptoError::InvalidIvLength {
                alg: "openssl skcipher",
                len: iv.len(),
                expected: self.ivsize,
            });
        }
        if data.len() < self.block || (self.whole_blocks && !data.len().is_multiple_of(16)) {
            return Err(CryptoError::InvalidLength {
                alg: "openssl skcipher",
                len: data.len(),
                why: "not whole blocks",
            });
        }
        let mut c = pool.take()?;
        let r = pool
            .set_iv(&mut c, iv)
            .and_then(|_| update_in_place(&mut c, data));
        pool.put(c);
        r
    }
}

impl Skcipher for Sk {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        self.run(&self.enc, iv, data)
    }
    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        self.run(&self.dec, iv, data)
    }
    /// One pooled context for the whole batch; only the IV changes per unit.
    fn crypt_units(
        &self,
        encrypt: bool,
        iv0: u64,
        iv_step: u64,
        unit: usize,
        data: &mut [u8],
    ) -> Result<()> {
        let pool = if encrypt { &self.enc } else { &self.dec };
        if unit < self.block || (self.whole_blocks && !unit.is_multiple_of(16)) {
            return Err(CryptoError::InvalidLength {
                alg: "openssl skcipher",
                len: unit,
                why: "bad unit size",
            });
        }
        let mut c = pool.take()?;
        let mut r = Ok(());
        for (i, chunk) in data.chunks_mut(unit).enumerate() {
            if chunk.len() < self.block || (self.whole_blocks && !chunk.len().is_multiple_of(16)) {
                r = Err(CryptoError::InvalidLength {
                    alg: "openssl skcipher",
                    len: chunk.len(),
                    why: "partial unit",
                });
                break;
            }
            let iv = crate::algorithms::plain64(iv0.wrapping_add(i as u64 * iv_step));
            r = pool
                .set_iv(&mut c, &iv)
                .and_then(|_| update_in_place(&mut c, chunk));
            if r.is_err() {
                break;
            }
        }
        pool.put(c);
        r
    }
}

#[derive(Clone, Copy)]
pub enum Mode {
    Xts,
    Cbc,
    Ctr,
}

pub struct OsslSkcipher(pub Mode);

impl SkcipherProvider for OsslSkcipher {
    fn blocksize(&self) -> usize {
        match self.0 {
            Mode::Ctr => 1,
            _ => 16,
        }
    }
    fn ivsize(&self) -> usize {
        16
    }
    fn min_keysize(&self) -> usize {
        match self.0 {
            Mode::Xts => 32,
            _ => 16,
        }
    }
    fn max_keysize(&self) -> usize {
        match self.0 {
            Mode::Xts => 64,
            _ => 32,
        }
    }
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Skcipher>> {
        let bad = || CryptoError::InvalidKeyLength {
            alg: "openssl skcipher",
            len: key.len(),
        };
        let cipher = match (self.0, key.len()) {
            (Mode::Xts, 32) => Cipher::aes_128_xts(),
            (Mode::Xts, 64) => Cipher::aes_256_xts(),
            (Mode::Cbc, 16) => Cipher::aes_128_cbc(),
            (Mode::Cbc, 24) => Cipher::aes_192_cbc(),
            (Mode::Cbc, 32) => Cipher::aes_256_cbc(),
            (Mode::Ctr, 16) => Cipher::aes_128_ctr(),
            (Mode::Ctr, 24) => Cipher::aes_192_ctr(),
            (Mode::Ctr, 32) => Cipher::aes_256_ctr(),
            _ => return Err(bad()),
        };
        if matches!(self.0, Mode::Xts) {
            let (a, b) = key.split_at(key.len() / 2);
            if a == b {
                // OpenSSL 3 refuses XTS keys with equal halves (as FIPS does).
                return Err(CryptoError::BadKey("xts key halves are equal".into()));
            }
        }
        Ok(Box::new(Sk {
            enc: Pool::new(cipher, key, true)?,
            dec: Pool::new(cipher, key, false)?,
            ivsize: 16,
            block: if matches!(self.0, Mode::Ctr) { 1 } else { 16 },
            whole_blocks: matches!(self.0, Mode::Cbc),
        }))
    }
}

struct Gcm {
    enc: Pool,
    dec: Pool,
}

fn check_gcm(iv: &[u8], tag: usize) -> Result<()> {
    if iv.len() != 12 {
        return Err(CryptoError::InvalidIvLength {
            alg: "gcm(aes)",
            len: iv.len(),
            expected: 12,
        });
    }
    if tag != 16 {
        return Err(CryptoError::InvalidLength {
            alg: "gcm(aes)",
            len: tag,
            why: "only 16-byte tags are supported",
        });
    }
    Ok(())
}

impl Aead for Gcm {
    fn seal(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &mut [u8]) -> Result<()> {
        check_gcm(iv, tag.len())?;
        let mut c = self.enc.take()?;
        let r = (|| {
            self.enc.set_iv(&mut c, iv)?;
            aad_update(&mut c, aad)?;
            if !data.is_empty() {
                update_in_place(&mut c, data)?;
            }
            c.cipher_final(&mut []).map_err(ossl)?;
            c.tag(tag).map_err(ossl)
        })();
        self.enc.put(c);
        r
    }
    fn open(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<()> {
        check_gcm(iv, tag.len())?;
        let mut c = self.dec.take()?;
        let r = (|| {
            self.dec.set_iv(&mut c, iv)?;
            aad_update(&mut c, aad)?;
            if !data.is_empty() {
                update_in_place(&mut c, data)?;
            }
            c.set_tag(tag).map_err(ossl)?;
            c.cipher_final(&mut [])
                .map_err(|_| CryptoError::BadTag)
                .map(|_| ())
        })();
        self.dec.put(c);
        if r.is_err() {
            // Never release unauthenticated plaintext.
            data.fill(0);
        }
        r
    }
}

pub struct OsslGcm;

impl AeadProvider for OsslGcm {
    fn blocksize(&self) -> usize {
        1
    }
    fn ivsize(&self) -> usize {
        12
    }
    fn maxauthsize(&self) -> usize {
        16
    }
    fn min_keysize(&self) -> usize {
        16
    }
    fn max_keysize(&self) -> usize {
        32
    }
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Aead>> {
        let cipher = match key.len() {
            16 => Cipher::aes_128_gcm(),
            24 => Cipher::aes_192_gcm(),
            32 => Cipher::aes_256_gcm(),
            len => {
                return Err(CryptoError::InvalidKeyLength {
                    alg: "gcm(aes)",
                    len,
                })
            }
        };
        Ok(Box::new(Gcm {
            enc: Pool::new(cipher, key, true)?,
            dec: Pool::new(cipher, key, false)?,
        }))
    }
}

struct ShaState(openssl::sha::Sha256);

impl HashState for ShaState {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finish().to_vec()
    }
}

pub struct OsslSha256;

impl HashProvider for OsslSha256 {
    fn blocksize(&self) -> usize {
        64
    }
    fn digestsize(&self) -> usize {
        32
    }
    fn keyed(&self) -> bool {
        false
    }
    fn init(&self, key: Option<&[u8]>) -> Result<Box<dyn HashState>> {
        if key.is_some() {
            return Err(CryptoError::BadKey("sha256 takes no key".into()));
        }
        Ok(Box::new(ShaState(openssl::sha::Sha256::new())))
    }
}
