//! gcm(aes) (RustCrypto `aes-gcm`, AES-NI + CLMUL) and the kernel's
//! `authenc(hmac(sha256),cbc(aes))` composition used by IPsec ESP.

use crate::algorithms::{Aead, AeadProvider, SkcipherProvider};
use crate::error::{CryptoError, Result};
use crate::software::modes::CbcAesProvider;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::{AeadInPlace, AesGcm, KeyInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

enum Gcm {
    A128(AesGcm<aes::Aes128, U12>),
    A192(AesGcm<aes::Aes192, U12>),
    A256(AesGcm<aes::Aes256, U12>),
}

macro_rules! with_gcm {
    ($g:expr, $c:ident => $body:expr) => {
        match $g {
            Gcm::A128($c) => $body,
            Gcm::A192($c) => $body,
            Gcm::A256($c) => $body,
        }
    };
}

fn check_gcm(iv: &[u8], tag_len: usize) -> Result<()> {
    if iv.len() != 12 {
        return Err(CryptoError::InvalidIvLength {
            alg: "gcm(aes)",
            len: iv.len(),
            expected: 12,
        });
    }
    if tag_len != 16 {
        return Err(CryptoError::InvalidLength {
            alg: "gcm(aes)",
            len: tag_len,
            why: "only 16-byte tags are supported",
        });
    }
    Ok(())
}

impl Aead for Gcm {
    fn seal(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &mut [u8]) -> Result<()> {
        check_gcm(iv, tag.len())?;
        let nonce = GenericArray::from_slice(iv);
        let t =
            with_gcm!(self, c => c.encrypt_in_place_detached(nonce, aad, data)).map_err(|_| {
                CryptoError::InvalidLength {
                    alg: "gcm(aes)",
                    len: data.len(),
                    why: "too long",
                }
            })?;
        tag.copy_from_slice(&t);
        Ok(())
    }
    fn open(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<()> {
        check_gcm(iv, tag.len())?;
        let nonce = GenericArray::from_slice(iv);
        let tag = GenericArray::from_slice(tag);
        with_gcm!(self, c => c.decrypt_in_place_detached(nonce, aad, data, tag))
            .map_err(|_| CryptoError::BadTag)
    }
}

pub struct GcmAesProvider;

impl AeadProvider for GcmAesProvider {
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
        let bad = |_| CryptoError::InvalidKeyLength {
            alg: "gcm(aes)",
            len: key.len(),
        };
        Ok(Box::new(match key.len() {
            16 => Gcm::A128(AesGcm::new_from_slice(key).map_err(bad)?),
            24 => Gcm::A192(AesGcm::new_from_slice(key).map_err(bad)?),
            32 => Gcm::A256(AesGcm::new_from_slice(key).map_err(bad)?),
            len => {
                return Err(CryptoError::InvalidKeyLength {
                    alg: "gcm(aes)",
                    len,
                })
            }
        }))
    }
}

/// Builds the kernel's authenc key blob: rtattr{len=8,type=1} (host
/// endian), be32 enckeylen, authkey, enckey (crypto/authenc.c).
pub fn authenc_key(authkey: &[u8], enckey: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + authkey.len() + enckey.len());
    k.extend_from_slice(&8u16.to_ne_bytes());
    k.extend_from_slice(&1u16.to_ne_bytes());
    k.extend_from_slice(&(enckey.len() as u32).to_be_bytes());
    k.extend_from_slice(authkey);
    k.extend_from_slice(enckey);
    k
}

/// Splits an authenc key blob into (authkey, enckey).
pub fn parse_authenc_key(key: &[u8]) -> Result<(&[u8], &[u8])> {
    let bad = |why: &str| CryptoError::BadKey(format!("authenc key: {why}"));
    if key.len() < 8 {
        return Err(bad("shorter than its header"));
    }
    let rta_len = u16::from_ne_bytes([key[0], key[1]]) as usize;
    let rta_type = u16::from_ne_bytes([key[2], key[3]]);
    if rta_len != 8 || rta_type != 1 {
        return Err(bad("bad rtattr"));
    }
    let enclen = u32::from_be_bytes([key[4], key[5], key[6], key[7]]) as usize;
    let rest = &key[8..];
    if enclen > rest.len() {
        return Err(bad("enckeylen exceeds key"));
    }
    Ok(rest.split_at(rest.len() - enclen))
}

struct AuthencHmacSha256Cbc {
    mac: Hmac<Sha256>,
    cbc: Box<dyn crate::algorithms::Skcipher>,
}

impl AuthencHmacSha256Cbc {
    fn tag(&self, aad: &[u8], ct: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(aad);
        m.update(ct);
        m.finalize().into_bytes().into()
    }
}

impl Aead for AuthencHmacSha256Cbc {
    fn seal(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &mut [u8]) -> Result<()> {
        if tag.is_empty() || tag.len() > 32 {
            return Err(CryptoError::InvalidLength {
                alg: "authenc(hmac(sha256),cbc(aes))",
                len: tag.len(),
                why: "authsize must be 1..=32",
            });
        }
        self.cbc.encrypt(iv, data)?;
        let full = self.tag(aad, data);
        tag.copy_from_slice(&full[..tag.len()]);
        Ok(())
    }
    fn open(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<()> {
        if tag.is_empty() || tag.len() > 32 {
            return Err(CryptoError::BadTag);
        }
        let full = self.tag(aad, data);
        if !ct_eq(&full[..tag.len()], tag) {
            return Err(CryptoError::BadTag);
        }
        self.cbc.decrypt(iv, data)
    }
}

/// Constant-time comparison of equal-length slices.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub struct AuthencHmacSha256CbcAesProvider;

impl AeadProvider for AuthencHmacSha256CbcAesProvider {
    fn blocksize(&self) -> usize {
        16
    }
    fn ivsize(&self) -> usize {
        16
    }
    fn maxauthsize(&self) -> usize {
        32
    }
    fn min_keysize(&self) -> usize {
        8 + 16
    }
    fn max_keysize(&self) -> usize {
        8 + 64 + 32
    }
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Aead>> {
        let (authkey, enckey) = parse_authenc_key(key)?;
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(authkey)
            .map_err(|_| CryptoError::BadKey("hmac key".into()))?;
        let cbc = CbcAesProvider.setkey(enckey)?;
        Ok(Box::new(AuthencHmacSha256Cbc { mac, cbc }))
    }
}
