//! PCI plumbing: config space, BARs, capability list and a bus reachable
//! through the legacy configuration mechanism #1 (ports 0xCF8/0xCFC).

pub mod bar;
pub mod bus;
pub mod capability;
pub mod config;

pub use bar::{BarAllocator, BarInfo, BarKind, BarReprogram};
pub use bus::{
    PciBus, PciConfigIo, PciDevice, PciHostBridge, SharedPciDevice, PCI_CONFIG_IO_BASE,
    PCI_CONFIG_IO_SIZE,
};
pub use capability::{Capability, PCI_CAP_ID_MSIX, PCI_CAP_ID_VENDOR};
pub use config::{PciConfiguration, PciIds};

/// Errors building PCI devices (never caused by a guest access).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PciError {
    #[error("BAR {0} is already in use or out of range")]
    BarInUse(usize),
    #[error("BAR size {0:#x} is not a power of two of at least 16 bytes")]
    BarSize(u64),
    #[error("no room left in config space for a capability of {0} bytes")]
    CapabilitySpace(usize),
    #[error("PCI bus is full")]
    BusFull,
    #[error("MMIO window exhausted allocating {0:#x} bytes")]
    OutOfMmio(u64),
    #[error("cannot duplicate a queue EventFd: {0}")]
    EventFd(String),
}
