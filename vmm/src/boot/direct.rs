//! In-monitor KASLR: vigil does the bzImage decompressor's job itself.
//!
//! The bzImage payload is the kernel ELF (`vmlinux.bin`) followed by its
//! relocation table. vigil decompresses it once (cached by image hash),
//! and at every boot picks a random physical base and virtual slide as
//! `arch/x86/boot/compressed/kaslr.c` would, copies the PT_LOAD segments
//! into guest memory, applies the relocations as `misc.c`'s
//! `handle_relocations` does, sets KASLR_FLAG, and enters `startup_64`.
//! The guest keeps KASLR, boot skips decompression (seconds in a nested
//! host), and the monitor knows the layout instead of guessing it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::{program_header, Header, ProgramHeader, SectionHeader};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// `__START_KERNEL_map`: where the kernel image is mapped virtually.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// `CONFIG_PHYSICAL_START` of x86_64 distribution kernels, which the ELF's
/// `p_paddr` values are linked against.
pub const LOAD_PHYSICAL_ADDR: u64 = 0x100_0000;
/// `KERNEL_IMAGE_SIZE` with KASLR: the virtual window the image may use.
const KERNEL_IMAGE_SIZE: u64 = 1 << 30;
/// The boot page tables identity-map the first GiB; the kernel must fit.
const IDENTITY_MAPPED: u64 = 1 << 30;
/// `loadflags` bit telling the kernel its virtual address was randomized.
pub const KASLR_FLAG: u8 = 1 << 1;

#[derive(Debug, thiserror::Error)]
pub enum DirectBootError {
    #[error("cannot read kernel payload {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kernel payload is not a usable x86_64 ELF: {0}")]
    Elf(String),
    #[error("kernel payload has no relocation table ({0})")]
    Relocs(String),
    #[error("relocation at {va:#x} lies outside the kernel image")]
    RelocOutOfRange { va: u64 },
    #[error("no room for the kernel ({size:#x} bytes) in guest memory below {limit:#x}")]
    NoRoom { size: u64, limit: u64 },
    #[error("cannot write the kernel to guest memory: {0}")]
    Memory(vm_memory::GuestMemoryError),
}

/// The relocation table appended to `vmlinux.bin`: kernel virtual
/// addresses (low 32 bits, sign-extended) of fields to adjust. Kept as one
/// vector of words with a range per kind: the table is about 1 MB, and
/// copies of it would show in vigil's peak memory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Relocations {
    words: Vec<u32>,
    abs32: std::ops::Range<usize>,
    inverse32: std::ops::Range<usize>,
    abs64: std::ops::Range<usize>,
}

