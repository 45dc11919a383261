//! virtio-blk (device id 2).

pub mod backend;
pub mod device;
pub mod request;
#[cfg(test)]
mod tests;

pub use backend::{BlockBackend, RawFileBackend};
pub use device::{BlkConfig, BlkDevice};
