//! The one path by which devices write guest memory. Device writes go through
//! the host mapping, so a read-only memslot does not stop them; the monitor
//! registers protected guest-physical ranges (kernel text, rodata) here and
//! any device write touching them is refused.

use std::sync::{Arc, RwLock};

use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, Permissions};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuestWriteError {
    #[error("device write of {len} bytes at {addr:#x} hits protected range {start:#x}..{end:#x}")]
    Protected {
        addr: u64,
        len: usize,
        start: u64,
        end: u64,
    },
    #[error("device write of {len} bytes at {addr:#x} is outside guest memory")]
    OutOfRange { addr: u64, len: usize },
}

/// Shared set of half-open guest-physical ranges `[start, end)` that device
/// writes must not touch. Clones share the same set.
#[derive(Debug, Clone, Default)]
pub struct ProtectedRanges {
    ranges: Arc<RwLock<Vec<(u64, u64)>>>,
}

impl ProtectedRanges {
    pub fn new() -> Self {
        Self::default()
    }

    /// Protect `[start, start + len)`.
    pub fn add(&self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        self.write_lock().push((start, end));
    }

    /// Drop a range previously added with the same bounds.
    pub fn remove(&self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        self.write_lock().retain(|r| *r != (start, end));
    }

    pub fn clear(&self) {
        self.write_lock().clear();
    }

    /// First protected range overlapping `[addr, addr + len)`.
    pub fn overlapping(&self, addr: u64, len: u64) -> Option<(u64, u64)> {
        let end = addr.saturating_add(len);
        let g = self.ranges.read().unwrap_or_else(|e| e.into_inner());
        g.iter().copied().find(|(s, e)| addr < *e && *s < end)
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Vec<(u64, u64)>> {
        self.ranges.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Guest memory plus the protected set: devices hold this instead of writing
/// to `GuestMemoryMmap` themselves.
#[derive(Debug, Clone)]
pub struct GuestWriteGuard {
    mem: GuestMemoryMmap,
    protected: ProtectedRanges,
}

impl GuestWriteGuard {
    pub fn new(mem: GuestMemoryMmap, protected: ProtectedRanges) -> Self {
        Self { mem, protected }
    }

    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Write all of `buf` at `addr`, or nothing if any byte is protected or
    /// outside guest memory.
    pub fn write(&self, addr: GuestAddress, buf: &[u8]) -> Result<(), GuestWriteError> {
        if let Some((start, end)) = self.protected.overlapping(addr.0, buf.len() as u64) {
            tracing::warn!(
                event = "device_write_protected",
                addr = addr.0,
                len = buf.len(),
                start,
                end,
                "refused device write into protected guest memory"
            );
            return Err(GuestWriteError::Protected {
                addr: addr.0,
                len: buf.len(),
                start,
                end,
            });
        }
        let out = || GuestWriteError::OutOfRange {
            addr: addr.0,
            len: buf.len(),
        };
        // Check both ends first so a write running off guest memory does not
        // land partially.
        if !self.mem.check_range(addr, buf.len(), Permissions::Write) {
            return Err(out());
        }
        self.mem.write_slice(buf, addr).map_err(|_| out())
    }

    /// Read `buf.len()` bytes at `addr` (reads are never protected).
    pub fn read(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), GuestWriteError> {
        self.mem
            .read_slice(buf, addr)
            .map_err(|_| GuestWriteError::OutOfRange {
                addr: addr.0,
                len: buf.len(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_range_refuses_writes_and_leaves_memory_untouched() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        let prot = ProtectedRanges::new();
        let g = GuestWriteGuard::new(mem.clone(), prot.clone());
        g.write(GuestAddress(0x1000), &[1; 16]).unwrap();
        prot.add(0x2000, 0x1000);
        // Overlapping the start, inside, and the end are all refused.
        assert!(matches!(
            g.write(GuestAddress(0x1ff8), &[2; 16]),
            Err(GuestWriteError::Protected { .. })
        ));
        assert!(g.write(GuestAddress(0x2800), &[2; 1]).is_err());
        assert!(g.write(GuestAddress(0x2ff0), &[2; 32]).is_err());
        let mut b = [0u8; 16];
        mem.read_slice(&mut b, GuestAddress(0x1ff8)).unwrap();
        assert_eq!(b, [0; 16]);
        // Adjacent writes pass.
        g.write(GuestAddress(0x3000), &[3; 8]).unwrap();
        g.write(GuestAddress(0x1ff0), &[3; 16]).unwrap();
        assert!(matches!(
            g.write(GuestAddress(0xfff8), &[0; 16]),
            Err(GuestWriteError::OutOfRange { .. })
        ));
        prot.remove(0x2000, 0x1000);
        g.write(GuestAddress(0x2800), &[2; 1]).unwrap();
    }
}
