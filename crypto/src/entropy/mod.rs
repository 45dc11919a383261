//! Entropy for the virtio-rng device: getrandom, the host hwrng
//! (/dev/hwrng, root only) and the kernel DRBG through AF_ALG, each behind
//! continuous health tests so no untested byte reaches a guest.

pub mod health;

use crate::error::{CryptoError, Result};
use health::HealthTests;
use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Getrandom,
    HwRng,
    AfAlgRng,
}

/// Raw byte source before health testing.
pub trait RawSource: Send {
    fn kind_name(&self) -> &'static str;
    fn read(&mut self, out: &mut [u8]) -> Result<()>;
}

pub struct Getrandom;

impl RawSource for Getrandom {
    fn kind_name(&self) -> &'static str {
        "getrandom"
    }
    fn read(&mut self, out: &mut [u8]) -> Result<()> {
        getrandom::getrandom(out).map_err(|e| CryptoError::Io(std::io::Error::other(e.to_string())))
    }
}

pub struct HwRng {
    file: std::fs::File,
}

pub const HWRNG_PATH: &str = "/dev/hwrng";

impl HwRng {
    pub fn open(path: &str) -> Result<Self> {
        Ok(HwRng {
            file: std::fs::File::open(path)?,
        })
    }
}

impl RawSource for HwRng {
    fn kind_name(&self) -> &'static str {
        "hwrng"
    }
    fn read(&mut self, out: &mut [u8]) -> Result<()> {
        self.file.read_exact(out)?;
        Ok(())
    }
}

pub struct AfAlgRng;

impl RawSource for AfAlgRng {
    fn kind_name(&self) -> &'static str {
        "af_alg stdrng"
    }
    fn read(&mut self, out: &mut [u8]) -> Result<()> {
        crate::afalg::rng_read(out)
    }
}

/// A source whose every output byte passed the health tests.
pub struct TestedSource<S: RawSource> {
    raw: S,
    tests: HealthTests,
}

impl<S: RawSource> TestedSource<S> {
    pub fn new(raw: S) -> Self {
        TestedSource {
            raw,
            tests: HealthTests::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.raw.kind_name()
    }

    /// Fills `out`; on a health failure `out` is zeroed and the error returned.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        let r = self.raw.read(out).and_then(|_| self.tests.check(out));
        if r.is_err() {
            out.fill(0);
        }
        r
    }

    pub fn failed(&self) -> bool {
        self.tests.failed()
    }
}

/// Opens a source by kind; absent ones (no AF_ALG, no hwrng access) are errors
/// the caller can fall back from.
pub fn open(kind: SourceKind) -> Result<TestedSource<Box<dyn RawSource>>> {
    let raw: Box<dyn RawSource> = match kind {
        SourceKind::Getrandom => Box::new(Getrandom),
        SourceKind::HwRng => Box::new(HwRng::open(HWRNG_PATH)?),
        SourceKind::AfAlgRng => {
            if !crate::afalg::available() {
                return Err(CryptoError::AfAlg("absent on this host kernel".into()));
            }
            Box::new(AfAlgRng)
        }
    };
    Ok(TestedSource::new(raw))
}

impl RawSource for Box<dyn RawSource> {
    fn kind_name(&self) -> &'static str {
        (**self).kind_name()
    }
    fn read(&mut self, out: &mut [u8]) -> Result<()> {
        (**self).read(out)
    }
}
