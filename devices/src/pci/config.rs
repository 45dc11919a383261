//! Type 0 configuration space with write masks, BAR sizing and a
//! capability list.

use super::bar::{BarInfo, BarKind, BarReprogram};
use super::capability::Capability;
use super::PciError;

const NUM_REGS: usize = 64;
const BAR0_REG: usize = 4;
const NUM_BARS: usize = 6;
const CAP_START: usize = 0x40;
const STATUS_CAP_LIST: u32 = 1 << 20;
const ROM_BAR_REG: usize = 12;

/// 256-byte configuration space of one function.
#[derive(Debug, Clone)]
pub struct PciConfiguration {
    regs: [u32; NUM_REGS],
    wmask: [u32; NUM_REGS],
    bars: [Option<BarInfo>; NUM_BARS],
    last_cap: Option<usize>,
    next_cap: usize,
    /// Base last reported to the VMM, to turn register writes into moves.
    reported: [u64; NUM_BARS],
}

/// Identity of a function written into its header.
#[derive(Debug, Clone, Copy)]
pub struct PciIds {
    pub vendor: u16,
    pub device: u16,
    pub revision: u8,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    pub subsystem_vendor: u16,
    pub subsystem_id: u16,
    /// 0 for a normal function; bridges set 0x00 too (host bridge type 0).
    pub header_type: u8,
}

impl PciConfiguration {
    pub fn new(ids: PciIds) -> Self {
        let mut regs = [0u32; NUM_REGS];
        let mut wmask = [0u32; NUM_REGS];
        regs[0] = u32::from(ids.device) << 16 | u32::from(ids.vendor);
        regs[2] = u32::from(ids.class) << 24
            | u32::from(ids.subclass) << 16
            | u32::from(ids.prog_if) << 8
            | u32::from(ids.revision);
        regs[3] = u32::from(ids.header_type) << 16;
        regs[11] = u32::from(ids.subsystem_id) << 16 | u32::from(ids.subsystem_vendor);
        // Command: I/O, memory, bus master, INTx disable are writable.
        wmask[1] = 0x0000_0407;
        // Interrupt line is scratch for the OS.
        wmask[15] = 0x0000_00ff;
        // Interrupt pin INTA so legacy drivers find a pin.
        regs[15] = 1 << 8;
        Self {
            regs,
            wmask,
            bars: [None; NUM_BARS],
            last_cap: None,
            next_cap: CAP_START,
            reported: [0; NUM_BARS],
        }
    }

    /// Declare a memory BAR of `size` bytes (power of two, >= 16).
    pub fn add_bar(
        &mut self,
        bar: usize,
        kind: BarKind,
        size: u64,
        prefetchable: bool,
    ) -> Result<(), PciError> {
        let slots = if kind == BarKind::Mmio64 { 2 } else { 1 };
        if bar + slots > NUM_BARS || self.bars[bar..bar + slots].iter().any(Option::is_some) {
            return Err(PciError::BarInUse(bar));
        }
        let min = if kind == BarKind::Io { 4 } else { 16 };
        if !size.is_power_of_two() || size < min || (kind != BarKind::Mmio64 && size > 1 << 31) {
            return Err(PciError::BarSize(size));
        }
        let mask = !(size - 1);
        let reg = BAR0_REG + bar;
        match kind {
            BarKind::Io => {
                self.regs[reg] = 1;
                self.wmask[reg] = mask as u32 & !0x3;
            }
            BarKind::Mmio32 => {
                self.regs[reg] = if prefetchable { 0x8 } else { 0 };
                self.wmask[reg] = mask as u32 & !0xf;
            }
            BarKind::Mmio64 => {
                self.regs[reg] = 0x4 | if prefetchable { 0x8 } else { 0 };
                self.wmask[reg] = mask as u32 & !0xf;
                self.wmask[reg + 1] = (mask >> 32) as u32;
            }
        }
        self.bars[bar] = Some(BarInfo {
            kind,
            size,
            prefetchable,
        });
        Ok(())
    }

    /// Pre-assign a BAR address (as firmware would).
    pub fn set_bar_addr(&mut self, bar: usize, addr: u64) {
        let Some(info) = self.bars.get(bar).copied().flatten() else {
            return;
        };
        let reg = BAR0_REG + bar;
        let flags = self.regs[reg] & if info.kind == BarKind::Io { 0x3 } else { 0xf };
        self.regs[reg] = (addr as u32 & self.wmask[reg]) | flags;
        if info.kind == BarKind::Mmio64 {
            self.regs[reg + 1] = (addr >> 32) as u32;
        }
        self.reported[bar] = self.bar_addr(bar);
    }

