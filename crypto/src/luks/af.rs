//! LUKS anti-forensic splitter (AFsplitter.c in cryptsetup): the key is
//! spread over `stripes` blocks so that erasing any part of the key
//! material destroys the key.

use super::HashSpec;

/// cryptsetup's diffuse(): hash each digest-sized block with its
/// big-endian index prepended; the last short block is truncated.
fn diffuse(buf: &mut [u8], hash: HashSpec) {
    let ds = hash.digest_len();
    for (i, chunk) in buf.chunks_mut(ds).enumerate() {
        let d = hash.digest(&[&(i as u32).to_be_bytes(), chunk]);
        let n = chunk.len();
        chunk.copy_from_slice(&d[..n]);
    }
}

/// Recovers the key from `material` (`stripes * key_len` bytes).
pub fn merge(material: &[u8], key_len: usize, stripes: usize, hash: HashSpec) -> Option<Vec<u8>> {
    if stripes == 0 || key_len == 0 || material.len() < key_len.checked_mul(stripes)? {
        return None;
    }
    let mut buf = vec![0u8; key_len];
    for s in material.chunks_exact(key_len).take(stripes - 1) {
        buf.iter_mut().zip(s).for_each(|(b, x)| *b ^= x);
        diffuse(&mut buf, hash);
    }
    let last = &material[(stripes - 1) * key_len..stripes * key_len];
    buf.iter_mut().zip(last).for_each(|(b, x)| *b ^= x);
    Some(buf)
}

/// Splits `key` into `stripes` blocks; `random` fills the first stripes-1.
pub fn split(
    key: &[u8],
    stripes: usize,
    hash: HashSpec,
    random: &mut dyn FnMut(&mut [u8]) -> crate::Result<()>,
) -> crate::Result<Vec<u8>> {
    let n = key.len();
    let mut out = vec![0u8; n * stripes.max(1)];
    let mut buf = vec![0u8; n];
    for s in out.chunks_exact_mut(n).take(stripes.saturating_sub(1)) {
        random(s)?;
        buf.iter_mut().zip(s.iter()).for_each(|(b, x)| *b ^= x);
        diffuse(&mut buf, hash);
    }
    let last = out.len() - n;
    for (i, o) in out[last..].iter_mut().enumerate() {
        *o = buf[i] ^ key[i];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_merge_roundtrips() {
        let key: Vec<u8> = (0..64u8).collect();
        for h in [HashSpec::Sha1, HashSpec::Sha256] {
            let m = split(&key, 4000, h, &mut |b| {
                getrandom::getrandom(b).map_err(|_| crate::CryptoError::EngineClosed)
            })
            .unwrap();
            assert_eq!(merge(&m, 64, 4000, h).unwrap(), key);
            let mut bad = m.clone();
            bad[100] ^= 1;
            assert_ne!(merge(&bad, 64, 4000, h).unwrap(), key);
        }
        assert!(merge(&[0u8; 10], 64, 4000, HashSpec::Sha256).is_none());
    }
}
