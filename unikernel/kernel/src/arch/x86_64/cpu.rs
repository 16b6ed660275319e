//! Descriptor tables: the GDT with a TSS whose IST gives exceptions their own
//! stack, and an IDT whose exception handlers report the fault and end the
//! VM. Every other vector (the local APIC timer that ends an idle `hlt`, a
//! spurious interrupt) only acknowledges the interrupt and returns.

use core::arch::{asm, global_asm};
use core::mem::size_of;

const EXCEPTION_STACK_SIZE: usize = 16 * 1024;
const KERNEL_CODE: u16 = 0x08;
const TSS_SELECTOR: u16 = 0x18;

#[repr(C, packed)]
struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

#[repr(C, packed)]
struct TablePointer {
    limit: u16,
    base: u64,
}

#[repr(C, align(16))]
struct ExceptionStack([u8; EXCEPTION_STACK_SIZE]);

#[derive(Clone, Copy)]
#[repr(C)]
struct IdtEntry {
    offset_low: u16,
    selector: u16,
    ist: u8,
    flags: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

static mut EXCEPTION_STACK: ExceptionStack = ExceptionStack([0; EXCEPTION_STACK_SIZE]);
static mut TSS: Tss = Tss {
    reserved0: 0,
    rsp: [0; 3],
    reserved1: 0,
    ist: [0; 7],
    reserved2: 0,
    reserved3: 0,
    iomap_base: size_of::<Tss>() as u16,
};
static mut GDT: [u64; 5] = [0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff, 0, 0];
static mut IDT: [IdtEntry; 256] = [IdtEntry {
    offset_low: 0,
    selector: 0,
    ist: 0,
    flags: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
}; 256];

// One stub per exception vector: push a dummy error code where the CPU pushes
// none, push the vector, and hand the frame to `kith_exception`.
global_asm!(
    r#"
    .section .text
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
kith_isr_\n:
    .if (\n == 8) || (\n == 10) || (\n == 11) || (\n == 12) || (\n == 13) || (\n == 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    push 0
    .endif
    push \n
    mov rdi, rsp
    and rsp, -16
    call kith_exception
    .endr

    .global kith_irq_ack
kith_irq_ack:
    push rax
    movabs rax, {eoi}
    mov dword ptr [rax], 0
    pop rax
    iretq

    .section .rodata
    .p2align 3
    .global kith_isr_table
kith_isr_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad kith_isr_\n
    .endr
    "#,
    eoi = const super::apic::EOI_ADDRESS,
);

unsafe extern "C" {
    static kith_isr_table: [u64; 32];
    fn kith_irq_ack();
}

fn gate(handler: u64) -> IdtEntry {
    IdtEntry {
        offset_low: handler as u16,
        selector: KERNEL_CODE,
        ist: 1,
        flags: 0x8e,
        offset_mid: (handler >> 16) as u16,
        offset_high: (handler >> 32) as u32,
        reserved: 0,
    }
}

/// The stack frame of an exception, as the stubs leave it.
#[repr(C)]
pub struct ExceptionFrame {
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

#[unsafe(no_mangle)]
extern "C" fn kith_exception(frame: &ExceptionFrame) -> ! {
    let cr2: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack)) };
    crate::log!(
        "CPU exception {} (error {:#x}) at rip {:#x}, rsp {:#x}, cr2 {:#x}",
        frame.vector,
        frame.error_code,
        frame.rip,
        frame.rsp,
        cr2
    );
    super::exit_vm(crate::syscalls::process::EXIT_KERNEL_FAULT)
}

fn tss_descriptor(base: u64) -> (u64, u64) {
    let limit = (size_of::<Tss>() - 1) as u64;
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    (low, base >> 32)
}

/// Installs the GDT with the TSS (IST 1 = the exception stack) and the IDT.
pub fn init() {
    // SAFETY: runs once on the boot CPU before anything else uses these
    // tables; the statics live for the whole run.
    unsafe {
        let stack_top = (&raw const EXCEPTION_STACK) as u64 + EXCEPTION_STACK_SIZE as u64;
        (*(&raw mut TSS)).ist[0] = stack_top;
        let (low, high) = tss_descriptor((&raw const TSS) as u64);
        GDT[3] = low;
        GDT[4] = high;
        let gdt = TablePointer {
            limit: (size_of::<[u64; 5]>() - 1) as u16,
            base: (&raw const GDT) as u64,
        };
        asm!("lgdt [{}]", in(reg) &gdt, options(nostack));
        asm!("ltr {0:x}", in(reg) TSS_SELECTOR, options(nostack));
        let idt = &mut *(&raw mut IDT);
        for (vector, entry) in idt.iter_mut().enumerate() {
            let handler = kith_isr_table.get(vector).copied();
            *entry = gate(handler.unwrap_or(kith_irq_ack as *const () as u64));
        }
        let idt = TablePointer {
            limit: (size_of::<[IdtEntry; 256]>() - 1) as u16,
            base: (&raw const IDT) as u64,
        };
        asm!("lidt [{}]", in(reg) &idt, options(nostack));
    }
}
