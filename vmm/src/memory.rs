//! Guest RAM: anonymous memory aligned to 2 MiB and backed by transparent
//! huge pages, so KVM can map the guest with large pages (measured in the
//! nested test host: 4 KiB mappings alone made a boot 1.5x slower).

use std::io;
use std::ptr::NonNull;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{
    GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MmapRegion,
};

use crate::layout;

const HUGE_PAGE: usize = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot map {size} bytes of guest memory: {source}")]
    Map { size: u64, source: io::Error },
    #[error("cannot describe guest memory region at {start:#x}: {0}", start = .1)]
    Region(String, u64),
    #[error("cannot build guest memory map: {0}")]
    Collection(String),
    #[error("KVM refused memory slot {slot} at {start:#x}: {source}")]
    Slot {
        slot: u32,
        start: u64,
        source: kvm_ioctls::Error,
    },
}

/// One host mapping backing a guest RAM region; unmapped on drop.
#[derive(Debug)]
struct HostMapping {
    addr: NonNull<u8>,
    size: usize,
}

// SAFETY: the mapping is plain anonymous memory; access is synchronised by
// the users of GuestMemoryMmap, as for any vm-memory region.
unsafe impl Send for HostMapping {}
unsafe impl Sync for HostMapping {}

impl HostMapping {
    /// Maps `size` bytes at a 2 MiB-aligned host address and asks for THP.
    fn new(size: usize) -> io::Result<Self> {
        let padded = size + HUGE_PAGE;
        // SAFETY: anonymous private mapping with no fixed address.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                padded,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let start = raw as usize;
        let aligned = (start + HUGE_PAGE - 1) & !(HUGE_PAGE - 1);
        let head = aligned - start;
        let tail = padded - head - size;
        // SAFETY: trimming the unaligned head and tail of our own mapping.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + size) as *mut libc::c_void, tail);
            }
            // Best effort: without THP the guest still runs, only slower.
            libc::madvise(aligned as *mut libc::c_void, size, libc::MADV_HUGEPAGE);
        }
        Ok(HostMapping {
            addr: NonNull::new(aligned as *mut u8).ok_or_else(io::Error::last_os_error)?,
            size,
        })
    }
}

impl Drop for HostMapping {
    fn drop(&mut self) {
        // SAFETY: we own this mapping; every user of it is gone by now
        // because GuestRam outlives the vCPU and device threads.
        unsafe { libc::munmap(self.addr.as_ptr().cast(), self.size) };
    }
}

/// The guest's RAM and the host mappings behind it.
pub struct GuestRam {
    pub mem: GuestMemoryMmap,
    mappings: Vec<HostMapping>,
}

impl GuestRam {
    /// Allocates `mem_size` bytes laid out by [`layout::ram_regions`].
    pub fn new(mem_size: u64) -> Result<Self, MemoryError> {
        Self::with_regions(&layout::ram_regions(mem_size))
    }

    /// Allocates RAM for explicit `(guest address, size)` regions.
    pub fn with_regions(regions: &[(u64, u64)]) -> Result<Self, MemoryError> {
        let mut mappings = Vec::with_capacity(regions.len());
        let mut guest_regions = Vec::with_capacity(regions.len());
        for &(start, size) in regions {
            let mapping = HostMapping::new(size as usize)
                .map_err(|source| MemoryError::Map { size, source })?;
            // SAFETY: the pointer and size describe the mapping just made,
            // which lives as long as `self.mappings`.
            let region = unsafe {
                MmapRegion::build_raw(
                    mapping.addr.as_ptr(),
                    mapping.size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                )
            }
            .map_err(|e| MemoryError::Region(e.to_string(), start))?;
            let region = GuestRegionMmap::new(region, GuestAddress(start))
                .ok_or_else(|| MemoryError::Region("address overflow".into(), start))?;
            guest_regions.push(region);
            mappings.push(mapping);
        }
        let mem = GuestMemoryMmap::from_regions(guest_regions)
            .map_err(|e| MemoryError::Collection(e.to_string()))?;
        Ok(GuestRam { mem, mappings })
    }

    /// Registers every region with KVM, starting at memory slot `first_slot`.
    /// Returns the next free slot.
    pub fn register(&self, vm: &VmFd, first_slot: u32) -> Result<u32, MemoryError> {
        let mut slot = first_slot;
        for (region, mapping) in self.mem.iter().zip(&self.mappings) {
            let start = region.start_addr().0;
            let desc = kvm_userspace_memory_region {
                slot,
                flags: 0,
                guest_phys_addr: start,
                memory_size: mapping.size as u64,
                userspace_addr: mapping.addr.as_ptr() as u64,
            };
            // SAFETY: the host range stays mapped for the VM's lifetime.
            unsafe { vm.set_user_memory_region(desc) }.map_err(|source| MemoryError::Slot {
                slot,
                start,
                source,
            })?;
            slot += 1;
        }
        Ok(slot)
    }

    /// Total RAM in bytes.
    pub fn size(&self) -> u64 {
        self.mappings.iter().map(|m| m.size as u64).sum()
    }

    /// Host addresses of each region, for checks such as 2 MiB alignment.
    pub fn host_addresses(&self) -> impl Iterator<Item = usize> + '_ {
        self.mappings.iter().map(|m| m.addr.as_ptr() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn regions_are_huge_page_aligned_and_usable() {
        let ram = GuestRam::new(64 << 20).unwrap();
        assert_eq!(ram.size(), 64 << 20);
        for addr in ram.host_addresses() {
            assert_eq!(addr % HUGE_PAGE, 0);
        }
        ram.mem
            .write_obj(0xdead_beef_u32, GuestAddress(0x1000))
            .unwrap();
        let v: u32 = ram.mem.read_obj(GuestAddress(0x1000)).unwrap();
        assert_eq!(v, 0xdead_beef);
    }
}
