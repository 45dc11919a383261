//! virtio device model and the virtio-pci modern transport (virtio 1.2 §4.1).

pub mod common_cfg;
pub mod msix;
pub mod pci_transport;
pub mod queue_state;
#[cfg(test)]
mod transport_tests;

use std::sync::Arc;

use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

use crate::guest_write::GuestWriteGuard;

pub use msix::{MsiMessage, MsiSink, MsixState};
pub use pci_transport::{VirtioPciDevice, VirtioPciLayout};

/// Feature bits every device here understands (virtio 1.2 §6).
use virtio_bindings::{virtio_config as vc, virtio_ring as vr};

pub const VIRTIO_F_VERSION_1: u64 = 1 << vc::VIRTIO_F_VERSION_1;
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << vr::VIRTIO_RING_F_INDIRECT_DESC;
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << vr::VIRTIO_RING_F_EVENT_IDX;

/// device_status bits (§2.1).
pub const STATUS_ACKNOWLEDGE: u8 = vc::VIRTIO_CONFIG_S_ACKNOWLEDGE as u8;
pub const STATUS_DRIVER: u8 = vc::VIRTIO_CONFIG_S_DRIVER as u8;
pub const STATUS_DRIVER_OK: u8 = vc::VIRTIO_CONFIG_S_DRIVER_OK as u8;
pub const STATUS_FEATURES_OK: u8 = vc::VIRTIO_CONFIG_S_FEATURES_OK as u8;
pub const STATUS_NEEDS_RESET: u8 = vc::VIRTIO_CONFIG_S_NEEDS_RESET as u8;
pub const STATUS_FAILED: u8 = vc::VIRTIO_CONFIG_S_FAILED as u8;

/// "No vector" for msix_config / queue_msix_vector.
pub const VIRTIO_MSI_NO_VECTOR: u16 = 0xffff;

/// virtio device ids (§5).
pub const VIRTIO_ID_BLOCK: u32 = 2;
pub const VIRTIO_ID_RNG: u32 = 4;
pub const VIRTIO_ID_VSOCK: u32 = 19;

/// How a device raises interrupts; implemented by the transport.
pub trait VirtioInterrupt: Send + Sync {
    fn signal_queue(&self, queue: u16);
    fn signal_config(&self);
}

#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("queue {0} is enabled but its rings are outside guest memory or misaligned")]
    InvalidQueue(u16),
    #[error("device needs queue {0} enabled")]
    QueueNotReady(u16),
    #[error("device error: {0}")]
    Device(String),
}

/// What the transport hands a device on DRIVER_OK.
pub struct ActivateParams {
    pub mem: GuestWriteGuard,
    pub interrupt: Arc<dyn VirtioInterrupt>,
    pub acked_features: u64,
    /// One per queue the device declared; disabled queues have `ready() == false`.
    pub queues: Vec<Queue>,
}

/// A virtio device independent of its transport.
pub trait VirtioDevice: Send {
    fn device_type(&self) -> u32;
    /// Maximum size of each queue; the length is num_queues.
    fn queue_max_sizes(&self) -> Vec<u16>;
    /// Device feature bits; the transport adds VERSION_1.
    fn features(&self) -> u64;
    /// One EventFd per queue, kicked on notify (the VMM registers these as
    /// ioeventfds; the transport also writes them on trapped notify writes).
    fn queue_events(&self) -> &[EventFd];
    fn read_config(&self, offset: u64, data: &mut [u8]);
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    fn activate(&mut self, params: ActivateParams) -> Result<(), ActivateError>;
    /// Drop queues and return to the pre-activation state.
    fn reset(&mut self);
    /// PCI class code (class, subclass) for this device type.
    fn pci_class(&self) -> (u8, u8) {
        (0xff, 0x00)
    }
}

/// Read a little-endian config struct slice with bounds checks; out of
/// range bytes read as zero.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    for (i, d) in data.iter_mut().enumerate() {
        *d = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(i))
            .and_then(|o| config.get(o))
            .copied()
            .unwrap_or(0);
    }
}

/// Create `n` non-blocking queue EventFds.
pub fn new_queue_events(n: usize) -> std::io::Result<Vec<EventFd>> {
    (0..n).map(|_| EventFd::new(libc::EFD_NONBLOCK)).collect()
}
