//! x86-64 page-table walk (4- and 5-level, 2 MiB and 1 GiB pages), done in
//! software over guest physical memory so no guest cooperation is needed.

use super::view::GuestMemory;
use crate::error::GuestError;
use serde::{Deserialize, Serialize};

const PRESENT: u64 = 1;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const NX: u64 = 1 << 63;
/// Physical address bits 51:12 of an entry.
const ADDR: u64 = 0x000f_ffff_ffff_f000;

pub const CR0_PG: u64 = 1 << 31;
pub const CR0_WP: u64 = 1 << 16;
pub const CR4_PAE: u64 = 1 << 5;
pub const CR4_LA57: u64 = 1 << 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Levels {
    Four,
    Five,
}

impl Levels {
    pub fn from_cr4(cr4: u64) -> Self {
        if cr4 & CR4_LA57 != 0 {
            Levels::Five
        } else {
            Levels::Four
        }
    }
    fn count(self) -> u8 {
        match self {
            Levels::Four => 4,
            Levels::Five => 5,
        }
    }
}

/// Where a virtual address lands and with what effective permissions
/// (RW and US are ANDed over all levels, NX is ORed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    pub pa: u64,
    pub page_size: u64,
    pub writable: bool,
    pub user: bool,
    pub nx: bool,
}

/// An address space: a CR3 and its paging mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpace {
    pub cr3: u64,
    pub levels: Levels,
}

impl AddressSpace {
    pub fn new(cr3: u64, cr4: u64) -> Self {
        Self {
            cr3,
            levels: Levels::from_cr4(cr4),
        }
    }

    fn canonical(&self, va: u64) -> bool {
        let bits = match self.levels {
            Levels::Four => 48,
            Levels::Five => 57,
        };
        let top = (va as i64) >> (bits - 1);
        top == 0 || top == -1
    }

    pub fn translate(
        &self,
        mem: &(impl GuestMemory + ?Sized),
        va: u64,
    ) -> Result<Translation, GuestError> {
        if !self.canonical(va) {
            return Err(GuestError::NonCanonical(va));
        }
        let mut table = self.cr3 & ADDR;
        let (mut writable, mut user, mut nx) = (true, true, false);
        let n = self.levels.count();
        for level in (1..=n).rev() {
            let shift = 12 + 9 * (u32::from(level) - 1);
            let idx = (va >> shift) & 0x1ff;
            let entry = mem.read_phys_u64(table + idx * 8)?;
            if entry & PRESENT == 0 {
                return Err(GuestError::NotMapped { va, level, entry });
            }
            writable &= entry & RW != 0;
            user &= entry & US != 0;
            nx |= entry & NX != 0;
            // PS at PDPT (level 3, 1 GiB) or PD (level 2, 2 MiB) is a leaf.
            if level == 1 || ((level == 2 || level == 3) && entry & PS != 0) {
                let page_size = 1u64 << shift;
                let base = entry & ADDR & !(page_size - 1);
                return Ok(Translation {
                    pa: base | (va & (page_size - 1)),
                    page_size,
                    writable,
                    user,
                    nx,
                });
            }
            table = entry & ADDR;
        }
        Err(GuestError::NotMapped {
            va,
            level: 0,
            entry: 0,
        })
    }

