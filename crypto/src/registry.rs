//! Algorithm registry modelled on the kernel Crypto API: each algorithm
//! name (`xts(aes)`) has implementations with a driver name and priority.
//! A name resolves to the highest-priority implementation whose self-test
//! passed; a driver name resolves to exactly that driver; [`Registry::fastest`]
//! resolves to whichever a short calibration measured fastest on this host
//! (the seeds' "aes_fastest").

use crate::algorithms::{Aead, AeadProvider, HashProvider, Skcipher, SkcipherProvider, Verifier};
use crate::error::{CryptoError, Result};
use crate::kat;
use crate::software;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub enum AlgKind {
    Skcipher(Arc<dyn SkcipherProvider>),
    Aead(Arc<dyn AeadProvider>),
    Hash(Arc<dyn HashProvider>),
    Verify(Arc<dyn Verifier>),
}

impl AlgKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            AlgKind::Skcipher(_) => "skcipher",
            AlgKind::Aead(_) => "aead",
            AlgKind::Hash(_) => "shash",
            AlgKind::Verify(_) => "akcipher",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    Passed,
    Failed,
    /// No known-answer vectors for this name.
    Untested,
}

pub struct AlgImpl {
    pub name: String,
    pub driver: String,
    pub module: String,
    pub priority: u32,
    /// The host kernel's priority for AF_ALG drivers (see `afalg`).
    pub kernel_priority: Option<u32>,
    /// Runs off the calling thread (AF_ALG, hardware queues).
    pub is_async: bool,
    pub kind: AlgKind,
    pub selftest: SelfTest,
}

impl AlgImpl {
    pub fn new(name: &str, driver: &str, module: &str, priority: u32, kind: AlgKind) -> Self {
        AlgImpl {
            name: name.into(),
            driver: driver.into(),
            module: module.into(),
            priority,
            kernel_priority: None,
            is_async: false,
            kind,
            selftest: SelfTest::Untested,
        }
    }

    pub fn skcipher(&self, key: &[u8]) -> Result<Box<dyn Skcipher>> {
        match &self.kind {
            AlgKind::Skcipher(p) => p.setkey(key),
            _ => Err(CryptoError::WrongType(self.driver.clone(), "skcipher")),
        }
    }
    pub fn aead(&self, key: &[u8]) -> Result<Box<dyn Aead>> {
        match &self.kind {
            AlgKind::Aead(p) => p.setkey(key),
            _ => Err(CryptoError::WrongType(self.driver.clone(), "aead")),
        }
    }
    pub fn hash(&self) -> Result<&Arc<dyn HashProvider>> {
        match &self.kind {
            AlgKind::Hash(p) => Ok(p),
            _ => Err(CryptoError::WrongType(self.driver.clone(), "shash")),
        }
    }
    pub fn verifier(&self) -> Result<&Arc<dyn Verifier>> {
        match &self.kind {
            AlgKind::Verify(p) => Ok(p),
            _ => Err(CryptoError::WrongType(self.driver.clone(), "akcipher")),
        }
    }
}

#[derive(Default)]
pub struct Registry {
    impls: Vec<Arc<AlgImpl>>,
    fastest: Mutex<HashMap<String, Arc<AlgImpl>>>,
}

/// Every algorithm name the engine knows.
pub const ALGORITHMS: &[&str] = &[
    "xts(aes)",
    "cbc(aes)",
    "ctr(aes)",
    "gcm(aes)",
    "authenc(hmac(sha256),cbc(aes))",
    "sha256",
    "sha384",
    "hmac(sha256)",
    "rsa",
    "ecdsa-nist-p256",
    "ecdsa-nist-p384",
];

impl Registry {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Software implementations plus the host kernel's (AF_ALG) when present.
    pub fn with_defaults() -> Self {
        let mut r = Self::empty();
        software_impls().into_iter().for_each(|i| r.register(i));
        for i in crate::afalg::discover() {
            r.register(i);
        }
        r
    }

    /// Registers after running the known-answer self-test, like the kernel's
    /// testmgr: a failing implementation stays listed but is never chosen.
    pub fn register(&mut self, mut imp: AlgImpl) {
        imp.selftest = match kat::run(&imp) {
            Ok(0) => SelfTest::Untested,
            Ok(_) => SelfTest::Passed,
            Err(_) => SelfTest::Failed,
        };
        self.impls.push(Arc::new(imp));
    }

    pub fn all(&self) -> &[Arc<AlgImpl>] {
        &self.impls
    }

    /// Implementations of one algorithm name, best priority first.
    pub fn implementations(&self, name: &str) -> Vec<Arc<AlgImpl>> {
        let mut v: Vec<_> = self
            .impls
            .iter()
            .filter(|i| i.name == name)
            .cloned()
            .collect();
        v.sort_by_key(|i| std::cmp::Reverse(i.priority));
        v
    }

