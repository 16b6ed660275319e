//! Packing an image: the kernel's memory image compressed, about half the size.
//!
//! aarch64 has a format for this already: a kernel that opens with the arm64 Image
//! header (kith-unikernel's does, `arch/aarch64/entry.rs`), flattened to its memory
//! image and gzipped, is an `Image.gz`, which the boot loader (QEMU, U-Boot's `booti`)
//! unpacks before entering it. [`pack`] writes that, with the header's `image_size`
//! filled in.
//!
//! A PVH boot loader only loads ELF segments, so x86_64 images unpack themselves with
//! the stub kith-unikernel links into every image (`arch/x86_64/unpack.rs`). An image
//! as linked holds the kernel's `PT_LOAD` segments and, in a last segment of
//! its own at `__kernel_end`, the `.unpack` section: the stub. The packed image is an
//! ELF with two program headers. One `PT_LOAD` at the stub's address holds the stub,
//! an 8-byte header (the block's length, then the address to decode to; little-endian
//! `u32`s) and one LZ4 block: the kernel's memory image, its segments' file bytes at
//! their addresses with zeros between them. One `PT_NOTE` is the Xen PVH entry note
//! naming the stub. The stub decodes the kernel where a boot loader would have loaded
//! it, zeroes its `.bss` and enters it; nothing else about booting changes.

use std::fmt;
use std::io::Write as _;

/// Why an image cannot be packed.
#[derive(Debug, PartialEq, Eq)]
pub enum PackError {
    /// Not a little-endian 64-bit x86_64 or aarch64 ELF executable.
    NotKernelElf,
    /// An aarch64 kernel that does not open with the arm64 Image header.
    NoImageHeader,
    /// A header or segment lies outside the file.
    Truncated,
    /// The image has no `.unpack` section (linked by an older kith-unikernel).
    NoStub,
    /// The image has no kernel segment to load.
    NoKernel,
    /// A kernel segment reaches past the stub's address.
    Overlap,
    /// The kernel is larger than the stub's 32-bit header can describe.
    TooLarge,
    /// The compressor failed.
    Compress(String),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotKernelElf => f.write_str("not an x86_64 or aarch64 ELF executable"),
            Self::NoImageHeader => f.write_str(
                "the kernel does not open with the arm64 Image header: rebuild it with this \
checkout's kith-unikernel",
            ),
            Self::Truncated => f.write_str("the ELF file is truncated"),
            Self::NoStub => f.write_str(
                "the image has no .unpack section: rebuild it with this checkout's kith-unikernel",
            ),
            Self::NoKernel => f.write_str("the image has no loadable kernel segment"),
            Self::Overlap => f.write_str("a kernel segment overlaps the unpacking stub"),
            Self::TooLarge => f.write_str("the kernel image is larger than 4 GiB"),
            Self::Compress(why) => write!(f, "LZ4 compression failed: {why}"),
        }
    }
}

impl std::error::Error for PackError {}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
/// Where the arm64 Image header keeps the kernel's size in memory, and its magic.
const IMAGE_SIZE_AT: usize = 16;
const IMAGE_MAGIC_AT: usize = 56;
const ELF_HEADER_LEN: usize = 64;
const PHDR_LEN: usize = 56;
/// Where the packed image's loaded segment starts in the file.
const LOAD_OFFSET: usize = 4096;
/// The LZ4 HC level: the slowest and smallest (a few seconds for a 3 MB kernel).
const LZ4_HC_LEVEL: i32 = 12;
/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit PVH entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// One `PT_LOAD` segment of the input.
struct Segment {
    offset: usize,
    addr: u64,
    file_len: usize,
    mem_len: u64,
}

/// The `.unpack` section: the stub's bytes and address.
struct Stub<'a> {
    addr: u64,
    code: &'a [u8],
}

/// Packs a linked image (stripped or not): an `Image.gz` for aarch64, a self-unpacking
/// ELF for x86_64.
pub fn pack(elf: &[u8]) -> Result<Vec<u8>, PackError> {
    match machine(elf)? {
        EM_AARCH64 => pack_arm64_image(elf),
        _ => pack_x86_64(elf),
    }
}