    /// Read `buf.len()` bytes at virtual `va`, page by page.
    pub fn read_virt(
        &self,
        mem: &(impl GuestMemory + ?Sized),
        va: u64,
        buf: &mut [u8],
    ) -> Result<(), GuestError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va.wrapping_add(done as u64);
            let t = self.translate(mem, cur)?;
            let room = (t.page_size - (cur & (t.page_size - 1))) as usize;
            let n = room.min(buf.len() - done);
            mem.read_phys(t.pa, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    pub fn read_u64(&self, mem: &(impl GuestMemory + ?Sized), va: u64) -> Result<u64, GuestError> {
        let mut b = [0u8; 8];
        self.read_virt(mem, va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_u32(&self, mem: &(impl GuestMemory + ?Sized), va: u64) -> Result<u32, GuestError> {
        let mut b = [0u8; 4];
        self.read_virt(mem, va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::guest::view::FlatGuest;

    /// Builds page tables in a flat buffer: `alloc` hands out zeroed pages.
    pub struct PtBuilder {
        pub g: FlatGuest,
        next: u64,
        pub levels: Levels,
        pub root: u64,
    }

    impl PtBuilder {
        pub fn new(size: usize, levels: Levels) -> Self {
            let mut b = Self {
                g: FlatGuest {
                    base: 0,
                    mem: vec![0; size],
                    vcpus: vec![],
                },
                next: 0x1000,
                levels,
                root: 0,
            };
            b.root = b.alloc();
            b
        }
        pub fn alloc(&mut self) -> u64 {
            let p = self.next;
            self.next += 0x1000;
            p
        }
        fn get(&self, pa: u64) -> u64 {
            self.g.read_phys_u64(pa).unwrap()
        }
        fn set(&mut self, pa: u64, v: u64) {
            self.g.mem[pa as usize..pa as usize + 8].copy_from_slice(&v.to_le_bytes());
        }
        /// Map `va` to `pa` with a page of `size` (4K/2M/1G) and leaf flags.
        pub fn map(&mut self, va: u64, pa: u64, size: u64, flags: u64) {
            let leaf_level = match size {
                0x1000 => 1,
                0x20_0000 => 2,
                0x4000_0000 => 3,
                _ => panic!("bad size"),
            };
            let mut table = self.root;
            for level in (leaf_level..=self.levels.count()).rev() {
                let shift = 12 + 9 * (u32::from(level) - 1);
                let slot = table + ((va >> shift) & 0x1ff) * 8;
                if level == leaf_level {
                    let ps = if level > 1 { PS } else { 0 };
                    self.set(slot, pa | flags | ps | PRESENT);
                    return;
                }
                let e = self.get(slot);
                table = if e & PRESENT != 0 {
                    e & ADDR
                } else {
                    let t = self.alloc();
                    // Intermediate entries permissive; the leaf decides.
                    self.set(slot, t | PRESENT | RW | US);
                    t
                };
            }
        }
        pub fn space(&self) -> AddressSpace {
            AddressSpace {
                cr3: self.root,
                levels: self.levels,
            }
        }
    }

    #[test]
    fn four_level_all_page_sizes() {
        let mut b = PtBuilder::new(0x40_0000, Levels::Four);
        let k = 0xffff_ffff_8100_0000u64;
        b.map(k, 0x20_0000, 0x20_0000, 0); // 2 MiB, read-only, exec
        b.map(0x7000_1000, 0x3f_f000, 0x1000, RW | US | NX);
        b.map(0xffff_8880_0000_0000, 0x4000_0000, 0x4000_0000, RW | NX);
        let s = b.space();
        let t = s.translate(&b.g, k + 0x1234).unwrap();
        assert_eq!(
            (t.pa, t.page_size, t.writable, t.user, t.nx),
            (0x20_1234, 0x20_0000, false, false, false)
        );
        let t = s.translate(&b.g, 0x7000_1008).unwrap();
        assert_eq!(t.pa, 0x3f_f008);
        assert!(t.writable && t.user && t.nx);
        let t = s.translate(&b.g, 0xffff_8880_1234_5678).unwrap();
        assert_eq!(
            (t.pa, t.page_size, t.writable, t.nx),
            (0x5234_5678, 0x4000_0000, true, true)
        );
        assert!(matches!(
            s.translate(&b.g, 0x7000_3000),
            Err(GuestError::NotMapped { .. })
        ));
        assert!(matches!(
            s.translate(&b.g, 0x0000_8000_0000_0000),
            Err(GuestError::NonCanonical(_))
        ));
    }

    #[test]
    fn five_level_and_cross_page_reads() {
        let mut b = PtBuilder::new(0x40_0000, Levels::Five);
        // 57-bit kernel address, needs a PML5 entry.
        let va = 0xff11_0000_0000_0000u64;
        b.map(va, 0x30_0000, 0x1000, RW);
        b.map(va + 0x1000, 0x10_0000, 0x1000, RW);
        for i in 0..0x2000u64 {
            let pa = if i < 0x1000 {
                0x30_0000 + i
            } else {
                0x10_0000 + i - 0x1000
            };
            b.g.mem[pa as usize] = (i % 251) as u8;
        }
        let s = b.space();
        assert_eq!(s.translate(&b.g, va + 5).unwrap().pa, 0x30_0005);
        let mut buf = [0u8; 32];
        s.read_virt(&b.g, va + 0xff0, &mut buf).unwrap();
        let want: Vec<u8> = (0xff0u64..0x1010).map(|i| (i % 251) as u8).collect();
        assert_eq!(&buf[..], &want[..]);
        // 4-level view of the same CR3 rejects the 57-bit address.
        let four = AddressSpace {
            cr3: s.cr3,
            levels: Levels::Four,
        };
        assert!(four.translate(&b.g, va).is_err());
    }

    #[test]
    fn entry_pointing_outside_memory_is_an_error() {
        let mut b = PtBuilder::new(0x10_0000, Levels::Four);
        b.map(0x1000, 0x2000, 0x1000, RW);
        // Corrupt the PML4 entry to point far outside guest memory.
        let root = b.root;
        b.set(root, 0x7fff_0000_0000 | PRESENT);
        assert!(matches!(
            b.space().translate(&b.g, 0x1000),
            Err(GuestError::NoMemory(..))
        ));
    }
}