    /// Kernel `crypto_alloc_*` semantics: an exact driver name wins,
    /// otherwise the highest-priority usable implementation of the name.
    pub fn lookup(&self, name: &str) -> Result<Arc<AlgImpl>> {
        if let Ok(d) = self.lookup_driver(name) {
            return Ok(d);
        }
        self.implementations(name)
            .into_iter()
            .find(|i| i.selftest != SelfTest::Failed)
            .ok_or_else(|| CryptoError::NotFound(name.into()))
    }

    pub fn lookup_driver(&self, driver: &str) -> Result<Arc<AlgImpl>> {
        self.impls
            .iter()
            .find(|i| i.driver == driver && i.selftest != SelfTest::Failed)
            .cloned()
            .ok_or_else(|| CryptoError::NotFound(driver.into()))
    }

    /// The implementation a short calibration (done once, cached) measured
    /// fastest for `name` on this host.
    pub fn fastest(&self, name: &str) -> Result<Arc<AlgImpl>> {
        if let Some(i) = self.fastest.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(i);
        }
        let mut best: Option<(f64, Arc<AlgImpl>)> = None;
        for imp in self.implementations(name) {
            if imp.selftest == SelfTest::Failed {
                continue;
            }
            let rate = calibrate(&imp, Duration::from_millis(20)).unwrap_or(0.0);
            if best.as_ref().is_none_or(|(b, _)| rate > *b) {
                best = Some((rate, imp));
            }
        }
        let (_, imp) = best.ok_or_else(|| CryptoError::NotFound(name.into()))?;
        if let Ok(mut m) = self.fastest.lock() {
            m.insert(name.into(), imp.clone());
        }
        Ok(imp)
    }

    /// Renders the registry the way /proc/crypto does.
    pub fn proc_crypto(&self) -> String {
        let mut out = String::new();
        for i in &self.impls {
            let row = |out: &mut String, k: &str, v: &dyn std::fmt::Display| {
                let _ = writeln!(out, "{k:<13}: {v}");
            };
            row(&mut out, "name", &i.name);
            row(&mut out, "driver", &i.driver);
            row(&mut out, "module", &i.module);
            row(&mut out, "priority", &i.priority);
            if let Some(k) = i.kernel_priority {
                row(&mut out, "kernel prio", &k);
            }
            row(&mut out, "refcnt", &(Arc::strong_count(i) - 1));
            let st = match i.selftest {
                SelfTest::Passed => "passed",
                SelfTest::Failed => "failed",
                SelfTest::Untested => "unknown",
            };
            row(&mut out, "selftest", &st);
            row(&mut out, "internal", &"no");
            row(&mut out, "type", &i.kind.type_name());
            match &i.kind {
                AlgKind::Skcipher(p) => {
                    row(&mut out, "async", &yes(i.is_async));
                    row(&mut out, "blocksize", &p.blocksize());
                    row(&mut out, "min keysize", &p.min_keysize());
                    row(&mut out, "max keysize", &p.max_keysize());
                    row(&mut out, "ivsize", &p.ivsize());
                    row(&mut out, "chunksize", &p.blocksize());
                    row(&mut out, "walksize", &p.blocksize());
                }
                AlgKind::Aead(p) => {
                    row(&mut out, "async", &yes(i.is_async));
                    row(&mut out, "blocksize", &p.blocksize());
                    row(&mut out, "ivsize", &p.ivsize());
                    row(&mut out, "maxauthsize", &p.maxauthsize());
                    row(&mut out, "geniv", &"<none>");
                }
                AlgKind::Hash(p) => {
                    row(&mut out, "blocksize", &p.blocksize());
                    row(&mut out, "digestsize", &p.digestsize());
                }
                AlgKind::Verify(_) => {}
            }
            out.push('\n');
        }
        out
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

type Step = Box<dyn FnMut(&mut [u8]) -> Result<()>>;

/// Bytes per second one thread pushes through `imp` on 4 KiB requests
/// (signature verifiers: verifications per second are not comparable, so 0).
pub fn calibrate(imp: &AlgImpl, budget: Duration) -> Result<f64> {
    const LEN: usize = 4096;
    let mut buf = vec![0x5au8; LEN];
    let start = Instant::now();
    let mut bytes = 0usize;
    let mut step: Step = match &imp.kind {
        AlgKind::Skcipher(p) => {
            let key: Vec<u8> = (0..p.max_keysize() as u8).collect();
            let tfm = p.setkey(&key)?;
            let iv = vec![1u8; p.ivsize()];
            Box::new(move |b| tfm.encrypt(&iv, b))
        }
        AlgKind::Aead(p) => {
            let key = if imp.name.starts_with("authenc") {
                software::aead::authenc_key(&[3u8; 32], &[7u8; 32])
            } else {
                vec![7u8; p.max_keysize()]
            };
            let tfm = p.setkey(&key)?;
            let iv = vec![1u8; p.ivsize()];
            let mut tag = vec![0u8; 16];
            Box::new(move |b| tfm.seal(&iv, &[], b, &mut tag))
        }
        AlgKind::Hash(p) => {
            let p = p.clone();
            let key = p.keyed().then(|| vec![9u8; 32]);
            Box::new(move |b| p.digest(key.as_deref(), b).map(|_| ()))
        }
        AlgKind::Verify(_) => return Ok(0.0),
    };
    while start.elapsed() < budget {
        step(&mut buf)?;
        bytes += LEN;
    }
    Ok(bytes as f64 / start.elapsed().as_secs_f64())
}

/// The in-process implementations. Priorities follow the kernel's habit:
/// generic C code ~100, SIMD/AES-NI code 300-400.
pub fn software_impls() -> Vec<AlgImpl> {
    use software::*;
    let sk = |p: Arc<dyn SkcipherProvider>| AlgKind::Skcipher(p);
    #[allow(unused_mut)]
    let mut v = vec![
        AlgImpl::new(
            "xts(aes)",
            "xts-aes-vigil-batched",
            "vigil_sw",
            401,
            sk(Arc::new(xts::XtsAesProvider::<{ xts::FAST_RUN }>)),
        ),
        AlgImpl::new(
            "xts(aes)",
            "xts(aes-generic)",
            "vigil_sw",
            100,
            sk(Arc::new(xts::XtsAesProvider::<1>)),
        ),
        AlgImpl::new(
            "cbc(aes)",
            "cbc-aes-rustcrypto",
            "vigil_sw",
            300,
            sk(Arc::new(modes::CbcAesProvider)),
        ),
        AlgImpl::new(
            "ctr(aes)",
            "ctr-aes-rustcrypto",
            "vigil_sw",
            300,
            sk(Arc::new(modes::CtrAesProvider)),
        ),
        AlgImpl::new(
            "gcm(aes)",
            "gcm-aes-rustcrypto",
            "vigil_sw",
            300,
            AlgKind::Aead(Arc::new(aead::GcmAesProvider)),
        ),
        AlgImpl::new(
            "authenc(hmac(sha256),cbc(aes))",
            "authenc(hmac(sha256-rustcrypto),cbc-aes-rustcrypto)",
            "vigil_sw",
            300,
            AlgKind::Aead(Arc::new(aead::AuthencHmacSha256CbcAesProvider)),
        ),
        AlgImpl::new(
            "sha256",
            "sha256-rustcrypto",
            "vigil_sw",
            300,
            AlgKind::Hash(Arc::new(hash::Sha256Provider)),
        ),
        AlgImpl::new(
            "sha384",
            "sha384-rustcrypto",
            "vigil_sw",
            300,
            AlgKind::Hash(Arc::new(hash::Sha384Provider)),
        ),
        AlgImpl::new(
            "hmac(sha256)",
            "hmac(sha256-rustcrypto)",
            "vigil_sw",
            300,
            AlgKind::Hash(Arc::new(hash::HmacSha256Provider)),
        ),
        AlgImpl::new(
            "rsa",
            "rsa-pkcs1v15-rustcrypto",
            "vigil_sw",
            300,
            AlgKind::Verify(Arc::new(sig::RsaPkcs1Verifier)),
        ),
        AlgImpl::new(
            "ecdsa-nist-p256",
            "ecdsa-nist-p256-rustcrypto",
            "vigil_sw",
            300,
            AlgKind::Verify(Arc::new(sig::EcdsaP256Verifier)),
        ),
        AlgImpl::new(
            "ecdsa-nist-p384",
            "ecdsa-nist-p384-rustcrypto",
            "vigil_sw",
            300,
            AlgKind::Verify(Arc::new(sig::EcdsaP384Verifier)),
        ),
    ];
    #[cfg(target_arch = "x86_64")]
    if software::xts_vaes::supported() {
        v.push(AlgImpl::new(
            "xts(aes)",
            "xts-aes-vigil-vaes",
            "vigil_sw",
            460,
            sk(Arc::new(software::xts_vaes::XtsVaesProvider)),
        ));
    }
    #[cfg(feature = "openssl")]
    {
        use software::openssl::{Mode, OsslGcm, OsslSha256, OsslSkcipher};
        let m = "vigil_openssl";
        v.push(AlgImpl::new(
            "xts(aes)",
            "xts-aes-openssl",
            m,
            450,
            sk(Arc::new(OsslSkcipher(Mode::Xts))),
        ));
        v.push(AlgImpl::new(
            "cbc(aes)",
            "cbc-aes-openssl",
            m,
            350,
            sk(Arc::new(OsslSkcipher(Mode::Cbc))),
        ));
        v.push(AlgImpl::new(
            "ctr(aes)",
            "ctr-aes-openssl",
            m,
            350,
            sk(Arc::new(OsslSkcipher(Mode::Ctr))),
        ));
        v.push(AlgImpl::new(
            "gcm(aes)",
            "gcm-aes-openssl",
            m,
            350,
            AlgKind::Aead(Arc::new(OsslGcm)),
        ));
        v.push(AlgImpl::new(
            "sha256",
            "sha256-openssl",
            m,
            350,
            AlgKind::Hash(Arc::new(OsslSha256)),
        ));
    }
    v
}
