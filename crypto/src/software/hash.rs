//! sha256 / sha384 (RustCrypto `sha2`, SHA-NI via cpufeatures) and hmac(sha256).

use crate::algorithms::{HashProvider, HashState};
use crate::error::{CryptoError, Result};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha384};

struct DigestState<D>(D);

impl<D: Digest + Send> HashState for DigestState<D> {
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }
    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finalize().to_vec()
    }
}

struct MacState(Hmac<Sha256>);

impl HashState for MacState {
    fn update(&mut self, data: &[u8]) {
        Mac::update(&mut self.0, data);
    }
    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finalize().into_bytes().to_vec()
    }
}

fn no_key(alg: &str, key: Option<&[u8]>) -> Result<()> {
    match key {
        Some(_) => Err(CryptoError::BadKey(format!("{alg} takes no key"))),
        None => Ok(()),
    }
}

pub struct Sha256Provider;
pub struct Sha384Provider;
pub struct HmacSha256Provider;

impl HashProvider for Sha256Provider {
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
        no_key("sha256", key)?;
        Ok(Box::new(DigestState(Sha256::new())))
    }
}

impl HashProvider for Sha384Provider {
    fn blocksize(&self) -> usize {
        128
    }
    fn digestsize(&self) -> usize {
        48
    }
    fn keyed(&self) -> bool {
        false
    }
    fn init(&self, key: Option<&[u8]>) -> Result<Box<dyn HashState>> {
        no_key("sha384", key)?;
        Ok(Box::new(DigestState(Sha384::new())))
    }
}

impl HashProvider for HmacSha256Provider {
    fn blocksize(&self) -> usize {
        64
    }
    fn digestsize(&self) -> usize {
        32
    }
    fn keyed(&self) -> bool {
        true
    }
    fn init(&self, key: Option<&[u8]>) -> Result<Box<dyn HashState>> {
        let key = key.ok_or_else(|| CryptoError::BadKey("hmac(sha256) needs a key".into()))?;
        let m = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| CryptoError::BadKey("hmac key".into()))?;
        Ok(Box::new(MacState(m)))
    }
}