/// The kernel's memory image with its Image header's `image_size` set, gzipped.
fn pack_arm64_image(elf: &[u8]) -> Result<Vec<u8>, PackError> {
    let segments = load_segments(elf)?;
    let (start, mut image) = memory_image(elf, &segments, u64::MAX)?;
    if image.get(IMAGE_MAGIC_AT..IMAGE_MAGIC_AT + 4) != Some(b"ARM\x64".as_slice()) {
        return Err(PackError::NoImageHeader);
    }
    let end = segments
        .iter()
        .map(|s| s.addr + s.mem_len)
        .max()
        .unwrap_or(start);
    image[IMAGE_SIZE_AT..IMAGE_SIZE_AT + 8].copy_from_slice(&(end - start).to_le_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&image)
        .and_then(|()| gz.finish())
        .map_err(|e| PackError::Compress(e.to_string()))
}

/// The kernel behind the unpacking stub, as a PVH ELF entered at the stub.
fn pack_x86_64(elf: &[u8]) -> Result<Vec<u8>, PackError> {
    let stub = find_stub(elf)?;
    let kernel: Vec<Segment> = load_segments(elf)?
        .into_iter()
        .filter(|s| s.addr != stub.addr)
        .collect();
    let (start, image) = memory_image(elf, &kernel, stub.addr)?;
    let block = lz4::block::compress(
        &image,
        Some(lz4::block::CompressionMode::HIGHCOMPRESSION(LZ4_HC_LEVEL)),
        false,
    )
    .map_err(|e| PackError::Compress(e.to_string()))?;
    let block_len = u32::try_from(block.len()).map_err(|_| PackError::TooLarge)?;
    let start = u32::try_from(start).map_err(|_| PackError::TooLarge)?;
    let mut load = stub.code.to_vec();
    load.extend_from_slice(&block_len.to_le_bytes());
    load.extend_from_slice(&start.to_le_bytes());
    load.extend_from_slice(&block);
    packed_elf(elf, &stub, &load)
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, PackError> {
    let bytes = b.get(at..at + 2).ok_or(PackError::Truncated)?;
    Ok(u16::from_le_bytes(bytes.try_into().expect("two bytes")))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, PackError> {
    let bytes = b.get(at..at + 4).ok_or(PackError::Truncated)?;
    Ok(u32::from_le_bytes(bytes.try_into().expect("four bytes")))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, PackError> {
    let bytes = b.get(at..at + 8).ok_or(PackError::Truncated)?;
    Ok(u64::from_le_bytes(bytes.try_into().expect("eight bytes")))
}

fn usize_at(b: &[u8], at: usize) -> Result<usize, PackError> {
    usize::try_from(u64_at(b, at)?).map_err(|_| PackError::Truncated)
}

/// The ELF's machine, if it is a little-endian 64-bit x86_64 or aarch64 ELF.
fn machine(elf: &[u8]) -> Result<u16, PackError> {
    let ident_ok = elf.get(..6) == Some(b"\x7fELF\x02\x01".as_slice());
    match u16_at(elf, 0x12) {
        Ok(m @ (EM_X86_64 | EM_AARCH64)) if ident_ok => Ok(m),
        _ => Err(PackError::NotKernelElf),
    }
}

/// The program headers of type `PT_LOAD`.
fn load_segments(elf: &[u8]) -> Result<Vec<Segment>, PackError> {
    let phoff = usize_at(elf, 0x20)?;
    let phentsize = usize::from(u16_at(elf, 0x36)?);
    let phnum = usize::from(u16_at(elf, 0x38)?);
    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        if u32_at(elf, at)? != PT_LOAD {
            continue;
        }
        let segment = Segment {
            offset: usize_at(elf, at + 8)?,
            addr: u64_at(elf, at + 0x10)?,
            file_len: usize_at(elf, at + 0x20)?,
            mem_len: u64_at(elf, at + 0x28)?,
        };
        if elf.len() < segment.offset.saturating_add(segment.file_len) {
            return Err(PackError::Truncated);
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// The `.unpack` section, found by name in the section headers.
fn find_stub(elf: &[u8]) -> Result<Stub<'_>, PackError> {
    let shoff = usize_at(elf, 0x28)?;
    let shentsize = usize::from(u16_at(elf, 0x3a)?);
    let shnum = usize::from(u16_at(elf, 0x3c)?);
    let shstrndx = usize::from(u16_at(elf, 0x3e)?);
    let section = |i: usize| shoff + i * shentsize;
    let names = usize_at(elf, section(shstrndx) + 0x18)?;
    for i in 0..shnum {
        let at = section(i);
        let name = names + u32_at(elf, at)? as usize;
        if elf.get(name..name + 8) != Some(b".unpack\0".as_slice()) {
            continue;
        }
        let offset = usize_at(elf, at + 0x18)?;
        let len = usize_at(elf, at + 0x20)?;
        let code = elf
            .get(offset..offset.saturating_add(len))
            .ok_or(PackError::Truncated)?;
        return Ok(Stub {
            addr: u64_at(elf, at + 0x10)?,
            code,
        });
    }
    Err(PackError::NoStub)
}

/// The kernel's lowest address and its memory image up to its last file byte.
fn memory_image(
    elf: &[u8],
    kernel: &[Segment],
    stub_addr: u64,
) -> Result<(u64, Vec<u8>), PackError> {
    let start = kernel
        .iter()
        .map(|s| s.addr)
        .min()
        .ok_or(PackError::NoKernel)?;
    if kernel.iter().any(|s| s.addr + s.mem_len > stub_addr) {
        return Err(PackError::Overlap);
    }
    let end = kernel
        .iter()
        .filter(|s| s.file_len > 0)
        .map(|s| s.addr + s.file_len as u64)
        .max()
        .unwrap_or(start);
    let mut image = vec![0u8; usize::try_from(end - start).map_err(|_| PackError::TooLarge)?];
    for s in kernel.iter().filter(|s| s.file_len > 0) {
        let at = (s.addr - start) as usize;
        image[at..at + s.file_len].copy_from_slice(&elf[s.offset..s.offset + s.file_len]);
    }
    Ok((start, image))
}

/// The packed ELF: `load` (stub, header, block) loaded at the stub's address, entered
/// there, with the PVH note naming it.
fn packed_elf(input: &[u8], stub: &Stub<'_>, load: &[u8]) -> Result<Vec<u8>, PackError> {
    let entry = u32::try_from(stub.addr).map_err(|_| PackError::TooLarge)?;
    let note_offset = ELF_HEADER_LEN + 2 * PHDR_LEN;
    let mut note = Vec::new();
    for word in [4, 4, XEN_ELFNOTE_PHYS32_ENTRY] {
        note.extend_from_slice(&u32::to_le_bytes(word));
    }
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&entry.to_le_bytes());

    let mut out = Vec::with_capacity(LOAD_OFFSET + load.len());
    out.extend_from_slice(&input[..16]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&EM_X86_64.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    out.extend_from_slice(&stub.addr.to_le_bytes()); // e_entry
    out.extend_from_slice(&(ELF_HEADER_LEN as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [ELF_HEADER_LEN, PHDR_LEN, 2, 64, 0, 0] {
        out.extend_from_slice(&(half as u16).to_le_bytes());
    }
    let note_len = note.len() as u64;
    out.extend(program_header(
        PT_NOTE,
        4,
        note_offset as u64,
        0,
        note_len,
        4,
    ));
    let load_len = load.len() as u64;
    out.extend(program_header(
        PT_LOAD,
        7,
        LOAD_OFFSET as u64,
        stub.addr,
        load_len,
        4096,
    ));
    out.extend_from_slice(&note);
    out.resize(LOAD_OFFSET, 0);
    out.extend_from_slice(load);
    Ok(out)
}

/// An ELF64 program header; `addr` is both the virtual and the physical address.
fn program_header(kind: u32, flags: u32, offset: u64, addr: u64, len: u64, align: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(PHDR_LEN);
    h.extend_from_slice(&kind.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    for word in [offset, addr, addr, len, len, align] {
        h.extend_from_slice(&word.to_le_bytes());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first instructions of `kith_unpack32`: `cli; cld; mov ebp, ebx`.
    const STUB_CODE: [u8; 4] = [0xfa, 0xfc, 0x89, 0xdd];
    /// `mov rax, 1; ret`, standing for the kernel's text.
    const KERNEL_TEXT: [u8; 8] = [0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, 0xc3];

    /// A minimal image as the linker writes one: two kernel segments (text, and data
    /// with a `.bss` tail), the stub's segment, and section headers naming `.unpack`.
    fn linked_image(text: &[u8], data: &[u8], stub: &[u8]) -> Vec<u8> {
        let (text_addr, data_addr, stub_addr) = (0x200000u64, 0x203000u64, 0x206000u64);
        let (text_off, data_off, stub_off, names_off, sh_off) =
            (0x1000, 0x2000, 0x3000, 0x3800, 0x3900);
        let mut elf = vec![0u8; sh_off + 3 * 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x12..0x14].copy_from_slice(&EM_X86_64.to_le_bytes());
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x28..0x30].copy_from_slice(&(sh_off as u64).to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&(PHDR_LEN as u16).to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        let segments = [
            (text_off, text_addr, text.len() as u64, text.len() as u64),
            (data_off, data_addr, data.len() as u64, 0x2000),
            (stub_off, stub_addr, stub.len() as u64, stub.len() as u64),
        ];
        for (i, (off, addr, file, mem)) in segments.into_iter().enumerate() {
            let mut h = program_header(PT_LOAD, 5, off as u64, addr, file, 4096);
            h[0x28..0x30].copy_from_slice(&mem.to_le_bytes());
            elf[64 + i * PHDR_LEN..64 + (i + 1) * PHDR_LEN].copy_from_slice(&h);
        }
        elf[text_off..text_off + text.len()].copy_from_slice(text);
        elf[data_off..data_off + data.len()].copy_from_slice(data);
        elf[stub_off..stub_off + stub.len()].copy_from_slice(stub);
        elf[names_off..names_off + 19].copy_from_slice(b"\0.unpack\0.shstrtab\0");
        // Section 1: .unpack; section 2: .shstrtab.
        let sh1 = sh_off + 64;
        elf[sh1..sh1 + 4].copy_from_slice(&1u32.to_le_bytes());
        elf[sh1 + 0x10..sh1 + 0x18].copy_from_slice(&stub_addr.to_le_bytes());
        elf[sh1 + 0x18..sh1 + 0x20].copy_from_slice(&(stub_off as u64).to_le_bytes());
        elf[sh1 + 0x20..sh1 + 0x28].copy_from_slice(&(stub.len() as u64).to_le_bytes());
        let sh2 = sh_off + 128;
        elf[sh2..sh2 + 4].copy_from_slice(&9u32.to_le_bytes());
        elf[sh2 + 0x18..sh2 + 0x20].copy_from_slice(&(names_off as u64).to_le_bytes());
        elf
    }

    #[test]
    fn the_packed_image_holds_the_stub_and_the_kernel_memory_image() {
        let text: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let data = b"data data data data".repeat(20);
        let packed = pack(&linked_image(&text, &data, &STUB_CODE)).unwrap();

        assert_eq!(
            u64_at(&packed, 0x18).unwrap(),
            0x206000,
            "entered at the stub"
        );
        assert_eq!(u16_at(&packed, 0x38).unwrap(), 2);
        // The PVH note names the stub.
        let note_at = usize_at(&packed, 64 + 8).unwrap();
        assert_eq!(&packed[note_at + 12..note_at + 16], b"Xen\0");
        assert_eq!(u32_at(&packed, note_at + 16).unwrap(), 0x206000);
        // The loaded segment: stub, header, block; memory size equal to its file size.
        let load = 64 + PHDR_LEN;
        assert_eq!(u32_at(&packed, load).unwrap(), PT_LOAD);
        assert_eq!(u64_at(&packed, load + 0x10).unwrap(), 0x206000);
        let (offset, len) = (
            usize_at(&packed, load + 8).unwrap(),
            usize_at(&packed, load + 0x20).unwrap(),
        );
        assert_eq!(len, usize_at(&packed, load + 0x28).unwrap());
        let segment = &packed[offset..offset + len];
        assert_eq!(&segment[..4], &STUB_CODE);
        let block_len = u32_at(segment, 4).unwrap() as usize;
        assert_eq!(
            u32_at(segment, 8).unwrap(),
            0x200000,
            "decoded to the kernel's start"
        );
        assert_eq!(12 + block_len, segment.len());
        let image_len = 0x3000 + data.len();
        let image = lz4::block::decompress(&segment[12..], Some(image_len as i32)).unwrap();
        let mut expected = vec![0u8; image_len];
        expected[..text.len()].copy_from_slice(&text);
        expected[0x3000..].copy_from_slice(&data);
        assert_eq!(
            image, expected,
            "text, zeros up to data, data; the .bss is left to the stub"
        );
    }

    #[test]
    fn what_cannot_be_packed_says_why() {
        let linked = linked_image(&KERNEL_TEXT, &0x2au64.to_le_bytes(), &STUB_CODE);
        assert_eq!(pack(b"not an elf"), Err(PackError::NotKernelElf));
        let mut riscv = linked.clone();
        riscv[0x12..0x14].copy_from_slice(&243u16.to_le_bytes());
        assert_eq!(pack(&riscv), Err(PackError::NotKernelElf));
        let mut arm = linked.clone();
        arm[0x12..0x14].copy_from_slice(&EM_AARCH64.to_le_bytes());
        assert_eq!(
            pack(&arm),
            Err(PackError::NoImageHeader),
            "text lacks the Image header"
        );
        assert_eq!(pack(&linked[..0x2800]), Err(PackError::Truncated));
        let mut no_stub = linked.clone();
        no_stub[0x3801..0x3808].copy_from_slice(b".other\0");
        assert_eq!(pack(&no_stub), Err(PackError::NoStub));
        let mut overlap = linked;
        let data_mem = 64 + PHDR_LEN + 0x28;
        overlap[data_mem..data_mem + 8].copy_from_slice(&0x4000u64.to_le_bytes());
        assert_eq!(pack(&overlap), Err(PackError::Overlap));
    }

    #[test]
    fn an_aarch64_kernel_becomes_an_image_gz_with_its_size_in_the_header() {
        let mut text = vec![0u8; 64];
        text[..4].copy_from_slice(&[0x10, 0, 0, 0x14]);
        text[8..16].copy_from_slice(&0x200000u64.to_le_bytes());
        text[IMAGE_MAGIC_AT..IMAGE_MAGIC_AT + 4].copy_from_slice(b"ARM\x64");
        text.extend((0..3000u32).map(|i| (i % 251) as u8));
        let data = b"data".repeat(30);
        let mut elf = linked_image(&text, &data, b"");
        elf[0x12..0x14].copy_from_slice(&EM_AARCH64.to_le_bytes());
        let packed = pack(&elf).unwrap();

        let mut image = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut image)
            .unwrap();
        assert_eq!(image.len(), 0x3000 + data.len(), "up to the last file byte");
        assert_eq!(&image[..8], &text[..8]);
        assert_eq!(u64_at(&image, 8).unwrap(), 0x200000);
        // The kernel's span in memory: up to the stub-less last segment's end (the
        // empty third segment of the test image, at 0x206000).
        assert_eq!(u64_at(&image, IMAGE_SIZE_AT).unwrap(), 0x6000);
        assert_eq!(&image[64..text.len()], &text[64..]);
        assert_eq!(&image[0x3000..], &data[..]);
    }
}