    /// Current guest-visible base address of a BAR (0 if unassigned).
    pub fn bar_addr(&self, bar: usize) -> u64 {
        let Some(info) = self.bars.get(bar).copied().flatten() else {
            return 0;
        };
        let reg = BAR0_REG + bar;
        match info.kind {
            BarKind::Io => u64::from(self.regs[reg] & !0x3),
            BarKind::Mmio32 => u64::from(self.regs[reg] & !0xf),
            BarKind::Mmio64 => {
                u64::from(self.regs[reg] & !0xf) | u64::from(self.regs[reg + 1]) << 32
            }
        }
    }

    pub fn bar_info(&self, bar: usize) -> Option<BarInfo> {
        self.bars.get(bar).copied().flatten()
    }

    /// Legacy interrupt line the OS reads from 0x3C (firmware's job).
    pub fn set_irq_line(&mut self, line: u8) {
        self.regs[15] = (self.regs[15] & !0xff) | u32::from(line);
    }

    /// Whether the command register enables memory decoding.
    pub fn memory_enabled(&self) -> bool {
        self.regs[1] & 0x2 != 0
    }

    /// Append a capability; returns its offset in config space.
    pub fn add_capability(&mut self, cap: &Capability) -> Result<usize, PciError> {
        let len = cap.len().next_multiple_of(4);
        let off = self.next_cap;
        if off + len > NUM_REGS * 4 || cap.writable.len() != cap.body.len() {
            return Err(PciError::CapabilitySpace(cap.len()));
        }
        self.set_byte(off, cap.id);
        self.set_byte(off + 1, 0);
        for (i, (b, w)) in cap.body.iter().zip(&cap.writable).enumerate() {
            self.set_byte(off + 2 + i, *b);
            self.set_wmask_byte(off + 2 + i, *w);
        }
        match self.last_cap {
            Some(prev) => self.set_byte(prev + 1, off as u8),
            None => {
                self.set_byte(0x34, off as u8);
                self.regs[1] |= STATUS_CAP_LIST;
            }
        }
        self.last_cap = Some(off);
        self.next_cap = off + len;
        Ok(off)
    }

    fn set_byte(&mut self, off: usize, v: u8) {
        let shift = (off % 4) * 8;
        let r = &mut self.regs[off / 4];
        *r = (*r & !(0xff << shift)) | u32::from(v) << shift;
    }

    fn set_wmask_byte(&mut self, off: usize, v: u8) {
        let shift = (off % 4) * 8;
        let r = &mut self.wmask[off / 4];
        *r = (*r & !(0xff << shift)) | u32::from(v) << shift;
    }

    /// Raw dword at a register index (0..64); out of range reads all-ones.
    pub fn read_reg(&self, reg: usize) -> u32 {
        self.regs.get(reg).copied().unwrap_or(0xffff_ffff)
    }

    /// Bytes read at `offset` (1, 2 or 4 bytes, within one dword).
    pub fn read(&self, offset: usize, data: &mut [u8]) {
        let v = self.read_reg(offset / 4).to_le_bytes();
        let start = offset % 4;
        for (i, d) in data.iter_mut().enumerate() {
            *d = v.get(start + i).copied().unwrap_or(0xff);
        }
    }

