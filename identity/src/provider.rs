//! Time and entropy, brought in from outside.
//!
//! Like rustls' `CryptoProvider`, one struct carries what the crate would otherwise take
//! from the operating system, so tests can fix the clock and the unikernel can bring its
//! own entropy source.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::SecureRandom;

/// A clock: the current time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;
/// An entropy source: fills a buffer with secure random bytes.
pub type Entropy = Arc<dyn Fn(&mut [u8]) + Send + Sync>;

/// Where the crate gets the time and random bytes.
#[derive(Clone)]
pub struct Provider {
    /// The current time.
    pub now: Clock,
    /// Fills a buffer with secure random bytes.
    pub fill: Entropy,
}

impl Provider {
    /// The operating system's clock and ring's system random source.
    pub fn system() -> Provider {
        let rng = ring::rand::SystemRandom::new();
        Provider {
            now: Arc::new(SystemTime::now),
            fill: Arc::new(move |buf| rng.fill(buf).expect("the system random source failed")),
        }
    }

    /// Seconds since the Unix epoch, now.
    pub fn unix_secs(&self) -> u64 {
        (self.now)()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    }

    /// `N` random bytes.
    pub fn random<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        (self.fill)(&mut out);
        out
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Provider")
    }
}