impl Relocations {
    /// Parses the table `[0][64-bit..][0][inverse..][0][32-bit..]` (the
    /// inverse part only on kernels that have it, up to Linux 6.14: three
    /// zero terminators instead of two).
    pub fn parse(table: &[u8]) -> Result<Self, DirectBootError> {
        if !table.len().is_multiple_of(4) {
            return Err(DirectBootError::Relocs(format!(
                "table of {} bytes is not a whole number of entries",
                table.len()
            )));
        }
        Self::from_words(
            table
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }

    fn from_words(words: Vec<u32>) -> Result<Self, DirectBootError> {
        let zeros: Vec<usize> = words
            .iter()
            .enumerate()
            .filter(|(_, w)| **w == 0)
            .map(|(i, _)| i)
            .collect();
        if zeros.first() != Some(&0) {
            return Err(DirectBootError::Relocs("missing leading terminator".into()));
        }
        let end = words.len();
        let (abs64, inverse32, abs32) = match zeros[..] {
            [_, a, b] => (1..a, a + 1..b, b + 1..end),
            [_, a] => (1..a, a..a, a + 1..end),
            _ => {
                return Err(DirectBootError::Relocs(format!(
                    "{} terminators",
                    zeros.len()
                )))
            }
        };
        Ok(Relocations {
            words,
            abs32,
            inverse32,
            abs64,
        })
    }

    /// Reads the table from `file` at `offset` (to its end) in chunks.
    fn read(file: &File, offset: u64, len: u64) -> std::io::Result<Result<Self, DirectBootError>> {
        if !len.is_multiple_of(4) {
            return Ok(Err(DirectBootError::Relocs(format!(
                "table of {len} bytes is not a whole number of entries"
            ))));
        }
        let mut words = Vec::with_capacity((len / 4) as usize);
        let mut chunk = vec![0u8; 64 * 1024];
        let mut at = 0;
        while at < len {
            let n = chunk.len().min((len - at) as usize);
            file.read_exact_at(&mut chunk[..n], offset + at)?;
            words.extend(
                chunk[..n]
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            at += n as u64;
        }
        Ok(Self::from_words(words))
    }

    /// 32-bit absolute fields: add the slide.
    pub fn abs32(&self) -> &[u32] {
        &self.words[self.abs32.clone()]
    }

    /// 32-bit fields holding a negated address (per-CPU references):
    /// subtract the slide.
    pub fn inverse32(&self) -> &[u32] {
        &self.words[self.inverse32.clone()]
    }

    /// 64-bit absolute fields: add the slide.
    pub fn abs64(&self) -> &[u32] {
        &self.words[self.abs64.clone()]
    }
}

/// A decompressed payload on disk, ready to be loaded at any base.
pub struct KernelPayload {
    path: PathBuf,
    file: File,
    entry: u64,
    segments: Vec<ProgramHeader>,
    relocs: Relocations,
    /// Bytes from the physical start of the image to its last loaded byte.
    image_len: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DirectBootError + '_ {
    move |source| DirectBootError::Io {
        path: path.to_owned(),
        source,
    }
}

impl KernelPayload {
    /// Opens a decompressed `vmlinux.bin`+relocs file, reading only its
    /// headers and relocation table (segments are streamed at load time).
    pub fn open(path: &Path) -> Result<Self, DirectBootError> {
        let mut file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        let mut head = vec![0u8; 64];
        file.read_exact(&mut head).map_err(io_err(path))?;
        let header = goblin::elf::Elf::parse_header(&head)
            .map_err(|e| DirectBootError::Elf(e.to_string()))?;
        if header.e_machine != goblin::elf::header::EM_X86_64 {
            return Err(DirectBootError::Elf("not an x86_64 kernel".into()));
        }
        let ctx = Ctx::new(Container::Big, Endian::Little);
        let read_table = |file: &File, off: u64, count: u16, size: u16| {
            let mut buf = vec![0u8; usize::from(count) * usize::from(size)];
            file.read_exact_at(&mut buf, off).map(|_| buf)
        };
        let ph = read_table(&file, header.e_phoff, header.e_phnum, header.e_phentsize)
            .map_err(io_err(path))?;
        let segments = ProgramHeader::parse(&ph, 0, usize::from(header.e_phnum), ctx)
            .map_err(|e| DirectBootError::Elf(e.to_string()))?;
        let sh = read_table(&file, header.e_shoff, header.e_shnum, header.e_shentsize)
            .map_err(io_err(path))?;
        let sections = SectionHeader::parse(&sh, 0, usize::from(header.e_shnum), ctx)
            .map_err(|e| DirectBootError::Elf(e.to_string()))?;

        let elf_end = elf_end(&header, &segments, &sections);
        if elf_end >= len {
            return Err(DirectBootError::Relocs(
                "nothing follows the ELF image".into(),
            ));
        }
        let relocs = Relocations::read(&file, elf_end, len - elf_end).map_err(io_err(path))??;

        let loads: Vec<ProgramHeader> = segments
            .into_iter()
            .filter(|p| p.p_type == program_header::PT_LOAD)
            .collect();
        let image_len = loads
            .iter()
            .map(|p| p.p_paddr.saturating_add(p.p_memsz))
            .max()
            .and_then(|end| end.checked_sub(LOAD_PHYSICAL_ADDR))
            .ok_or_else(|| DirectBootError::Elf("no loadable segment above 16 MiB".into()))?;
        if loads
            .iter()
            .any(|p| p.p_paddr < LOAD_PHYSICAL_ADDR || p.p_filesz > p.p_memsz)
        {
            return Err(DirectBootError::Elf(
                "segment below the physical start".into(),
            ));
        }
        Ok(KernelPayload {
            path: path.to_owned(),
            file,
            entry: header.e_entry,
            segments: loads,
            relocs,
            image_len,
        })
    }

    pub fn relocations(&self) -> &Relocations {
        &self.relocs
    }

    /// Copies the segments to `phys_base` and relocates for `virt_base`
    /// (the kernel's `_text` will be at `START_KERNEL_MAP + virt_base`).
    /// Returns the physical entry point.
    pub fn load(
        &self,
        mem: &GuestMemoryMmap,
        phys_base: u64,
        virt_base: u64,
    ) -> Result<u64, DirectBootError> {
        for seg in &self.segments {
            let dest = phys_base + (seg.p_paddr - LOAD_PHYSICAL_ADDR);
            let mut src = &self.file;
            src.seek(SeekFrom::Start(seg.p_offset))
                .map_err(io_err(&self.path))?;
            mem.read_exact_volatile_from(GuestAddress(dest), &mut src, seg.p_filesz as usize)
                .map_err(DirectBootError::Memory)?;
        }
        let delta = virt_base.wrapping_sub(LOAD_PHYSICAL_ADDR);
        if delta != 0 {
            self.relocate(mem, phys_base, delta)?;
        }
        Ok(phys_base + (self.entry.wrapping_sub(LOAD_PHYSICAL_ADDR)))
    }

    fn relocate(
        &self,
        mem: &GuestMemoryMmap,
        phys_base: u64,
        delta: u64,
    ) -> Result<(), DirectBootError> {
        // One slice over the whole image: 200k+ fields are patched, and a
        // guest-memory lookup per access is measurable under emulation.
        let image = mem
            .get_slice(GuestAddress(phys_base), self.image_len as usize)
            .map_err(DirectBootError::Memory)?;
        let mem_err = |e: vm_memory::volatile_memory::Error| {
            DirectBootError::Memory(vm_memory::GuestMemoryError::from(e))
        };
        // Offset in the image of the field at link-time virtual address `va`.
        let locate = |reloc: u32, width: u64| {
            let va = reloc as i32 as i64 as u64;
            let offset = va.wrapping_sub(START_KERNEL_MAP + LOAD_PHYSICAL_ADDR);
            if offset
                .checked_add(width)
                .is_none_or(|end| end > self.image_len)
            {
                return Err(DirectBootError::RelocOutOfRange { va });
            }
            Ok(offset as usize)
        };
        for &r in self.relocs.abs32() {
            let at = locate(r, 4)?;
            let v: u32 = image.read_obj(at).map_err(mem_err)?;
            image
                .write_obj(v.wrapping_add(delta as u32), at)
                .map_err(mem_err)?;
        }
        for &r in self.relocs.inverse32() {
            let at = locate(r, 4)?;
            let v: u32 = image.read_obj(at).map_err(mem_err)?;
            image
                .write_obj(v.wrapping_sub(delta as u32), at)
                .map_err(mem_err)?;
        }
        for &r in self.relocs.abs64() {
            let at = locate(r, 8)?;
            let v: u64 = image.read_obj(at).map_err(mem_err)?;
            image
                .write_obj(v.wrapping_add(delta), at)
                .map_err(mem_err)?;
        }
        Ok(())
    }
}

/// The end of the ELF file proper: relocations start right after it.
fn elf_end(header: &Header, segments: &[ProgramHeader], sections: &[SectionHeader]) -> u64 {
    let tables = [
        header.e_phoff + u64::from(header.e_phnum) * u64::from(header.e_phentsize),
        header.e_shoff + u64::from(header.e_shnum) * u64::from(header.e_shentsize),
    ];
    let segment_ends = segments.iter().map(|p| p.p_offset + p.p_filesz);
    let section_ends = sections
        .iter()
        .filter(|s| s.sh_type != goblin::elf::section_header::SHT_NOBITS)
        .map(|s| s.sh_offset + s.sh_size);
    tables
        .into_iter()
        .chain(segment_ends)
        .chain(section_ends)
        .max()
        .unwrap_or(0)
}

/// A random value below `bound` from the host's CSPRNG.
fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return 0;
    }
    u64::from_le_bytes(bytes) % bound.max(1)
}

