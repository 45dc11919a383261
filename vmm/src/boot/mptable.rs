//! Intel MultiProcessor Specification 1.4 tables, which tell a Linux guest
//! booted without ACPI how many CPUs it has and how ISA interrupts reach the
//! IOAPIC. Built byte by byte: the format is tiny and fixed.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::layout::{IOAPIC_BASE, LAPIC_BASE, MPTABLE};

/// Number of IOAPIC pins the in-kernel irqchip provides.
const IOAPIC_PINS: u8 = 24;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
/// Family 6 stepping, and the FPU and APIC feature flags, as a BIOS reports.
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = 0x201;

const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;

/// Most CPUs whose entries fit, with the rest of the table, in the 1 KiB
/// between [`MPTABLE`] and the end of base memory (Firecracker's limit too).
pub const MAX_CPUS: u8 = 32;

#[derive(Debug, thiserror::Error)]
pub enum MpTableError {
    #[error("MP table supports 1 to {MAX_CPUS} vCPUs, not {0}")]
    CpuCount(u8),
    #[error("cannot write MP table to guest memory: {0}")]
    Write(vm_memory::GuestMemoryError),
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b)))
}

/// The IOAPIC's ID: one past the last CPU's APIC ID.
pub fn ioapic_id(num_cpus: u8) -> u8 {
    num_cpus + 1
}

/// Builds the MP configuration table (header and entries) for `num_cpus`.
fn config_table(num_cpus: u8) -> Vec<u8> {
    let ioapic = ioapic_id(num_cpus);
    let mut entries = Vec::new();
    let mut count: u16 = 0;
    for cpu in 0..num_cpus {
        let flags = 1 | if cpu == 0 { 2 } else { 0 }; // enabled, bootstrap
        entries.extend_from_slice(&[ENTRY_PROCESSOR, cpu, APIC_VERSION, flags]);
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, 0]);
    entries.extend_from_slice(b"ISA   ");
    count += 1;
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&(IOAPIC_BASE as u32).to_le_bytes());
    count += 1;
    for pin in 0..IOAPIC_PINS {
        entries.extend_from_slice(&[ENTRY_IO_INTERRUPT, INT_TYPE_INT, 0, 0, 0, pin, ioapic, pin]);
        count += 1;
    }
    // LINT0 takes the legacy PIC's ExtINT; LINT1 is NMI on every CPU.
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INT_TYPE_EXTINT, 0, 0, 0, 0, 0, 0]);
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INT_TYPE_NMI, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let length = 44 + entries.len();
    let mut table = Vec::with_capacity(length);
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&(length as u16).to_le_bytes());
    table.push(4); // spec revision 1.4
    table.push(0); // checksum, patched below
    table.extend_from_slice(b"VIGIL   ");
    table.extend_from_slice(b"KVM GUEST   ");
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    table.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&(LAPIC_BASE as u32).to_le_bytes());
    table.extend_from_slice(&0u32.to_le_bytes()); // extended length + checksum
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);
    table
}

/// Builds the 16-byte floating pointer structure that points at the table.
fn floating_pointer(table_addr: u32) -> [u8; 16] {
    let mut fp = [0u8; 16];
    fp[0..4].copy_from_slice(b"_MP_");
    fp[4..8].copy_from_slice(&table_addr.to_le_bytes());
    fp[8] = 1; // length in 16-byte units
    fp[9] = 4; // spec revision 1.4
    fp[10] = checksum(&fp);
    fp
}

/// Writes the floating pointer and configuration table at [`MPTABLE`].
/// Returns the number of bytes used.
pub fn write(mem: &GuestMemoryMmap, num_cpus: u8) -> Result<u64, MpTableError> {
    if num_cpus == 0 || num_cpus > MAX_CPUS {
        return Err(MpTableError::CpuCount(num_cpus));
    }
    let table_addr = MPTABLE + 16;
    let fp = floating_pointer(table_addr as u32);
    let table = config_table(num_cpus);
    mem.write_slice(&fp, GuestAddress(MPTABLE))
        .map_err(MpTableError::Write)?;
    mem.write_slice(&table, GuestAddress(table_addr))
        .map_err(MpTableError::Write)?;
    Ok(16 + table.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    #[test]
    fn tables_checksum_to_zero_and_fit_below_ebda_end() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        for cpus in [1u8, 2, 8, MAX_CPUS] {
            let len = write(&mem, cpus).unwrap();
            assert!(
                MPTABLE + len <= crate::layout::EBDA_END,
                "{cpus} cpus overflow"
            );
            let mut fp = [0u8; 16];
            mem.read_slice(&mut fp, GuestAddress(MPTABLE)).unwrap();
            assert_eq!(sum(&fp), 0);
            let table = config_table(cpus);
            assert_eq!(sum(&table), 0);
            let count = u16::from_le_bytes([table[34], table[35]]);
            assert_eq!(count as usize, cpus as usize + 1 + 1 + 24 + 2);
        }
    }

    #[test]
    fn rejects_bad_cpu_counts() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        assert!(write(&mem, 0).is_err());
        assert!(write(&mem, MAX_CPUS + 1).is_err());
    }
}
