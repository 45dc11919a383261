//! vigil's virtio devices on PCI: the PCI bus the VMM exposes, the virtio-pci
//! modern transport, and the rng, blk devices. Nothing here depends on the
//! VMM; it wires these in through the traits and calls documented on each type.

pub mod blk;
pub mod guest_write;
pub mod pci;
pub mod rng;
pub mod virtio;

#[cfg(test)]
mod test_utils;

#[cfg(test)]
mod hostile_fuzz;
