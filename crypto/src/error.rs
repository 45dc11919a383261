//! Errors of the cipher engine (library code uses thiserror; anyhow only in cli.rs).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("no algorithm or driver named {0:?}")]
    NotFound(String),
    #[error("invalid key length {len} for {alg}")]
    InvalidKeyLength { alg: &'static str, len: usize },
    #[error("invalid IV length {len} for {alg} (expected {expected})")]
    InvalidIvLength {
        alg: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("invalid data length {len} for {alg}: {why}")]
    InvalidLength {
        alg: &'static str,
        len: usize,
        why: &'static str,
    },
    #[error("authentication failed (bad tag)")]
    BadTag,
    #[error("signature verification failed")]
    BadSignature,
    #[error("malformed key: {0}")]
    BadKey(String),
    #[error("wrong algorithm type: {0} is not a {1}")]
    WrongType(String, &'static str),
    #[error("AF_ALG: {0}")]
    AfAlg(String),
    #[error("entropy source failed health test: {0}")]
    HealthTest(String),
    #[error("self-test failed: {0}")]
    SelfTest(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("engine shut down")]
    EngineClosed,
}

pub type Result<T> = std::result::Result<T, CryptoError>;
