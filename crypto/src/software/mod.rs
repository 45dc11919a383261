//! In-process software implementations (RustCrypto; AES-NI/SHA-NI when present).

pub mod aead;
pub mod hash;
pub mod modes;
#[cfg(feature = "openssl")]
pub mod openssl;
pub mod sig;
pub mod xts;
#[cfg(target_arch = "x86_64")]
pub mod xts_vaes;
