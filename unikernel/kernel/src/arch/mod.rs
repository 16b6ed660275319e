//! Architecture support. Only x86_64 for now; aarch64 (`-M virt`) comes later.

pub mod x86_64;

pub use self::x86_64::*;
