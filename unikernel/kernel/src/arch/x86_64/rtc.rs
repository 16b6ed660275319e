//! The CMOS real-time clock, read once at boot for the wall clock.

use super::{inb, outb};

fn read(reg: u8) -> u8 {
    outb(0x70, reg);
    inb(0x71)
}

fn update_in_progress() -> bool {
    read(0x0a) & 0x80 != 0
}

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the Unix epoch according to the RTC (0 if there is none or
/// it reads garbage).
pub fn unix_seconds() -> u64 {
    // An update takes under 2 ms; a missing RTC reads as 0xff (always busy).
    if (0..10_000).all(|_| update_in_progress()) {
        return 0;
    }
    let format = read(0x0b);
    let bcd = |v: u8| {
        if format & 0x04 == 0 {
            (v & 0x0f) + (v >> 4) * 10
        } else {
            v
        }
    };
    let second = i64::from(bcd(read(0x00)));
    let minute = i64::from(bcd(read(0x02)));
    let hour_raw = read(0x04);
    let pm = format & 0x02 == 0 && hour_raw & 0x80 != 0;
    let hour = i64::from(bcd(hour_raw & 0x7f)) % 12 + if pm { 12 } else { 0 };
    let hour = if format & 0x02 != 0 {
        i64::from(bcd(hour_raw))
    } else {
        hour
    };
    let day = i64::from(bcd(read(0x07)));
    let month = i64::from(bcd(read(0x08)));
    let year = 2000 + i64::from(bcd(read(0x09)));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return 0;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(secs).unwrap_or(0)
}
