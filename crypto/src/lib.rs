//! vigil's host cipher engine: a registry of algorithms modelled on the Linux
//! kernel Crypto API (names, driver names, priorities, self-tests), in-process
//! software implementations and the host kernel's through AF_ALG, an
//! asynchronous request engine, entropy with health tests, and LUKS
//! containers with optional per-segment keys.
//!
//! Entry points for the devices:
//!
//! - virtio-blk with encryption: [`luks::LuksVolume::open`] (or
//!   `create_luks2`/`create_luks1`), then `read_sectors`/`write_sectors` in
//!   units of `sector_size()`; [`segmented::SegmentedVolume`] on top of it
//!   adds `discard(segment)` crypto-erase.
//! - virtio-rng: [`entropy::open`] (`SourceKind::HwRng`, falling back to
//!   `Getrandom`), then `fill(buf)`; bytes only leave after the health tests.
//! - virtio-crypto: one [`Registry::with_defaults`] per VMM; per session
//!   [`engine::Transform::skcipher`]/`aead`/`hash` by algorithm or driver
//!   name; per request an [`engine::Request`] submitted to a shared
//!   [`engine::Engine`], completed through a channel or callback.

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
