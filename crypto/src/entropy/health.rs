//! Continuous health tests (NIST SP 800-90B 4.4) applied to every byte
//! before it leaves the engine, with the cutoffs Linux's jitterentropy uses
//! (alpha = 2^-30): repetition count 31, adaptive proportion 325 in a
//! 512-sample window; plus the FIPS 140-2 continuous test that rejects a
//! block equal to the previous one (stuck output).

use crate::error::{CryptoError, Result};

pub const REPETITION_CUTOFF: u32 = 31;
pub const APT_WINDOW: u32 = 512;
pub const APT_CUTOFF: u32 = 325;
/// Block size of the stuck-output comparison.
pub const STUCK_BLOCK: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct HealthTests {
    last: Option<u8>,
    run: u32,
    apt_sample: u8,
    apt_seen: u32,
    apt_count: u32,
    prev_block: Option<[u8; STUCK_BLOCK]>,
    /// Set once a test failed; the source stays failed (SP 800-90B 4.3).
    failed: Option<String>,
}

impl HealthTests {
    pub fn new() -> Self {
        Self::default()
    }

    fn sample(&mut self, b: u8) -> std::result::Result<(), String> {
        // Repetition count test.
        if self.last == Some(b) {
            self.run += 1;
            if self.run >= REPETITION_CUTOFF {
                return Err(format!(
                    "repetition count: {b:#04x} repeated {} times",
                    self.run
                ));
            }
        } else {
            self.last = Some(b);
            self.run = 1;
        }
        // Adaptive proportion test.
        if self.apt_seen == 0 {
            self.apt_sample = b;
            self.apt_count = 1;
        } else if b == self.apt_sample {
            self.apt_count += 1;
            if self.apt_count >= APT_CUTOFF {
                return Err(format!(
                    "adaptive proportion: {b:#04x} {} times in {APT_WINDOW}",
                    self.apt_count
                ));
            }
        }
        self.apt_seen = (self.apt_seen + 1) % APT_WINDOW;
        Ok(())
    }

    /// Tests `data` (fresh source output). Any failure latches.
    pub fn check(&mut self, data: &[u8]) -> Result<()> {
        if let Some(f) = &self.failed {
            return Err(CryptoError::HealthTest(f.clone()));
        }
        let r = (|| {
            for &b in data {
                self.sample(b)?;
            }
            for blk in data.chunks_exact(STUCK_BLOCK) {
                let mut cur = [0u8; STUCK_BLOCK];
                cur.copy_from_slice(blk);
                if self.prev_block == Some(cur) {
                    return Err("stuck output: block repeated".to_string());
                }
                self.prev_block = Some(cur);
            }
            Ok(())
        })();
        r.map_err(|e| {
            self.failed = Some(e.clone());
            CryptoError::HealthTest(e)
        })
    }

    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }
}
