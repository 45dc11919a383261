//! cbc(aes) and ctr(aes) from RustCrypto `cbc`/`ctr` over `aes` (AES-NI).

use crate::algorithms::{Skcipher, SkcipherProvider};
use crate::error::{CryptoError, Result};
use aes::cipher::{
    generic_array::GenericArray, BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut,
    InnerIvInit, KeyInit, StreamCipher,
};
use aes::{Aes128, Aes192, Aes256};

enum AnyAes {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl AnyAes {
    fn new(alg: &'static str, key: &[u8]) -> Result<Self> {
        let bad = |_| CryptoError::InvalidKeyLength {
            alg,
            len: key.len(),
        };
        Ok(match key.len() {
            16 => AnyAes::A128(Aes128::new_from_slice(key).map_err(bad)?),
            24 => AnyAes::A192(Aes192::new_from_slice(key).map_err(bad)?),
            32 => AnyAes::A256(Aes256::new_from_slice(key).map_err(bad)?),
            len => return Err(CryptoError::InvalidKeyLength { alg, len }),
        })
    }
}

fn iv16(alg: &'static str, iv: &[u8]) -> Result<[u8; 16]> {
    iv.try_into().map_err(|_| CryptoError::InvalidIvLength {
        alg,
        len: iv.len(),
        expected: 16,
    })
}

fn whole_blocks<'a>(alg: &'static str, data: &'a mut [u8]) -> Result<&'a mut [aes::Block]> {
    if !data.len().is_multiple_of(16) {
        return Err(CryptoError::InvalidLength {
            alg,
            len: data.len(),
            why: "not a multiple of the block size",
        });
    }
    let n = data.len() / 16;
    // SAFETY: aes::Block is [u8; 16]-layout (align 1); data holds n*16 bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr() as *mut aes::Block, n) })
}

struct Cbc(AnyAes);

macro_rules! with_aes {
    ($any:expr, $c:ident => $body:expr) => {
        match $any {
            AnyAes::A128($c) => $body,
            AnyAes::A192($c) => $body,
            AnyAes::A256($c) => $body,
        }
    };
}

impl Skcipher for Cbc {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        let iv = iv16("cbc(aes)", iv)?;
        let blocks = whole_blocks("cbc(aes)", data)?;
        with_aes!(&self.0, c => {
            let mut e = cbc::Encryptor::inner_iv_init(c.clone(), GenericArray::from_slice(&iv));
            e.encrypt_blocks_mut(blocks);
        });
        Ok(())
    }
    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        let iv = iv16("cbc(aes)", iv)?;
        let blocks = whole_blocks("cbc(aes)", data)?;
        with_aes!(&self.0, c => {
            let mut d = cbc::Decryptor::inner_iv_init(c.clone(), GenericArray::from_slice(&iv));
            d.decrypt_blocks_mut(blocks);
        });
        Ok(())
    }
}

struct Ctr(AnyAes);

impl Skcipher for Ctr {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        let iv = iv16("ctr(aes)", iv)?;
        with_aes!(&self.0, c => {
            let core = ctr::CtrCore::inner_iv_init(c.clone(), GenericArray::from_slice(&iv));
            let mut s = ctr::Ctr128BE::from_core(core);
            s.apply_keystream(data);
        });
        Ok(())
    }
    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        self.encrypt(iv, data)
    }
}

/// Plain single-block AES (kernel `aes` cipher), used by tests and key wrapping.
pub fn aes_ecb_encrypt(key: &[u8], data: &mut [u8]) -> Result<()> {
    let a = AnyAes::new("ecb(aes)", key)?;
    let blocks = whole_blocks("ecb(aes)", data)?;
    with_aes!(&a, c => c.encrypt_blocks(blocks));
    Ok(())
}

pub fn aes_ecb_decrypt(key: &[u8], data: &mut [u8]) -> Result<()> {
    let a = AnyAes::new("ecb(aes)", key)?;
    let blocks = whole_blocks("ecb(aes)", data)?;
    with_aes!(&a, c => c.decrypt_blocks(blocks));
    Ok(())
}

pub struct CbcAesProvider;
pub struct CtrAesProvider;

impl SkcipherProvider for CbcAesProvider {
    fn blocksize(&self) -> usize {
        16
    }
    fn ivsize(&self) -> usize {
        16
    }
    fn min_keysize(&self) -> usize {
        16
    }
    fn max_keysize(&self) -> usize {
        32
    }
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Skcipher>> {
        Ok(Box::new(Cbc(AnyAes::new("cbc(aes)", key)?)))
    }
}

impl SkcipherProvider for CtrAesProvider {
    fn blocksize(&self) -> usize {
        1
    }
    fn ivsize(&self) -> usize {
        16
    }
    fn min_keysize(&self) -> usize {
        16
    }
    fn max_keysize(&self) -> usize {
        32
    }
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Skcipher>> {
        Ok(Box::new(Ctr(AnyAes::new("ctr(aes)", key)?)))
    }
}
