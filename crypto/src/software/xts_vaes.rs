//! XTS-AES-256 with VAES + AVX-512: 16 blocks per step in four zmm
//! registers, tweaks advanced four lanes at a time by multiplying with
//! alpha^16 (shift plus a carry-less fold of the 16 carried-out bits).
//! Only compiled in and registered on x86_64 CPUs with vaes, avx512f and
//! vpclmulqdq; AES-128 keys and tails use the batched driver.

use super::xts::{new_xts_aes, new_xts_aes256, Xts, FAST_RUN};
use crate::algorithms::{Skcipher, SkcipherProvider};
use crate::error::{CryptoError, Result};
use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use std::arch::x86_64::*;

pub fn supported() -> bool {
    std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("vpclmulqdq")
        && std::arch::is_x86_feature_detected!("aes")
}

#[inline]
fn mul_alpha(t: u128) -> u128 {
    (t << 1) ^ ((t >> 127) * 0x87)
}

macro_rules! expand_round {
    ($k1:ident, $k2:ident, $rk:ident, $i:expr, $rcon:expr) => {{
        let t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128($k2, $rcon), 0xff);
        $k1 = _mm_xor_si128($k1, _mm_slli_si128($k1, 4));
        $k1 = _mm_xor_si128($k1, _mm_slli_si128($k1, 4));
        $k1 = _mm_xor_si128($k1, _mm_slli_si128($k1, 4));
        $k1 = _mm_xor_si128($k1, t);
        $rk[$i] = $k1;
        if $i + 1 < 15 {
            let t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128($k1, 0), 0xaa);
            $k2 = _mm_xor_si128($k2, _mm_slli_si128($k2, 4));
            $k2 = _mm_xor_si128($k2, _mm_slli_si128($k2, 4));
            $k2 = _mm_xor_si128($k2, _mm_slli_si128($k2, 4));
            $k2 = _mm_xor_si128($k2, t);
            $rk[$i + 1] = $k2;
        }
    }};
}

/// AES-256 encryption round keys and the equivalent-inverse decryption keys.
#[target_feature(enable = "aes,sse2")]
unsafe fn expand256(key: &[u8]) -> ([__m128i; 15], [__m128i; 15]) {
    let mut rk = [_mm_setzero_si128(); 15];
    let mut k1 = _mm_loadu_si128(key.as_ptr() as *const __m128i);
    let mut k2 = _mm_loadu_si128(key.as_ptr().add(16) as *const __m128i);
    rk[0] = k1;
    rk[1] = k2;
    expand_round!(k1, k2, rk, 2, 0x01);
    expand_round!(k1, k2, rk, 4, 0x02);
    expand_round!(k1, k2, rk, 6, 0x04);
    expand_round!(k1, k2, rk, 8, 0x08);
    expand_round!(k1, k2, rk, 10, 0x10);
    expand_round!(k1, k2, rk, 12, 0x20);
    expand_round!(k1, k2, rk, 14, 0x40);
    let mut dk = [_mm_setzero_si128(); 15];
    dk[0] = rk[14];
    for i in 1..14 {
        dk[i] = _mm_aesimc_si128(rk[14 - i]);
    }
    dk[14] = rk[0];
    (rk, dk)
}

pub struct XtsVaes {
    rk: [__m128i; 15],
    dk: [__m128i; 15],
    tweak: aes::Aes256,
    /// Batched driver for tails and ciphertext stealing.
    fallback: Xts<aes::Aes256, FAST_RUN>,
}

// SAFETY: round keys are plain data, never mutated after construction.
unsafe impl Send for XtsVaes {}
unsafe impl Sync for XtsVaes {}

/// Multiplies four 128-bit lanes by alpha^16 in XTS's GF(2^128).
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
unsafe fn mul_a16(x: __m512i, poly: __m512i) -> __m512i {
    let c = _mm512_srli_epi64(x, 48);
    let s = _mm512_slli_epi64(x, 16);
    let lo_carry = _mm512_bslli_epi128(c, 8); // low qword's bits into the high qword
    let hi_carry = _mm512_bsrli_epi128(c, 8); // bits leaving the top, to fold
    let fold = _mm512_clmulepi64_epi128(hi_carry, poly, 0x00);
    _mm512_xor_si512(_mm512_xor_si512(s, lo_carry), fold)
}

