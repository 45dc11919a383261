//! Entropy sources behind virtio-rng. The crypto crate's health-tested
//! sources (hwrng, AF_ALG rng) implement this trait too.

#[derive(Debug, thiserror::Error)]
pub enum EntropyError {
    #[error("entropy source failed: {0}")]
    Source(String),
}

pub trait EntropySource: Send {
    /// Fill all of `buf` or fail.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EntropyError>;
}

/// The kernel CSPRNG via getrandom(2).
#[derive(Debug, Default)]
pub struct GetrandomSource;

impl EntropySource for GetrandomSource {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EntropyError> {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: the pointer and length describe `rest`, a live,
            // writable slice; getrandom writes at most that many bytes.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(EntropyError::Source(e.to_string()));
            }
            done += n as usize;
        }
        Ok(())
    }
}
