//! Registers for Linux's 64-bit boot entry: long mode with paging on, an
//! identity map of the first GiB, flat segments, and %rsi at the zero page.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::CpuError;
use crate::boot::BootEntry;
use crate::layout::{BOOT_GDT, BOOT_IDT, BOOT_STACK, PD, PDPT, PML4};

const CR0_PE: u64 = 1;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const PTE_PRESENT_RW: u64 = 0x3;
const PDE_LARGE: u64 = 0x80;

/// Flat GDT: null, 64-bit code, data, TSS (the layout Linux's boot code uses).
const GDT: [u64; 4] = [
    0,
    gdt_entry(0xa09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x808b, 0, 0xfffff),
];
const CODE_SELECTOR: u16 = 1 << 3;
const DATA_SELECTOR: u16 = 2 << 3;
const TSS_SELECTOR: u16 = 3 << 3;

const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((flags as u64 & 0x0000_f0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

/// Decodes a GDT descriptor into the form KVM takes for a segment register.
fn segment(entry: u64, selector: u16) -> kvm_segment {
    let flags = (entry >> 40) & 0xf0ff;
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let limit = (entry & 0xffff) | ((entry >> 32) & 0xf_0000);
    let granular = (flags >> 15) & 1 == 1;
    kvm_segment {
        base,
        limit: if granular {
            ((limit << 12) | 0xfff) as u32
        } else {
            limit as u32
        },
        selector,
        type_: (flags & 0xf) as u8,
        present: ((flags >> 7) & 1) as u8,
        dpl: ((flags >> 5) & 3) as u8,
        db: ((flags >> 14) & 1) as u8,
        s: ((flags >> 4) & 1) as u8,
        l: ((flags >> 13) & 1) as u8,
        g: granular as u8,
        avl: ((flags >> 12) & 1) as u8,
        unusable: (((flags >> 7) & 1) == 0) as u8,
        padding: 0,
    }
}

/// Writes the GDT, an empty IDT and the identity-map page tables.
pub fn write_boot_tables(mem: &GuestMemoryMmap) -> Result<(), CpuError> {
    for (i, entry) in GDT.iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(BOOT_GDT + 8 * i as u64))
            .map_err(CpuError::BootTables)?;
    }
    mem.write_obj(0u64, GuestAddress(BOOT_IDT))
        .map_err(CpuError::BootTables)?;
    mem.write_obj(PDPT | PTE_PRESENT_RW, GuestAddress(PML4))
        .map_err(CpuError::BootTables)?;
    mem.write_obj(PD | PTE_PRESENT_RW, GuestAddress(PDPT))
        .map_err(CpuError::BootTables)?;
    for i in 0..512u64 {
        let pde = (i << 21) | PDE_LARGE | PTE_PRESENT_RW;
        mem.write_obj(pde, GuestAddress(PD + 8 * i))
            .map_err(CpuError::BootTables)?;
    }
    Ok(())
}

/// Puts `vcpu` in long mode at the kernel's 64-bit entry.
pub fn setup_long_mode(vcpu: &VcpuFd, id: u8, entry: BootEntry) -> Result<(), CpuError> {
    let mut sregs: kvm_sregs = vcpu.get_sregs().map_err(|e| CpuError::Registers(id, e))?;
    let code = segment(GDT[1], CODE_SELECTOR);
    let data = segment(GDT[2], DATA_SELECTOR);
    sregs.gdt.base = BOOT_GDT;
    sregs.gdt.limit = (std::mem::size_of_val(&GDT) - 1) as u16;
    sregs.idt.base = BOOT_IDT;
    sregs.idt.limit = 7;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = segment(GDT[3], TSS_SELECTOR);
    sregs.cr0 |= CR0_PE | CR0_PG;
    sregs.cr3 = PML4;
    sregs.cr4 |= CR4_PAE;
    sregs.efer |= EFER_LME | EFER_LMA;
    vcpu.set_sregs(&sregs)
        .map_err(|e| CpuError::Registers(id, e))?;

    let regs = kvm_regs {
        rflags: 0x2,
        rip: entry.rip,
        rsp: BOOT_STACK,
        rbp: BOOT_STACK,
        rsi: entry.zero_page,
        ..Default::default()
    };
    vcpu.set_regs(&regs)
        .map_err(|e| CpuError::Registers(id, e))?;

    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(|e| CpuError::Registers(id, e))
}

const APIC_LVT_LINT0: usize = 0x350;
const APIC_LVT_LINT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

fn lapic_reg(regs: &mut [std::os::raw::c_char], offset: usize, f: impl Fn(u32) -> u32) {
    let bytes: [u8; 4] = std::array::from_fn(|i| regs[offset + i] as u8);
    let value = f(u32::from_le_bytes(bytes)).to_le_bytes();
    for (i, b) in value.iter().enumerate() {
        regs[offset + i] = *b as std::os::raw::c_char;
    }
}

/// Wires LINT0 to the legacy PIC (ExtINT) and LINT1 to NMI, as firmware does.
pub fn setup_lapic(vcpu: &VcpuFd, id: u8) -> Result<(), CpuError> {
    let mut lapic = vcpu.get_lapic().map_err(|e| CpuError::Lapic(id, e))?;
    let mode = |m: u32| move |v: u32| (v & !0x700) | (m << 8);
    lapic_reg(&mut lapic.regs, APIC_LVT_LINT0, mode(APIC_MODE_EXTINT));
    lapic_reg(&mut lapic.regs, APIC_LVT_LINT1, mode(APIC_MODE_NMI));
    vcpu.set_lapic(&lapic).map_err(|e| CpuError::Lapic(id, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_segment_is_64_bit_and_present() {
        let cs = segment(GDT[1], CODE_SELECTOR);
        assert_eq!((cs.l, cs.db, cs.present, cs.s), (1, 0, 1, 1));
        assert_eq!(cs.limit, 0xffff_ffff);
        assert_eq!(cs.type_, 0xb);
        let tss = segment(GDT[3], TSS_SELECTOR);
        assert_eq!((tss.s, tss.type_, tss.unusable), (0, 0xb, 0));
    }

    #[test]
    fn page_tables_identity_map_the_first_gib() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        write_boot_tables(&mem).unwrap();
        let pde: u64 = mem.read_obj(GuestAddress(PD + 8 * 511)).unwrap();
        assert_eq!(pde & !0xfff, 511 << 21);
        assert_ne!(pde & PDE_LARGE, 0);
    }
}
