//! The host kernel's Crypto API through AF_ALG sockets (skcipher, aead,
//! hash, rng), under the kernel's own driver names from /proc/crypto.
//!
//! Never the default: upstream is retiring AF_ALG's offload paths, so these
//! implementations register at [`AFALG_PRIORITY`] (below every software
//! driver) and keep the kernel's priority in `kernel_priority`. Ask for them
//! by driver name or through [`crate::Registry::fastest`]. Where the host
//! kernel has no AF_ALG the backend is simply absent.

pub mod proc_crypto;
pub mod socket;

use crate::algorithms::{Aead, AeadProvider, HashProvider, HashState, Skcipher, SkcipherProvider};
use crate::error::{CryptoError, Result};
use crate::registry::{AlgImpl, AlgKind, ALGORITHMS};
use proc_crypto::ProcEntry;
use socket::Ctl;
use std::os::fd::OwnedFd;
use std::sync::Arc;

pub const AFALG_PRIORITY: u32 = 50;
/// algif_skcipher/aead accept about one socket buffer per request.
pub const MAX_REQUEST: usize = 64 * 1024;

/// True when the host kernel accepts AF_ALG sockets.
pub fn available() -> bool {
    // SAFETY: plain syscall; the fd is closed right away.
    let fd = unsafe { libc::socket(libc::AF_ALG, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd was just returned by socket().
    unsafe { libc::close(fd) };
    true
}

/// Kernel implementations of the engine's algorithms, one per kernel driver.
pub fn discover() -> Vec<AlgImpl> {
    if !available() {
        return Vec::new();
    }
    let text = std::fs::read_to_string("/proc/crypto").unwrap_or_default();
    impls_from_entries(&proc_crypto::parse(&text))
}

pub fn impls_from_entries(entries: &[ProcEntry]) -> Vec<AlgImpl> {
    let mut out = Vec::new();
    for e in entries {
        if e.internal || !ALGORITHMS.contains(&e.name.as_str()) {
            continue;
        }
        let kind = match (e.alg_type.as_str(), e.name.as_str()) {
            ("skcipher", _) => AlgKind::Skcipher(Arc::new(AfSkcipher(e.clone()))),
            ("aead", _) => AlgKind::Aead(Arc::new(AfAead(e.clone()))),
            ("shash" | "ahash", _) => AlgKind::Hash(Arc::new(AfHash(e.clone()))),
            _ => continue, // akcipher is not reachable through AF_ALG
        };
        let mut imp = AlgImpl::new(
            &e.name,
            &e.driver,
            &format!("af_alg({})", e.module),
            AFALG_PRIORITY,
            kind,
        );
        imp.kernel_priority = Some(e.priority);
        imp.is_async = true;
        out.push(imp);
    }
    out
}

fn tfm(alg_type: &str, driver: &str, key: Option<&[u8]>) -> Result<OwnedFd> {
    // Bind by driver name so the kernel uses exactly this implementation.
    let fd = socket::bind(alg_type, driver)?;
    if let Some(k) = key {
        socket::setkey(&fd, k)?;
    }
    Ok(fd)
}

struct AfSkcipher(ProcEntry);
struct AfSkcipherTfm(OwnedFd);

impl AfSkcipherTfm {
    fn run(&self, op: u32, iv: &[u8], data: &mut [u8]) -> Result<()> {
        if data.len() > MAX_REQUEST {
            return Err(CryptoError::InvalidLength {
                alg: "af_alg skcipher",
                len: data.len(),
                why: "larger than one AF_ALG request",
            });
        }
        let s = socket::accept(&self.0)?;
        let ctl = Ctl {
            op: Some(op),
            iv: Some(iv),
            assoclen: None,
        };
        socket::send(&s, &ctl, data, false)?;
        socket::recv(&s, data)
    }
}

impl Skcipher for AfSkcipherTfm {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        self.run(libc::ALG_OP_ENCRYPT as u32, iv, data)
    }
    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<()> {
        self.run(libc::ALG_OP_DECRYPT as u32, iv, data)
    }
}

impl SkcipherProvider for AfSkcipher {
    fn blocksize(&self) -> usize {
        self.0.blocksize
    }
    fn ivsize(&self) -> usize {
        self.0.ivsize
    }
    fn min_keysize(&self) -> usize {
        self.0.min_keysize
    }
    fn max_keysize(&self) -> usize {
        self.0.max_keysize
    }
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Skcipher>> {
        Ok(Box::new(AfSkcipherTfm(tfm(
            "skcipher",
            &self.0.driver,
            Some(key),
        )?)))
    }
}

struct AfAead(ProcEntry);
struct AfAeadTfm(OwnedFd);

impl Aead for AfAeadTfm {
    fn seal(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &mut [u8]) -> Result<()> {
        socket::set_authsize(&self.0, tag.len())?;
        let s = socket::accept(&self.0)?;
        let mut input = Vec::with_capacity(aad.len() + data.len());
        input.extend_from_slice(aad);
        input.extend_from_slice(data);
        let ctl = Ctl {
            op: Some(libc::ALG_OP_ENCRYPT as u32),
            iv: Some(iv),
            assoclen: Some(aad.len() as u32),
        };
        socket::send(&s, &ctl, &input, false)?;
        // Output: aad || ciphertext || tag.
        let mut out = vec![0u8; aad.len() + data.len() + tag.len()];
        socket::recv(&s, &mut out)?;
        let (ct, t) = out[aad.len()..].split_at(data.len());
        data.copy_from_slice(ct);
        tag.copy_from_slice(t);
        Ok(())
    }
    fn open(&self, iv: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<()> {
        socket::set_authsize(&self.0, tag.len())?;
        let s = socket::accept(&self.0)?;
        let mut input = Vec::with_capacity(aad.len() + data.len() + tag.len());
        input.extend_from_slice(aad);
        input.extend_from_slice(data);
        input.extend_from_slice(tag);
        let ctl = Ctl {
            op: Some(libc::ALG_OP_DECRYPT as u32),
            iv: Some(iv),
            assoclen: Some(aad.len() as u32),
        };
        socket::send(&s, &ctl, &input, false)?;
        let mut out = vec![0u8; aad.len() + data.len()];
        socket::recv(&s, &mut out)?;
        data.copy_from_slice(&out[aad.len()..]);
        Ok(())
    }
}

impl AeadProvider for AfAead {
    fn blocksize(&self) -> usize {
        self.0.blocksize
    }
    fn ivsize(&self) -> usize {
        self.0.ivsize
    }
    fn maxauthsize(&self) -> usize {
        self.0.maxauthsize
    }
    fn min_keysize(&self) -> usize {
        16
    }
    fn max_keysize(&self) -> usize {
        32
    }
    fn setkey(&self, key: &[u8]) -> Result<Box<dyn Aead>> {
        Ok(Box::new(AfAeadTfm(tfm("aead", &self.0.driver, Some(key))?)))
    }
}

struct AfHash(ProcEntry);
struct AfHashState {
    op: Option<OwnedFd>,
    _tfm: OwnedFd,
    size: usize,
    error: bool,
}

impl HashState for AfHashState {
    fn update(&mut self, data: &[u8]) {
        let ok = self.op.as_ref().is_some_and(|op| {
            data.chunks(MAX_REQUEST).all(|c| {
                let ctl = Ctl {
                    op: None,
                    iv: None,
                    assoclen: None,
                };
                socket::send(op, &ctl, c, true).is_ok()
            })
        });
        self.error |= !ok;
    }
    fn finalize(self: Box<Self>) -> Vec<u8> {
        let mut out = vec![0u8; self.size];
        let ctl = Ctl {
            op: None,
            iv: None,
            assoclen: None,
        };
        // On failure the digest is empty, which no caller accepts as valid.
        match &self.op {
            Some(op) if !self.error => {
                if socket::send(op, &ctl, &[], false).is_err()
                    || socket::recv(op, &mut out).is_err()
                {
                    return Vec::new();
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

impl HashProvider for AfHash {
    fn blocksize(&self) -> usize {
        self.0.blocksize
    }
    fn digestsize(&self) -> usize {
        self.0.digestsize
    }
    fn keyed(&self) -> bool {
        self.0.name.starts_with("hmac(")
    }
    fn init(&self, key: Option<&[u8]>) -> Result<Box<dyn HashState>> {
        let t = tfm("hash", &self.0.driver, key)?;
        let op = socket::accept(&t)?;
        Ok(Box::new(AfHashState {
            op: Some(op),
            _tfm: t,
            size: self.0.digestsize,
            error: false,
        }))
    }
}

/// Reads random bytes from the kernel's `stdrng` (a DRBG) through AF_ALG.
pub fn rng_read(out: &mut [u8]) -> Result<()> {
    let t = socket::bind("rng", "stdrng")?;
    // The DRBG must be reset with a seed before use; seed it from getrandom.
    let mut seed = [0u8; 48];
    getrandom::getrandom(&mut seed).map_err(|e| CryptoError::AfAlg(e.to_string()))?;
    socket::setkey(&t, &seed)?;
    let op = socket::accept(&t)?;
    // algif_rng hands out at most 128 bytes per read.
    for c in out.chunks_mut(128) {
        socket::recv(&op, c)?;
    }
    Ok(())
}
