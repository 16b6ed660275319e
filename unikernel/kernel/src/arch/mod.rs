//! Architecture support. Each architecture module offers the same items, which
//! the rest of the kernel uses through `crate::arch`:
//! - `exit_vm(status)`: end the VM so that QEMU exits with `status * 2 + 1`;
//! - `set_thread_pointer(tp)`, `random_u64()`, `cycle_counter()`;
//! - `halt_until(ns)`: stop the CPU until that time since boot or an interrupt;
//! - `virtio_mmio_windows()`: where the virtio-mmio transports are;
//! - `clock::{monotonic_ns, realtime_ns}`, `serial::write_byte`,
//!   `switch::{kith_switch_stacks, initial_stack}`, and [`TLS_VARIANT_I`].

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(target_arch = "aarch64")]
pub use self::aarch64::*;
#[cfg(target_arch = "x86_64")]
pub use self::x86_64::*;
