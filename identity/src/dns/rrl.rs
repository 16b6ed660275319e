//! Response rate limiting for UDP, sans I/O.
//!
//! A token bucket per client prefix (/24 for IPv4, /56 for IPv6) refills at `rate`
//! responses a second up to `burst`. Over the limit, every `slip`-th response goes out
//! truncated (TC=1, so a real client retries over TCP, which spoofed sources cannot)
//! and the others are dropped, as BIND's RRL does. Time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// The most prefixes tracked; the table starts afresh beyond it.
const MAX_PREFIXES: usize = 65_536;

/// What to do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Send it truncated (TC=1), inviting a retry over TCP.
    Slip,
    /// Send nothing.
    Drop,
}

/// Per-prefix token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    slip: u32,
    buckets: HashMap<[u8; 8], Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    limited: u32,
}

impl RateLimiter {
    /// `rate` responses a second per prefix, bursts up to `burst`, every `slip`-th
    /// limited response truncated (0: none).
    pub fn new(rate: u32, burst: u32, slip: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            slip,
            buckets: HashMap::new(),
        }
    }

    /// Decides the fate of one response to `client` at `now`.
    pub fn check(&mut self, client: IpAddr, now: Instant) -> Verdict {
        if self.buckets.len() >= MAX_PREFIXES {
            self.buckets.clear();
        }
        let burst = self.burst;
        let bucket = self.buckets.entry(prefix(client)).or_insert(Bucket {
            tokens: burst,
            at: now,
            limited: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Send;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.slip > 0 && bucket.limited.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

fn prefix(ip: IpAddr) -> [u8; 8] {
    let mut key = [0u8; 8];
    match ip {
        IpAddr::V4(v4) => key[..3].copy_from_slice(&v4.octets()[..3]),
        IpAddr::V6(v6) => {
            key[0] = 6;
            key[1..8].copy_from_slice(&v6.octets()[..7]);
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_a_prefix_and_refills() {
        let mut rrl = RateLimiter::new(10, 5, 2);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(rrl.check(a, t0), Verdict::Send);
        }
        assert_eq!(rrl.check(b, t0), Verdict::Drop);
        assert_eq!(rrl.check(a, t0), Verdict::Slip);
        assert_eq!(rrl.check(other, t0), Verdict::Send);
        assert_eq!(rrl.check(a, t0 + Duration::from_millis(100)), Verdict::Send);
    }
}
