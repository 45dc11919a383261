//! BAR kinds, reprogramming notices and a small MMIO window allocator.

use super::PciError;

/// Kind of a base address register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// 32-bit memory BAR.
    Mmio32,
    /// 64-bit memory BAR; occupies this slot and the next.
    Mmio64,
    /// I/O port BAR.
    Io,
}

/// One BAR as the device declared it and as the guest programmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarInfo {
    pub kind: BarKind,
    pub size: u64,
    pub prefetchable: bool,
}

/// Told to the VMM when the guest moves a BAR, so it can move the MMIO range
/// (and any ioeventfds inside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarReprogram {
    pub bar: usize,
    pub old_base: u64,
    pub new_base: u64,
    pub len: u64,
}

/// Bump allocator for pre-assigning BARs inside the VMM's PCI MMIO window,
/// so the guest finds firmware-style assigned resources and does not need
/// ACPI `_CRS` to place them.
#[derive(Debug, Clone)]
pub struct BarAllocator {
    next: u64,
    end: u64,
}

impl BarAllocator {
    /// Window `[base, base + size)`.
    pub fn new(base: u64, size: u64) -> Self {
        Self {
            next: base,
            end: base.saturating_add(size),
        }
    }

    /// Naturally aligned allocation, as PCI requires for BARs.
    pub fn allocate(&mut self, size: u64) -> Result<u64, PciError> {
        if !size.is_power_of_two() || size < 16 {
            return Err(PciError::BarSize(size));
        }
        let base = self
            .next
            .checked_add(size - 1)
            .map(|v| v & !(size - 1))
            .ok_or(PciError::OutOfMmio(size))?;
        let end = base.checked_add(size).ok_or(PciError::OutOfMmio(size))?;
        if end > self.end {
            return Err(PciError::OutOfMmio(size));
        }
        self.next = end;
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_aligns_and_exhausts() {
        let mut a = BarAllocator::new(0xc000_1000, 0x10_0000);
        assert_eq!(a.allocate(0x1_0000).unwrap(), 0xc001_0000);
        assert_eq!(a.allocate(0x1000).unwrap(), 0xc002_0000);
        assert_eq!(a.allocate(3), Err(PciError::BarSize(3)));
        assert!(a.allocate(0x10_0000).is_err());
    }
}