/// Where the kernel goes: physical base and virtual base (offset of
/// `_text` from `START_KERNEL_MAP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub phys_base: u64,
    pub virt_base: u64,
}

/// Chooses a placement like the decompressor's KASLR: a random aligned
/// physical base in `[LOAD_PHYSICAL_ADDR, phys_limit - init_size]`, and a
/// random aligned virtual base in the 1 GiB kernel image window.
pub fn choose_placement(
    init_size: u64,
    align: u64,
    phys_limit: u64,
    randomize: bool,
) -> Result<Placement, DirectBootError> {
    let align = align.max(2 << 20);
    let limit = phys_limit.min(IDENTITY_MAPPED);
    let no_room = DirectBootError::NoRoom {
        size: init_size,
        limit,
    };
    let top = limit
        .checked_sub(init_size)
        .filter(|t| *t >= LOAD_PHYSICAL_ADDR)
        .ok_or(no_room)?;
    let slots = |window: u64| 1 + window / align;
    let phys_slots = slots(top - LOAD_PHYSICAL_ADDR);
    let virt_slots = slots(KERNEL_IMAGE_SIZE.saturating_sub(LOAD_PHYSICAL_ADDR + init_size));
    let pick = |n: u64| if randomize { random_below(n) } else { 0 };
    Ok(Placement {
        phys_base: LOAD_PHYSICAL_ADDR + pick(phys_slots) * align,
        virt_base: LOAD_PHYSICAL_ADDR + pick(virt_slots) * align,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn parses_tables_with_and_without_inverse_relocations() {
        let with = Relocations::parse(&words(&[
            0,
            0x8100_0010,
            0,
            0x8100_0020,
            0,
            0x8100_0030,
            0x8100_0040,
        ]))
        .unwrap();
        assert_eq!(with.abs64(), [0x8100_0010]);
        assert_eq!(with.inverse32(), [0x8100_0020]);
        assert_eq!(with.abs32(), [0x8100_0030, 0x8100_0040]);
        let without = Relocations::parse(&words(&[0, 0x8100_0010, 0, 0x8100_0030])).unwrap();
        assert!(without.inverse32().is_empty());
        assert_eq!(without.abs32(), [0x8100_0030]);
    }

    #[test]
    fn rejects_malformed_tables() {
        assert!(Relocations::parse(&[1, 2, 3]).is_err());
        assert!(Relocations::parse(&words(&[5, 0, 6])).is_err());
        assert!(Relocations::parse(&words(&[0, 1, 0, 2, 0, 3, 0, 4])).is_err());
    }

    #[test]
    fn placements_are_aligned_and_inside_their_windows() {
        let init_size = 0x3f9_8000;
        for _ in 0..200 {
            let p = choose_placement(init_size, 2 << 20, 256 << 20, true).unwrap();
            assert_eq!(p.phys_base % (2 << 20), 0);
            assert_eq!(p.virt_base % (2 << 20), 0);
            assert!(p.phys_base >= LOAD_PHYSICAL_ADDR && p.phys_base + init_size <= 256 << 20);
            assert!(
                p.virt_base >= LOAD_PHYSICAL_ADDR && p.virt_base + init_size <= KERNEL_IMAGE_SIZE
            );
        }
        let fixed = choose_placement(init_size, 2 << 20, 256 << 20, false).unwrap();
        assert_eq!(
            fixed,
            Placement {
                phys_base: LOAD_PHYSICAL_ADDR,
                virt_base: LOAD_PHYSICAL_ADDR
            }
        );
        assert!(choose_placement(init_size, 2 << 20, 64 << 20, true).is_err());
    }
}
