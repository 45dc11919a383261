//! vigil's virtio devices on PCI: the PCI bus the VMM exposes, the
//! virtio-pci modern transport, and the rng and blk devices. Nothing here
//! depends on the VMM.
//!
//! # Wiring a device (what the VMM does)
//!
//! ```text
//! // 1. The device, shared by the transport and the event loop.
//! let blk = Arc::new(Mutex::new(BlkDevice::new(backend, BlkConfig { .. })?));
//! event_manager.add_subscriber(blk.clone());           // MutEventSubscriber
//!
//! // 2. The transport: guest memory behind the write guard, and the
//! //    VMM's MsiSink (KVM_SIGNAL_MSI, or irqfd + GSI routing updated in
//! //    msix_update). Vectors: num_queues + 1.
//! let guard = GuestWriteGuard::new(guest_mem.clone(), protected.clone());
//! let mut pci = VirtioPciDevice::new(blk.clone(), guard, sink, nq + 1)?;
//! pci.set_bar_addr(bar_alloc.allocate(VirtioPciLayout::BAR_SIZE)?);
//! pci.set_irq_line(irq);
//! for (addr, evt) in pci.ioeventfds() { vm.register_ioevent(evt, &IoEventAddress::Mmio(addr), NoDatamatch)?; }
//! let pci = Arc::new(Mutex::new(pci));
//! bus.lock().add_device(pci.clone())?;
//!
//! // 3. vCPU exits.
//! //    PIO 0xCF8..=0xCFF -> config_io.read/write(port - 0xCF8, data);
//! //      a returned BarReprogram means: move the MMIO range and
//! //      re-register that device's ioeventfds at the new base.
//! //    MMIO in the PCI hole -> bus.mmio_read/mmio_write(addr, data).
//! ```
//!
//! `ProtectedRanges` is the monitor's handle: ranges added there are refused
//! to every device write into guest memory (`GuestWriteGuard::write`).

pub mod blk;
pub mod guest_write;
pub mod pci;
pub mod rng;
pub mod virtio;

#[cfg(test)]
mod test_utils;

#[cfg(test)]
mod hostile_fuzz;
