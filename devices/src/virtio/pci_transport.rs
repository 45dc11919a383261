//! virtio-pci modern transport: one 64-bit memory BAR holding common cfg,
//! ISR, device cfg, notify and the MSI-X table/PBA, described by vendor
//! capabilities (virtio 1.2 §4.1.4).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use vmm_sys_util::eventfd::EventFd;

use super::common_cfg::{CommonCfg, CommonCfgAction, COMMON_CFG_LEN};
use super::msix::{MsiSink, MsixState};
use super::queue_state::{QueueSet, Vectors};
use super::{
    ActivateParams, VirtioDevice, VirtioInterrupt, STATUS_NEEDS_RESET, VIRTIO_F_VERSION_1,
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
use crate::guest_write::GuestWriteGuard;
use crate::pci::config::PciIds;
use crate::pci::{
    BarInfo, BarKind, BarReprogram, Capability, PciConfiguration, PciDevice, PciError,
};
use crate::pci::{PCI_CAP_ID_MSIX, PCI_CAP_ID_VENDOR};

/// Offsets inside BAR 0. Each region sits on its own page so the VMM can
/// map or trap them independently.
pub struct VirtioPciLayout;

impl VirtioPciLayout {
    pub const BAR: usize = 0;
    pub const BAR_SIZE: u64 = 0x1_0000;
    pub const COMMON: u64 = 0x0000;
    pub const ISR: u64 = 0x1000;
    pub const DEVICE: u64 = 0x2000;
    pub const DEVICE_LEN: u64 = 0x1000;
    pub const NOTIFY: u64 = 0x3000;
    pub const NOTIFY_LEN: u64 = 0x1000;
    /// Queue q is notified at NOTIFY + q * NOTIFY_OFF_MULTIPLIER.
    pub const NOTIFY_OFF_MULTIPLIER: u32 = 4;
    pub const MSIX_TABLE: u64 = 0x8000;
    pub const MSIX_PBA: u64 = 0xc000;
}

const VIRTIO_PCI_VENDOR: u16 = 0x1af4;
const VIRTIO_PCI_DEVICE_BASE: u16 = 0x1040;
const CAP_COMMON: u8 = 1;
const CAP_NOTIFY: u8 = 2;
const CAP_ISR: u8 = 3;
const CAP_DEVICE: u8 = 4;
const ISR_QUEUE: u8 = 1;
const ISR_CONFIG: u8 = 2;
const MAX_MSIX_VECTORS: u16 = 1024;

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Interrupt path handed to devices: MSI-X when the driver enabled it,
/// otherwise ISR + INTx.
struct PciInterrupt {
    msix: Arc<MsixState>,
    sink: Arc<dyn MsiSink>,
    vectors: Arc<Vectors>,
    isr: Arc<AtomicU8>,
}

impl PciInterrupt {
    fn raise(&self, vector: u16, isr_bit: u8) {
        self.isr.fetch_or(isr_bit, Ordering::AcqRel);
        if self.msix.enabled() {
            self.msix.trigger(vector, self.sink.as_ref());
        } else {
            self.sink.intx(true);
        }
    }
}

impl VirtioInterrupt for PciInterrupt {
    fn signal_queue(&self, queue: u16) {
        self.raise(self.vectors.queue(queue), ISR_QUEUE);
    }
    fn signal_config(&self) {
        self.raise(self.vectors.config.load(Ordering::Acquire), ISR_CONFIG);
    }
}

/// A virtio device behind the modern PCI transport.
pub struct VirtioPciDevice {
    config: PciConfiguration,
    device: Arc<Mutex<dyn VirtioDevice>>,
    common: CommonCfg,
    queues: QueueSet,
    interrupt: Arc<PciInterrupt>,
    queue_evts: Vec<EventFd>,
    mem: GuestWriteGuard,
    device_features: u64,
    msix_cap: usize,
    active: bool,
}

fn virtio_cap(cfg_type: u8, offset: u64, length: u64, extra: Option<u32>) -> Capability {
    let cap_len = if extra.is_some() { 20u8 } else { 16 };
    let mut body = vec![cap_len, cfg_type, VirtioPciLayout::BAR as u8, 0, 0, 0];
    body.extend_from_slice(&(offset as u32).to_le_bytes());
    body.extend_from_slice(&(length as u32).to_le_bytes());
    if let Some(x) = extra {
        body.extend_from_slice(&x.to_le_bytes());
    }
    Capability::read_only(PCI_CAP_ID_VENDOR, body)
}

impl VirtioPciDevice {
    /// `msix_vectors` is usually num_queues + 1 (one for config changes).
    pub fn new(
        device: Arc<Mutex<dyn VirtioDevice>>,
        mem: GuestWriteGuard,
        sink: Arc<dyn MsiSink>,
        msix_vectors: u16,
    ) -> Result<Self, PciError> {
        let (device_type, max_sizes, features, class, evts) = {
            let d = lock(&device);
            let evts = d
                .queue_events()
                .iter()
                .map(EventFd::try_clone)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PciError::EventFd(e.to_string()))?;
            (
                d.device_type(),
                d.queue_max_sizes(),
                d.features(),
                d.pci_class(),
                evts,
            )
        };
        let msix_vectors = msix_vectors.clamp(1, MAX_MSIX_VECTORS);
        let mut config = PciConfiguration::new(PciIds {
            vendor: VIRTIO_PCI_VENDOR,
            device: VIRTIO_PCI_DEVICE_BASE + device_type as u16,
            revision: 1,
            class: class.0,
            subclass: class.1,
            prog_if: 0,
            subsystem_vendor: VIRTIO_PCI_VENDOR,
            // Non-transitional devices use subsystem ids >= 0x40 (§4.1.2.1).
            subsystem_id: 0x40,
            header_type: 0,
        });
        config.add_bar(
            VirtioPciLayout::BAR,
            BarKind::Mmio64,
            VirtioPciLayout::BAR_SIZE,
            false,
        )?;
        config.add_capability(&virtio_cap(
            CAP_COMMON,
            VirtioPciLayout::COMMON,
            COMMON_CFG_LEN,
            None,
        ))?;
        config.add_capability(&virtio_cap(
            CAP_NOTIFY,
            VirtioPciLayout::NOTIFY,
            VirtioPciLayout::NOTIFY_LEN,
            Some(VirtioPciLayout::NOTIFY_OFF_MULTIPLIER),
        ))?;
        config.add_capability(&virtio_cap(CAP_ISR, VirtioPciLayout::ISR, 1, None))?;
        config.add_capability(&virtio_cap(
            CAP_DEVICE,
            VirtioPciLayout::DEVICE,
            VirtioPciLayout::DEVICE_LEN,
            None,
        ))?;
        let mut body = Vec::with_capacity(10);
        body.extend_from_slice(&(msix_vectors - 1).to_le_bytes());
        body.extend_from_slice(
            &(VirtioPciLayout::MSIX_TABLE as u32 | VirtioPciLayout::BAR as u32).to_le_bytes(),
        );
        body.extend_from_slice(
            &(VirtioPciLayout::MSIX_PBA as u32 | VirtioPciLayout::BAR as u32).to_le_bytes(),
        );
        let mut writable = vec![0u8; body.len()];
        // Only enable and function mask in message control are writable.
        writable[1] = 0xc0;
        let msix_cap = config.add_capability(&Capability {
            id: PCI_CAP_ID_MSIX,
            body,
            writable,
        })?;

        let vectors = Vectors::new(max_sizes.len());
        Ok(Self {
            config,
            device,
            common: CommonCfg::default(),
            queues: QueueSet::new(&max_sizes),
            interrupt: Arc::new(PciInterrupt {
                msix: Arc::new(MsixState::new(msix_vectors)),
                sink,
                vectors,
                isr: Arc::new(AtomicU8::new(0)),
            }),
            queue_evts: evts,
            mem,
            device_features: features | VIRTIO_F_VERSION_1,
            msix_cap,
            active: false,
        })
    }

    /// Pre-assign BAR 0 (firmware style); the guest may still move it.
    pub fn set_bar_addr(&mut self, addr: u64) {
        self.config.set_bar_addr(VirtioPciLayout::BAR, addr);
    }

    /// INTx line reported at config 0x3C (used only without MSI-X).
    pub fn set_irq_line(&mut self, line: u8) {
        self.config.set_irq_line(line);
    }

    pub fn bar_addr(&self) -> u64 {
        self.config.bar_addr(VirtioPciLayout::BAR)
    }

    /// (guest-physical address, EventFd) per queue for KVM_IOEVENTFD
    /// (2-byte MMIO write, no datamatch). Re-register after a BAR move.
    pub fn ioeventfds(&self) -> Vec<(u64, &EventFd)> {
        let base = self.bar_addr() + VirtioPciLayout::NOTIFY;
        self.queue_evts
            .iter()
            .enumerate()
            .map(|(q, e)| {
                (
                    base + q as u64 * u64::from(VirtioPciLayout::NOTIFY_OFF_MULTIPLIER),
                    e,
                )
            })
            .collect()
    }

    /// Host-initiated config change (e.g. disk resize).
    pub fn config_changed(&mut self) {
        self.common.config_generation = self.common.config_generation.wrapping_add(1);
        self.interrupt.signal_config();
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn device_status(&self) -> u8 {
        self.common.device_status
    }

    fn reset(&mut self) {
        if self.active {
            lock(&self.device).reset();
        }
        self.active = false;
        self.common.reset();
        self.queues.reset();
        self.interrupt.vectors.reset();
        self.interrupt.isr.store(0, Ordering::Release);
        // Drain kicks that arrived for the old queues.
        for e in &self.queue_evts {
            let _ = e.read();
        }
    }

    fn activate(&mut self) {
        let event_idx = self.common.driver_features & VIRTIO_RING_F_EVENT_IDX != 0;
        let invalid = self.queues.queues.iter().position(|q| {
            use virtio_queue::QueueT;
            q.ready() && !q.is_valid(self.mem.memory())
        });
        if let Some(i) = invalid {
            tracing::warn!(
                queue = i,
                "virtio queue enabled with invalid rings; device needs reset"
            );
            return self.needs_reset();
        }
        let params = ActivateParams {
            mem: self.mem.clone(),
            interrupt: self.interrupt.clone(),
            acked_features: self.common.driver_features,
            queues: self.queues.snapshot(event_idx),
        };
        let result = lock(&self.device).activate(params);
        match result {
            Ok(()) => {
                self.active = true;
                // Process anything queued before the first kick.
                for e in &self.queue_evts {
                    let _ = e.write(1);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "virtio device activation failed");
                self.needs_reset();
            }
        }
    }

    fn needs_reset(&mut self) {
        self.common.device_status |= STATUS_NEEDS_RESET;
        self.interrupt.signal_config();
    }

    fn msix_control_changed(&mut self) {
        let mut b = [0u8; 2];
        self.config.read(self.msix_cap + 2, &mut b);
        self.interrupt
            .msix
            .set_control(u16::from_le_bytes(b), self.interrupt.sink.as_ref());
    }
}

impl PciDevice for VirtioPciDevice {
    fn read_config(&mut self, offset: usize, data: &mut [u8]) {
        self.config.read(offset, data)
    }

    fn write_config(&mut self, offset: usize, data: &[u8]) -> Option<BarReprogram> {
        let moved = self.config.write(offset, data);
        let ctrl = self.msix_cap + 2..self.msix_cap + 4;
        if offset < ctrl.end && offset + data.len() > ctrl.start {
            self.msix_control_changed();
        }
        moved
    }

    fn read_bar(&mut self, bar: usize, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if bar != VirtioPciLayout::BAR {
            return;
        }
        let l = VirtioPciLayout::BAR_SIZE;
        match offset {
            o if o < COMMON_CFG_LEN => self.common.read(
                o,
                data,
                self.device_features,
                &self.queues,
                &self.interrupt.vectors,
            ),
            VirtioPciLayout::ISR => {
                // Reading ISR acknowledges it and deasserts INTx (§4.1.4.5).
                let v = self.interrupt.isr.swap(0, Ordering::AcqRel);
                if let Some(d) = data.first_mut() {
                    *d = v;
                }
                if v != 0 {
                    self.interrupt.sink.intx(false);
                }
            }
            o if (VirtioPciLayout::DEVICE
                ..VirtioPciLayout::DEVICE + VirtioPciLayout::DEVICE_LEN)
                .contains(&o) =>
            {
                lock(&self.device).read_config(o - VirtioPciLayout::DEVICE, data)
            }
            o if (VirtioPciLayout::MSIX_TABLE..VirtioPciLayout::MSIX_PBA).contains(&o) => self
                .interrupt
                .msix
                .read_table(o - VirtioPciLayout::MSIX_TABLE, data),
            o if (VirtioPciLayout::MSIX_PBA..l).contains(&o) => self
                .interrupt
                .msix
                .read_pba(o - VirtioPciLayout::MSIX_PBA, data),
            _ => {}
        }
    }

    fn write_bar(&mut self, bar: usize, offset: u64, data: &[u8]) {
        if bar != VirtioPciLayout::BAR {
            return;
        }
        match offset {
            o if o < COMMON_CFG_LEN => {
                let action = self.common.write(
                    o,
                    data,
                    self.device_features,
                    &mut self.queues,
                    &self.interrupt.vectors,
                    &self.interrupt.msix,
                );
                match action {
                    CommonCfgAction::Reset => self.reset(),
                    CommonCfgAction::Activate if !self.active => self.activate(),
                    _ => {}
                }
            }
            o if (VirtioPciLayout::DEVICE
                ..VirtioPciLayout::DEVICE + VirtioPciLayout::DEVICE_LEN)
                .contains(&o) =>
            {
                lock(&self.device).write_config(o - VirtioPciLayout::DEVICE, data)
            }
            o if (VirtioPciLayout::NOTIFY
                ..VirtioPciLayout::NOTIFY + VirtioPciLayout::NOTIFY_LEN)
                .contains(&o) =>
            {
                // Trapped notify (no ioeventfd registered): kick the queue's EventFd.
                let q = (o - VirtioPciLayout::NOTIFY)
                    / u64::from(VirtioPciLayout::NOTIFY_OFF_MULTIPLIER);
                match usize::try_from(q).ok().and_then(|q| self.queue_evts.get(q)) {
                    Some(e) => {
                        let _ = e.write(1);
                    }
                    None => {
                        tracing::warn!(queue = q, "notify for a queue the device does not have")
                    }
                }
            }
            o if (VirtioPciLayout::MSIX_TABLE..VirtioPciLayout::MSIX_PBA).contains(&o) => {
                self.interrupt.msix.write_table(
                    o - VirtioPciLayout::MSIX_TABLE,
                    data,
                    self.interrupt.sink.as_ref(),
                )
            }
            _ => tracing::debug!(offset, "ignored write to read-only or unused BAR area"),
        }
    }

    fn bars(&self) -> Vec<(usize, BarInfo, u64)> {
        self.config
            .bar_info(VirtioPciLayout::BAR)
            .map(|i| vec![(VirtioPciLayout::BAR, i, self.bar_addr())])
            .unwrap_or_default()
    }

    fn memory_enabled(&self) -> bool {
        self.config.memory_enabled()
    }
}

/// Features all devices here offer on top of their own.
pub const TRANSPORT_FEATURES: u64 = VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX;
