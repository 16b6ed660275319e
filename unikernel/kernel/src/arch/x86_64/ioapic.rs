//! QEMU microvm's second I/O APIC, which carries the virtio-mmio lines: with
//! it (QEMU's default `ioapic2`), transport `i` raises GSI 24 + `i`, its pin
//! `i`. Routing a device's pin to a vector lets the device wake an idle CPU
//! (the vector's handler only acknowledges it). Without that I/O APIC
//! (other VMMs, `ioapic2=off`) nothing is routed and devices stay polled.

use super::entry::VIRTIO_MMIO_BASE;

/// Where the second I/O APIC's registers are.
const SECONDARY: usize = 0xfec1_0000;
const REGISTER_SELECT: usize = 0x00;
const REGISTER_WINDOW: usize = 0x10;
const VERSION: u32 = 0x01;
const REDIRECTION_TABLE: u32 = 0x10;
/// Pins an I/O APIC has on QEMU (redirection entries 0 to 23).
const PINS: u32 = 24;
/// The size of one virtio-mmio window on microvm.
const WINDOW_SIZE: usize = 512;
/// The vector device interrupts arrive on.
pub const DEVICE_VECTOR: u32 = 0x30;

fn read(register: u32) -> u32 {
    // SAFETY: the I/O APIC's select and window registers are identity-mapped
    // MMIO; selecting then reading has no other effect.
    unsafe {
        ((SECONDARY + REGISTER_SELECT) as *mut u32).write_volatile(register);
        ((SECONDARY + REGISTER_WINDOW) as *const u32).read_volatile()
    }
}

fn write(register: u32, value: u32) {
    // SAFETY: as for `read`; the caller writes a redirection entry.
    unsafe {
        ((SECONDARY + REGISTER_SELECT) as *mut u32).write_volatile(register);
        ((SECONDARY + REGISTER_WINDOW) as *mut u32).write_volatile(value);
    }
}

/// Whether the second I/O APIC is there: a known version (0x11 or 0x20) with
/// 24 pins.
fn present() -> bool {
    let version = read(VERSION);
    matches!(version & 0xff, 0x11 | 0x20) && (version >> 16) & 0xff == PINS - 1
}

/// Routes the pin of the virtio-mmio transport at `window` to
/// [`DEVICE_VECTOR`] on CPU 0 (fixed delivery, active high, edge-triggered);
/// false when the machine has no such I/O APIC or pin.
pub fn route(window: usize) -> bool {
    let Some(pin) = window
        .checked_sub(VIRTIO_MMIO_BASE)
        .map(|o| o / WINDOW_SIZE)
    else {
        return false;
    };
    let Ok(pin) = u32::try_from(pin) else {
        return false;
    };
    if pin >= PINS || !present() {
        return false;
    }
    write(REDIRECTION_TABLE + 2 * pin + 1, 0);
    write(REDIRECTION_TABLE + 2 * pin, DEVICE_VECTOR);
    true
}