    /// Guest write at `offset`; only bits in the write mask change. Returns
    /// a BAR move if the write changed a BAR's address.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Option<BarReprogram> {
        let reg = offset / 4;
        let start = offset % 4;
        if reg >= NUM_REGS || start + data.len() > 4 || reg == ROM_BAR_REG {
            return None;
        }
        let bar = reg.checked_sub(BAR0_REG).filter(|b| *b < NUM_BARS);
        // A 64-bit BAR's high half belongs to the BAR below it.
        let owner = bar.and_then(|b| {
            if self.bars[b].is_some() {
                Some(b)
            } else if b > 0
                && matches!(
                    self.bars[b - 1],
                    Some(BarInfo {
                        kind: BarKind::Mmio64,
                        ..
                    })
                )
            {
                Some(b - 1)
            } else {
                None
            }
        });
        let mut bytes = self.regs[reg].to_le_bytes();
        let mask = self.wmask[reg].to_le_bytes();
        for (i, d) in data.iter().enumerate() {
            let p = start + i;
            bytes[p] = (bytes[p] & !mask[p]) | (d & mask[p]);
        }
        self.regs[reg] = u32::from_le_bytes(bytes);
        let b = owner?;
        // While either half holds the sizing pattern the BAR is not decoded
        // at a real address; report a move only once it settles.
        if self.bar_sizing(b) {
            return None;
        }
        let new_base = self.bar_addr(b);
        let old_base = self.reported[b];
        if new_base == old_base {
            return None;
        }
        self.reported[b] = new_base;
        let len = self.bars[b]?.size;
        Some(BarReprogram {
            bar: b,
            old_base,
            new_base,
            len,
        })
    }

    fn bar_sizing(&self, bar: usize) -> bool {
        let reg = BAR0_REG + bar;
        let lo = self.regs[reg] & self.wmask[reg] == self.wmask[reg];
        let hi = matches!(
            self.bars[bar],
            Some(BarInfo {
                kind: BarKind::Mmio64,
                ..
            })
        ) && self.regs[reg + 1] == self.wmask[reg + 1]
            && self.wmask[reg + 1] != 0;
        lo || hi
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> PciIds {
        PciIds {
            vendor: 0x1af4,
            device: 0x1044,
            revision: 1,
            class: 0xff,
            subclass: 0,
            prog_if: 0,
            subsystem_vendor: 0x1af4,
            subsystem_id: 0x40,
            header_type: 0,
        }
    }

    fn rd32(c: &PciConfiguration, off: usize) -> u32 {
        let mut b = [0u8; 4];
        c.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn bar_sizing_64bit() {
        let mut c = PciConfiguration::new(ids());
        c.add_bar(0, BarKind::Mmio64, 0x1_0000, false).unwrap();
        assert_eq!(c.write(0x10, &0xffff_ffffu32.to_le_bytes()), None);
        assert_eq!(c.write(0x14, &0xffff_ffffu32.to_le_bytes()), None);
        assert_eq!(rd32(&c, 0x10), 0xffff_0004);
        assert_eq!(rd32(&c, 0x14), 0xffff_ffff);
        // Guest assigns an address: the high half completes the move.
        // Restoring the original (unassigned) value is not a move.
        assert_eq!(c.write(0x10, &0u32.to_le_bytes()), None);
        assert_eq!(c.write(0x14, &0u32.to_le_bytes()), None);
        assert_eq!(
            c.write(0x14, &1u32.to_le_bytes()).unwrap().new_base,
            1 << 32
        );
        c.write(0x14, &0u32.to_le_bytes());
        let mv = c.write(0x10, &0xc000_0000u32.to_le_bytes()).unwrap();
        assert_eq!(mv.new_base, 0xc000_0000);
        assert_eq!(mv.len, 0x1_0000);
        assert_eq!(c.bar_addr(0), 0xc000_0000);
    }

    #[test]
    fn bar_sizing_32bit_and_unused_bars_read_zero() {
        let mut c = PciConfiguration::new(ids());
        c.add_bar(2, BarKind::Mmio32, 0x1000, false).unwrap();
        c.write(0x18, &[0xff; 4]);
        assert_eq!(rd32(&c, 0x18), 0xffff_f000);
        c.write(0x1c, &[0xff; 4]);
        assert_eq!(rd32(&c, 0x1c), 0);
        assert_eq!(
            c.add_bar(2, BarKind::Mmio32, 0x1000, false),
            Err(PciError::BarInUse(2))
        );
        assert_eq!(
            c.add_bar(5, BarKind::Mmio64, 0x1000, false),
            Err(PciError::BarInUse(5))
        );
    }

    #[test]
    fn ids_are_read_only_and_caps_chain() {
        let mut c = PciConfiguration::new(ids());
        c.write(0, &[0; 4]);
        assert_eq!(rd32(&c, 0), 0x1044_1af4);
        let a = c
            .add_capability(&Capability::read_only(0x09, vec![0; 14]))
            .unwrap();
        let b = c
            .add_capability(&Capability::read_only(0x11, vec![0; 10]))
            .unwrap();
        assert_eq!(a, 0x40);
        assert_eq!(b, 0x50);
        let mut p = [0u8];
        c.read(0x34, &mut p);
        assert_eq!(p[0], 0x40);
        c.read(0x41, &mut p);
        assert_eq!(p[0], 0x50);
        c.read(0x51, &mut p);
        assert_eq!(p[0], 0);
        assert_ne!(rd32(&c, 4) & STATUS_CAP_LIST, 0);
    }
}
