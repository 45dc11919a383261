//! Guest physical memory layout for an x86_64 Linux guest.
//!
//! The low megabyte follows the PC conventions Linux expects (zero page,
//! command line, MP table in the last KiB of base memory); RAM above 1 MiB is
//! split around a 1 GiB hole below 4 GiB that holds the LAPIC, IOAPIC and
//! 32-bit PCI BARs.

/// Global descriptor table used for the 64-bit entry.
pub const BOOT_GDT: u64 = 0x500;
/// Empty interrupt descriptor table loaded before the kernel sets its own.
pub const BOOT_IDT: u64 = 0x520;
/// Linux `struct boot_params` ("zero page").
pub const ZERO_PAGE: u64 = 0x7000;
/// Stack the kernel's 64-bit entry may use before it sets up its own.
pub const BOOT_STACK: u64 = 0x8ff0;
/// Identity-map page tables: PML4, PDPT and one page directory (1 GiB).
pub const PML4: u64 = 0x9000;
pub const PDPT: u64 = 0xa000;
pub const PD: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE: u64 = 0x20000;
/// Start of the last KiB of base memory, where Linux looks for an MP table.
pub const MPTABLE: u64 = 0x9fc00;
/// End of conventional memory; the VGA hole and BIOS area follow.
pub const EBDA_END: u64 = 0xa0000;
/// Where protected-mode kernel code is loaded (bzImage `code32_start`).
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the hole below 4 GiB reserved for MMIO.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// First address above 4 GiB; RAM beyond the hole continues here.
pub const HIGH_RAM_START: u64 = 0x1_0000_0000;
/// Local APIC and IOAPIC MMIO bases (architectural defaults).
pub const LAPIC_BASE: u64 = 0xfee0_0000;
pub const IOAPIC_BASE: u64 = 0xfec0_0000;
/// Address KVM uses for its three-page TSS on Intel; inside the MMIO hole.
pub const KVM_TSS: u64 = 0xfffb_d000;

/// Guest RAM regions `(start, size)` for `mem_size` bytes of memory.
pub fn ram_regions(mem_size: u64) -> Vec<(u64, u64)> {
    if mem_size <= MMIO_HOLE_START {
        vec![(0, mem_size)]
    } else {
        vec![
            (0, MMIO_HOLE_START),
            (HIGH_RAM_START, mem_size - MMIO_HOLE_START),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_memory_is_one_region() {
        assert_eq!(ram_regions(256 << 20), vec![(0, 256 << 20)]);
    }

    #[test]
    fn large_memory_skips_the_mmio_hole() {
        let regions = ram_regions(4 << 30);
        assert_eq!(regions, vec![(0, 3 << 30), (4 << 30, 1 << 30)]);
        assert_eq!(regions.iter().map(|r| r.1).sum::<u64>(), 4 << 30);
    }
}
