//! The BIOS e820 memory map handed to Linux in `boot_params`.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params};

use crate::layout::{self, EBDA_END, HIMEM_START, MPTABLE};

pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

#[derive(Debug, thiserror::Error)]
#[error("e820 table is full ({0} entries)")]
pub struct E820Full(usize);

fn push(params: &mut boot_params, addr: u64, size: u64, type_: u32) -> Result<(), E820Full> {
    let n = params.e820_entries as usize;
    let slot = params.e820_table.get_mut(n).ok_or(E820Full(n))?;
    *slot = boot_e820_entry {
        addr,
        size,
        r#type: type_,
    };
    params.e820_entries += 1;
    Ok(())
}

/// Describes `mem_size` bytes of RAM: base memory up to the MP table, the MP
/// table itself as reserved, and everything from 1 MiB on (around the MMIO
/// hole). The VGA hole and BIOS area are left out, as on real hardware.
pub fn fill(params: &mut boot_params, mem_size: u64) -> Result<(), E820Full> {
    push(params, 0, MPTABLE, E820_RAM)?;
    push(params, MPTABLE, EBDA_END - MPTABLE, E820_RESERVED)?;
    for (start, size) in layout::ram_regions(mem_size) {
        let (start, size) = if start == 0 {
            (HIMEM_START, size - HIMEM_START)
        } else {
            (start, size)
        };
        push(params, start, size, E820_RAM)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_covers_ram_and_reserves_the_mp_table() {
        let mut params = boot_params::default();
        fill(&mut params, 5 << 30).unwrap();
        let entries = &params.e820_table[..params.e820_entries as usize];
        let ram: u64 = entries
            .iter()
            .filter(|e| e.r#type == E820_RAM)
            .map(|e| e.size)
            .sum();
        assert_eq!(ram, (5 << 30) - (HIMEM_START - MPTABLE));
        assert!(entries
            .iter()
            .any(|e| e.r#type == E820_RESERVED && e.addr == MPTABLE));
        assert!(entries.iter().any(|e| e.addr == layout::HIGH_RAM_START));
    }
}
