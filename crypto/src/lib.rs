//! vigil's host cipher engine: a registry of algorithms modelled on the Linux
//! kernel Crypto API (names, driver names, priorities), in-process software
//! implementations and the host kernel's through AF_ALG, an asynchronous
//! request engine, entropy with health tests, and LUKS containers.

pub mod afalg;
pub mod algorithms;
pub mod bench;
pub mod cli;
pub mod engine;
pub mod entropy;
pub mod error;
pub mod kat;
pub mod luks;
pub mod registry;
pub mod segmented;
pub mod software;

pub use error::{CryptoError, Result};
pub use registry::{AlgImpl, AlgKind, Registry};
