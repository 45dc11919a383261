//! Token bucket in Firecracker's style (refill rate, burst capacity and a
//! one-time initial burst), counted in bytes. Budget is kept in
//! nano-tokens so slow rates do not lose fractions.

use std::time::{Duration, Instant};

const NANOS: u128 = 1_000_000_000;

/// Per-device limiter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimiterConfig {
    /// Sustained refill rate.
    pub bytes_per_sec: u64,
    /// Bucket capacity; 0 means one second's worth.
    pub burst: u64,
    /// Extra bytes available once at start, not refilled.
    pub one_time_burst: u64,
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u128,
    capacity: u128,
    budget: u128,
    one_time: u64,
    last: Instant,
}

impl TokenBucket {
    /// `None` if the rate is 0 (unlimited).
    pub fn new(cfg: RateLimiterConfig) -> Option<Self> {
        Self::new_at(cfg, Instant::now())
    }

    pub fn new_at(cfg: RateLimiterConfig, now: Instant) -> Option<Self> {
        if cfg.bytes_per_sec == 0 {
            return None;
        }
        let cap = if cfg.burst == 0 {
            cfg.bytes_per_sec
        } else {
            cfg.burst
        };
        let capacity = u128::from(cap) * NANOS;
        Some(Self {
            rate: u128::from(cfg.bytes_per_sec),
            capacity,
            budget: capacity,
            one_time: cfg.one_time_burst,
            last: now,
        })
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = now;
        self.budget = self
            .budget
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.capacity);
    }

    /// Take up to `want` bytes; returns how many were granted.
    pub fn take(&mut self, want: u64) -> u64 {
        self.take_at(want, Instant::now())
    }

    pub fn take_at(&mut self, want: u64, now: Instant) -> u64 {
        self.refill(now);
        let from_burst = want.min(self.one_time);
        self.one_time -= from_burst;
        let rest = want - from_burst;
        let avail = u64::try_from(self.budget / NANOS).unwrap_or(u64::MAX);
        let from_bucket = rest.min(avail);
        self.budget -= u128::from(from_bucket) * NANOS;
        from_burst + from_bucket
    }

    /// Time until at least `n` bytes (capped at capacity) are available.
    pub fn wait_for(&self, n: u64) -> Duration {
        let need = (u128::from(n.max(1)) * NANOS).min(self.capacity);
        if self.budget >= need {
            return Duration::ZERO;
        }
        let ns = (need - self.budget).div_ceil(self.rate);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)).max(Duration::from_micros(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_rate() {
        let t0 = Instant::now();
        let cfg = RateLimiterConfig {
            bytes_per_sec: 1000,
            burst: 500,
            one_time_burst: 100,
        };
        let mut b = TokenBucket::new_at(cfg, t0).unwrap();
        assert_eq!(b.take_at(10_000, t0), 600);
        assert_eq!(b.take_at(10, t0), 0);
        assert!(b.wait_for(10) >= Duration::from_millis(10));
        assert_eq!(b.take_at(10_000, t0 + Duration::from_millis(250)), 250);
        // Capacity caps accumulated budget; one-time burst is not refilled.
        assert_eq!(b.take_at(10_000, t0 + Duration::from_secs(100)), 500);
        // Fractions accumulate: 1 byte/ms in 0.5 ms steps.
        let mut total = 0;
        for i in 1..=20u64 {
            total += b.take_at(
                1000,
                t0 + Duration::from_secs(100) + Duration::from_micros(500 * i),
            );
        }
        assert_eq!(total, 10);
    }

    #[test]
    fn zero_rate_is_unlimited() {
        assert!(TokenBucket::new(RateLimiterConfig {
            bytes_per_sec: 0,
            burst: 1,
            one_time_burst: 0
        })
        .is_none());
    }
}
