//! The console: the first serial port, used for stdout, stderr and kernel logs.

use core::fmt;

use crate::arch::serial;

/// Writes `bytes` to the console.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            serial::write_byte(b'\r');
        }
        serial::write_byte(b);
    }
}

/// A `fmt::Write` sink for kernel messages.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write(s.as_bytes());
        Ok(())
    }
}

/// Prints a kernel log line, prefixed with `[kith]`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Console, "[kith] {}", format_args!($($arg)*));
    }};
}
