//! struct virtio_pci_common_cfg (virtio 1.2 §4.1.4.3) as Linux's
//! virtio_pci_modern driver accesses it: exact-width accesses, 64-bit ring
//! addresses written as two dwords.

use std::sync::atomic::Ordering;

use virtio_queue::QueueT;

use super::msix::MsixState;
use super::queue_state::{QueueSet, Vectors};
use super::{STATUS_DRIVER_OK, STATUS_FEATURES_OK, VIRTIO_F_VERSION_1, VIRTIO_MSI_NO_VECTOR};

/// Length of the common cfg region: struct virtio_pci_common_cfg (0x38)
/// plus queue_notify_data and queue_reset, which newer Linux maps as
/// virtio_pci_modern_common_cfg. Those two read as 0: RING_RESET and
/// NOTIFICATION_DATA are not offered.
pub const COMMON_CFG_LEN: u64 = 0x3c;

/// What the transport must do after a common cfg write.
#[derive(Debug, PartialEq, Eq)]
pub enum CommonCfgAction {
    None,
    Reset,
    Activate,
}

#[derive(Debug, Default)]
pub struct CommonCfg {
    pub device_feature_select: u32,
    pub driver_feature_select: u32,
    pub driver_features: u64,
    pub device_status: u8,
    pub config_generation: u8,
    pub queue_select: u16,
}

impl CommonCfg {
    pub fn reset(&mut self) {
        *self = Self {
            config_generation: self.config_generation,
            ..Default::default()
        };
    }

    pub fn read(
        &self,
        offset: u64,
        data: &mut [u8],
        device_features: u64,
        queues: &QueueSet,
        vectors: &Vectors,
    ) {
        let q = queues.get(self.queue_select);
        let v: u64 = match (offset, data.len()) {
            (0x00, 4) => u64::from(self.device_feature_select),
            (0x04, 4) => match self.device_feature_select {
                0 => device_features & 0xffff_ffff,
                1 => device_features >> 32,
                _ => 0,
            },
            (0x08, 4) => u64::from(self.driver_feature_select),
            (0x0c, 4) => match self.driver_feature_select {
                0 => self.driver_features & 0xffff_ffff,
                1 => self.driver_features >> 32,
                _ => 0,
            },
            (0x10, 2) => u64::from(vectors.config.load(Ordering::Acquire)),
            (0x12, 2) => queues.len() as u64,
            (0x14, 1) => u64::from(self.device_status),
            (0x15, 1) => u64::from(self.config_generation),
            (0x16, 2) => u64::from(self.queue_select),
            // A selected queue that does not exist reads size 0 (§4.1.4.3.2).
            (0x18, 2) => q.map_or(0, |q| u64::from(q.size())),
            (0x1a, 2) => q.map_or(u64::from(VIRTIO_MSI_NO_VECTOR), |_| {
                u64::from(vectors.queue(self.queue_select))
            }),
            (0x1c, 2) => q.map_or(0, |q| u64::from(q.ready())),
            // queue_notify_off: queue index, scaled by notify_off_multiplier.
            (0x1e, 2) => u64::from(self.queue_select),
            (0x20, 4) => q.map_or(0, |q| q.desc_table() & 0xffff_ffff),
            (0x24, 4) => q.map_or(0, |q| q.desc_table() >> 32),
            (0x28, 4) => q.map_or(0, |q| q.avail_ring() & 0xffff_ffff),
            (0x2c, 4) => q.map_or(0, |q| q.avail_ring() >> 32),
            (0x30, 4) => q.map_or(0, |q| q.used_ring() & 0xffff_ffff),
            (0x34, 4) => q.map_or(0, |q| q.used_ring() >> 32),
            (0x38, 2) | (0x3a, 2) => 0,
            _ => {
                tracing::debug!(offset, len = data.len(), "unsupported common cfg read");
                0
            }
        };
        let b = v.to_le_bytes();
        let n = data.len().min(8);
        data[..n].copy_from_slice(&b[..n]);
    }

