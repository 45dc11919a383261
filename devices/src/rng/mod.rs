//! virtio-rng (device id 4).

pub mod device;
pub mod entropy;
pub mod rate_limiter;

pub use device::RngDevice;
pub use entropy::{EntropySource, GetrandomSource};
pub use rate_limiter::{RateLimiterConfig, TokenBucket};
