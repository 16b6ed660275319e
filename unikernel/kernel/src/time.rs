//! Clocks, from the architecture's counter: nanoseconds since boot and since the
//! Unix epoch.

pub use crate::arch::clock::{monotonic_ns, realtime_ns};

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;
