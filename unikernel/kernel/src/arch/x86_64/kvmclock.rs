//! The TSC frequency from KVM's paravirtual clock (when running under KVM),
//! which avoids slow PIT polling through VM exits.

use core::arch::asm;
use core::arch::x86_64::__cpuid;

const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;

#[repr(C, align(64))]
struct PvclockTimeInfo {
    version: u32,
    pad0: u32,
    tsc_timestamp: u64,
    system_time: u64,
    tsc_to_system_mul: u32,
    tsc_shift: i8,
    flags: u8,
    pad: [u8; 2],
}

static mut TIME_INFO: PvclockTimeInfo = PvclockTimeInfo {
    version: 0,
    pad0: 0,
    tsc_timestamp: 0,
    system_time: 0,
    tsc_to_system_mul: 0,
    tsc_shift: 0,
    flags: 0,
    pad: [0; 2],
};

fn write_msr(msr: u32, value: u64) {
    // SAFETY: only called with the KVM clock MSR after checking KVM offers it.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack))
    }
}

fn is_kvm_with_clock() -> bool {
    let hv = __cpuid(0x4000_0000);
    let signature = [
        hv.ebx.to_le_bytes(),
        hv.ecx.to_le_bytes(),
        hv.edx.to_le_bytes(),
    ];
    signature == [*b"KVMK", *b"VMKV", *b"M\0\0\0"]
        && __cpuid(0x4000_0001).eax & KVM_FEATURE_CLOCKSOURCE2 != 0
}

/// The TSC frequency in Hz according to KVM, or `None` outside KVM.
pub fn tsc_hz() -> Option<u64> {
    if !is_kvm_with_clock() {
        return None;
    }
    let info = &raw mut TIME_INFO;
    write_msr(MSR_KVM_SYSTEM_TIME_NEW, info as u64 | 1);
    // SAFETY: KVM has filled the structure by the time wrmsr returns.
    let (mul, shift) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*info).tsc_to_system_mul),
            core::ptr::read_volatile(&raw const (*info).tsc_shift),
        )
    };
    write_msr(MSR_KVM_SYSTEM_TIME_NEW, 0);
    if mul == 0 {
        return None;
    }
    let hz = (1_000_000_000u128 << 32) / u128::from(mul);
    let hz = if shift >= 0 {
        hz >> shift
    } else {
        hz << -shift
    };
    u64::try_from(hz).ok()
}