    pub fn write(
        &mut self,
        offset: u64,
        data: &[u8],
        device_features: u64,
        queues: &mut QueueSet,
        vectors: &Vectors,
        msix: &MsixState,
    ) -> CommonCfgAction {
        let mut b = [0u8; 8];
        let n = data.len().min(8);
        b[..n].copy_from_slice(&data[..n]);
        let v = u64::from_le_bytes(b);
        let (v32, v16) = (v as u32, v as u16);
        let sel = self.queue_select;
        // Queue fields are frozen once the queue is enabled (§4.1.4.3.2).
        let enabled = queues.get(sel).is_some_and(|q| q.ready());
        match (offset, data.len()) {
            (0x00, 4) => self.device_feature_select = v32,
            (0x08, 4) => self.driver_feature_select = v32,
            (0x0c, 4) => {
                if self.device_status & STATUS_FEATURES_OK != 0 {
                    tracing::warn!("driver changed features after FEATURES_OK; ignored");
                    return CommonCfgAction::None;
                }
                let shift = match self.driver_feature_select {
                    0 => 0,
                    1 => 32,
                    _ => return CommonCfgAction::None,
                };
                let mask = 0xffff_ffffu64 << shift;
                // Only offered bits can be acked.
                self.driver_features =
                    (self.driver_features & !mask) | ((u64::from(v32) << shift) & device_features);
            }
            (0x10, 2) => vectors
                .config
                .store(checked_vector(v16, msix), Ordering::Release),
            (0x14, 1) => return self.write_status(v as u8),
            (0x16, 2) => self.queue_select = v16,
            (0x18, 2) if !enabled => {
                if let Some(q) = queues.get_mut(sel) {
                    q.set_size(v16);
                }
            }
            (0x1a, 2) => {
                if let Some(slot) = vectors.queues.get(usize::from(sel)) {
                    slot.store(checked_vector(v16, msix), Ordering::Release);
                }
            }
            (0x1c, 2) => {
                // Writing 0 is not allowed without VIRTIO_F_RING_RESET.
                if v16 == 1 {
                    if let Some(q) = queues.get_mut(sel) {
                        q.set_ready(true);
                    }
                }
            }
            (0x20..=0x37, 4) if !enabled => {
                if let Some(q) = queues.get_mut(sel) {
                    let (lo, hi) = if offset & 7 == 0 {
                        (Some(v32), None)
                    } else {
                        (None, Some(v32))
                    };
                    match offset & !7 {
                        0x20 => q.set_desc_table_address(lo, hi),
                        0x28 => q.set_avail_ring_address(lo, hi),
                        _ => q.set_used_ring_address(lo, hi),
                    }
                }
            }
            _ => tracing::debug!(offset, len = data.len(), "ignored common cfg write"),
        }
        CommonCfgAction::None
    }

    fn write_status(&mut self, new: u8) -> CommonCfgAction {
        if new == 0 {
            return CommonCfgAction::Reset;
        }
        let old = self.device_status;
        let mut status = new;
        if new & STATUS_FEATURES_OK != 0 && old & STATUS_FEATURES_OK == 0 {
            // Modern transport: a driver that does not accept VERSION_1
            // cannot use this device; leave FEATURES_OK clear so it sees that.
            if self.driver_features & VIRTIO_F_VERSION_1 == 0 {
                tracing::warn!(
                    features = self.driver_features,
                    "driver did not accept VIRTIO_F_VERSION_1"
                );
                status &= !STATUS_FEATURES_OK;
            }
        }
        self.device_status = status;
        if status & STATUS_DRIVER_OK != 0 && old & STATUS_DRIVER_OK == 0 {
            if status & STATUS_FEATURES_OK == 0 {
                tracing::warn!("DRIVER_OK without FEATURES_OK; device stays inactive");
                return CommonCfgAction::None;
            }
            return CommonCfgAction::Activate;
        }
        CommonCfgAction::None
    }
}

/// A vector the table does not have reads back as NO_VECTOR, which is how
/// the driver learns the mapping failed.
fn checked_vector(v: u16, msix: &MsixState) -> u16 {
    if v == VIRTIO_MSI_NO_VECTOR || msix.has_vector(v) {
        v
    } else {
        VIRTIO_MSI_NO_VECTOR
    }
}