#[target_feature(enable = "avx512f,vaes,vpclmulqdq,aes")]
unsafe fn crypt_groups(keys: &[__m128i; 15], enc: bool, t0: u128, data: &mut [u8]) -> u128 {
    let groups = data.len() / 256;
    if groups == 0 {
        return t0;
    }
    let mut k = [_mm512_setzero_si512(); 15];
    for (d, s) in k.iter_mut().zip(keys.iter()) {
        *d = _mm512_broadcast_i32x4(*s);
    }
    let mut tw = [0u128; 16];
    let mut t = t0;
    for x in tw.iter_mut() {
        *x = t;
        t = mul_alpha(t);
    }
    let tp = tw.as_ptr() as *const __m512i;
    let mut tv = [
        _mm512_loadu_si512(tp),
        _mm512_loadu_si512(tp.add(1)),
        _mm512_loadu_si512(tp.add(2)),
        _mm512_loadu_si512(tp.add(3)),
    ];
    let poly = _mm512_set_epi64(0, 0x87, 0, 0x87, 0, 0x87, 0, 0x87);
    let p = data.as_mut_ptr() as *mut __m512i;
    for g in 0..groups {
        let base = p.add(g * 4);
        let mut x = [
            _mm512_xor_si512(_mm512_loadu_si512(base), tv[0]),
            _mm512_xor_si512(_mm512_loadu_si512(base.add(1)), tv[1]),
            _mm512_xor_si512(_mm512_loadu_si512(base.add(2)), tv[2]),
            _mm512_xor_si512(_mm512_loadu_si512(base.add(3)), tv[3]),
        ];
        for v in x.iter_mut() {
            *v = _mm512_xor_si512(*v, k[0]);
        }
        if enc {
            for rk in &k[1..14] {
                for v in x.iter_mut() {
                    *v = _mm512_aesenc_epi128(*v, *rk);
                }
            }
            for v in x.iter_mut() {
                *v = _mm512_aesenclast_epi128(*v, k[14]);
            }
        } else {
            for rk in &k[1..14] {
                for v in x.iter_mut() {
                    *v = _mm512_aesdec_epi128(*v, *rk);
                }
            }
            for v in x.iter_mut() {
                *v = _mm512_aesdeclast_epi128(*v, k[14]);
            }
        }
        for i in 0..4 {
            _mm512_storeu_si512(base.add(i), _mm512_xor_si512(x[i], tv[i]));
            tv[i] = mul_a16(tv[i], poly);
        }
    }
    let mut out = [0u128; 4];
    _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, tv[0]);
    out[0]
}

impl XtsVaes {
    fn crypt(&self, iv: &[u8], data: &mut [u8], enc: bool) -> Result<()> {
        let ivb: [u8; 16] = iv.try_into().map_err(|_| CryptoError::InvalidIvLength {
            alg: "xts(aes)",
            len: iv.len(),
            expected: 16,
        })?;
        if data.len() < 16 {
            return Err(CryptoError::InvalidLength {
                alg: "xts(aes)",
                len: data.len(),
                why: "shorter than one block",
            });
        }
        // Whole 16-block groups go through VAES; the rest (and the last
        // full block, which ciphertext stealing needs) through the fallback.
        let full = data.len() / 16;
        let groups = if data.len().is_multiple_of(16) {
            full / 16
        } else {
            (full - 1) / 16
        };
        let split = groups * 256;
        let mut b = GenericArray::from(ivb);
        self.tweak.encrypt_block(&mut b);
        let t0 = u128::from_le_bytes(b.into());
        let keys = if enc { &self.rk } else { &self.dk };
        // SAFETY: setkey only builds this driver when supported() holds.
        let t = unsafe { crypt_groups(keys, enc, t0, &mut data[..split]) };
        if split == data.len() {
            return Ok(());
        }
        self.fallback.crypt_from(t, &mut data[split..], enc)
    }
}

impl Skcipher for XtsVaes {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        self.crypt(iv, data, true)
    }
    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        self.crypt(iv, data, false)
    }
}

pub struct XtsVaesProvider;

impl SkcipherProvider for XtsVaesProvider {
    fn blocksize(&self) -> usize {
        16
    }
    fn ivsize(&self) -> usize {
        16
    }
    fn min_keysize(&self) -> usize {
        32
    }
    fn max_keysize(&self) -> usize {
        64
    }
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Skcipher>> {
        if key.len() != 64 || !supported() {
            return new_xts_aes::<FAST_RUN>(key);
        }
        // SAFETY: supported() checked aes.
        let (rk, dk) = unsafe { expand256(&key[..32]) };
        Ok(Box::new(XtsVaes {
            rk,
            dk,
            tweak: aes::Aes256::new_from_slice(&key[32..]).map_err(|_| {
                CryptoError::InvalidKeyLength {
                    alg: "xts(aes)",
                    len: key.len(),
                }
            })?,
            fallback: new_xts_aes256::<FAST_RUN>(key)?,
        }))
    }
}
