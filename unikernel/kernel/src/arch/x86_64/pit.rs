//! TSC calibration against the legacy PIT (channel 0, polled).

use super::{inb, outb, rdtsc};

const PIT_HZ: u64 = 1_193_182;
const CHANNEL0: u16 = 0x40;
const COMMAND: u16 = 0x43;
/// Calibration window: 10 ms worth of PIT ticks.
const WINDOW: u64 = PIT_HZ / 100;

fn read_counter() -> u16 {
    outb(COMMAND, 0x00);
    let lo = inb(CHANNEL0);
    let hi = inb(CHANNEL0);
    u16::from_le_bytes([lo, hi])
}

/// Measures the TSC frequency in Hz over 10 ms of PIT time; `None` when no
/// PIT counts (some microvm configurations have none).
pub fn tsc_hz() -> Option<u64> {
    outb(COMMAND, 0x34);
    outb(CHANNEL0, 0xff);
    outb(CHANNEL0, 0xff);
    let mut last = read_counter();
    let start = rdtsc();
    let mut elapsed = 0u64;
    let mut reads = 0u32;
    while elapsed < WINDOW {
        let now = read_counter();
        elapsed += u64::from(last.wrapping_sub(now));
        last = now;
        reads += 1;
        if reads > 100_000 && elapsed == 0 {
            return None;
        }
    }
    let ticks = rdtsc() - start;
    Some(ticks * PIT_HZ / elapsed)
}
