//! Transport tests driving the device the way Linux's virtio_pci_modern does.

use std::sync::{Arc, Mutex};

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::*;
use crate::guest_write::{GuestWriteGuard, ProtectedRanges};
use crate::pci::{PciBus, PciConfigIo, PciDevice};

#[derive(Default)]
pub(crate) struct RecordingSink {
    pub sent: Mutex<Vec<(u16, MsiMessage)>>,
    pub intx: Mutex<Vec<bool>>,
}

impl MsiSink for RecordingSink {
    fn signal(&self, vector: u16, msg: MsiMessage) {
        self.sent.lock().unwrap().push((vector, msg));
    }
    fn intx(&self, asserted: bool) {
        self.intx.lock().unwrap().push(asserted);
    }
}

struct Dummy {
    evts: Vec<EventFd>,
    activated: Option<ActivateParams>,
    resets: usize,
}

impl VirtioDevice for Dummy {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_RNG
    }
    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![64, 64]
    }
    fn features(&self) -> u64 {
        1 << 5
    }
    fn queue_events(&self) -> &[EventFd] {
        &self.evts
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&[1, 2, 3, 4], offset, data)
    }
    fn activate(&mut self, params: ActivateParams) -> Result<(), ActivateError> {
        self.activated = Some(params);
        Ok(())
    }
    fn reset(&mut self) {
        self.activated = None;
        self.resets += 1;
    }
}

const BAR: u64 = 0xe000_0000;

struct Rig {
    dev: Arc<Mutex<Dummy>>,
    pci: Arc<Mutex<VirtioPciDevice>>,
    bus: Arc<Mutex<PciBus>>,
    sink: Arc<RecordingSink>,
}

fn rig() -> Rig {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let dev = Arc::new(Mutex::new(Dummy {
        evts: new_queue_events(2).unwrap(),
        activated: None,
        resets: 0,
    }));
    let sink = Arc::new(RecordingSink::default());
    let mut pci = VirtioPciDevice::new(
        dev.clone(),
        GuestWriteGuard::new(mem, ProtectedRanges::new()),
        sink.clone(),
        3,
    )
    .unwrap();
    pci.set_bar_addr(BAR);
    // Memory decode + bus master, as pci_enable_device does.
    pci.write_config(4, &[0x06, 0]);
    let pci = Arc::new(Mutex::new(pci));
    let mut bus = PciBus::new();
    assert_eq!(bus.add_device(pci.clone()).unwrap(), 1);
    Rig {
        dev,
        pci,
        bus: Arc::new(Mutex::new(bus)),
        sink,
    }
}

impl Rig {
    fn w(&self, off: u64, v: u64, len: usize) {
        assert!(self
            .bus
            .lock()
            .unwrap()
            .mmio_write(BAR + off, &v.to_le_bytes()[..len]));
    }
    fn r(&self, off: u64, len: usize) -> u64 {
        let mut b = [0u8; 8];
        assert!(self.bus.lock().unwrap().mmio_read(BAR + off, &mut b[..len]));
        u64::from_le_bytes(b)
    }
    fn cfg(&self, off: usize, len: usize) -> u32 {
        let mut b = [0u8; 4];
        self.pci.lock().unwrap().read_config(off, &mut b[..len]);
        u32::from_le_bytes(b)
    }
    /// FEATURES_OK handshake with the given driver features.
    fn negotiate(&self, features: u64) -> u8 {
        self.w(0x14, u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER), 1);
        self.w(0x08, 0, 4);
        self.w(0x0c, features & 0xffff_ffff, 4);
        self.w(0x08, 1, 4);
        self.w(0x0c, features >> 32, 4);
        self.w(
            0x14,
            u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK),
            1,
        );
        self.r(0x14, 1) as u8
    }
    fn setup_queue(&self, q: u16, base: u64) {
        self.w(0x16, u64::from(q), 2);
        self.w(0x18, 16, 2);
        self.w(0x20, base, 4);
        self.w(0x24, 0, 4);
        self.w(0x28, base + 0x100, 4);
        self.w(0x2c, 0, 4);
        self.w(0x30, base + 0x200, 4);
        self.w(0x34, 0, 4);
        self.w(0x1c, 1, 2);
    }
}

#[test]
fn pci_identity_and_capabilities_as_linux_walks_them() {
    let rig = rig();
    let mut io = PciConfigIo::new(rig.bus.clone());
    io.write(0, &(0x8000_0000u32 | 1 << 11).to_le_bytes());
    let mut id = [0u8; 4];
    io.read(4, &mut id);
    assert_eq!(u32::from_le_bytes(id), 0x1044_1af4);
    assert_eq!(rig.cfg(0x08, 1), 1, "revision 1");
    assert_eq!(rig.cfg(0x2c, 2), 0x1af4);
    assert!(rig.cfg(0x2e, 2) >= 0x40);
    // Walk the capability list.
    let mut found = Vec::new();
    let mut p = rig.cfg(0x34, 1) as usize;
    while p != 0 {
        let id = rig.cfg(p, 1) as u8;
        if id == 0x09 {
            found.push((
                rig.cfg(p + 3, 1) as u8,
                rig.cfg(p + 4, 1),
                rig.cfg(p + 8, 4),
                rig.cfg(p + 12, 4),
            ));
            if rig.cfg(p + 3, 1) == 2 {
                assert_eq!(rig.cfg(p + 16, 4), 4, "notify_off_multiplier");
            }
        } else {
            assert_eq!(id, 0x11);
            assert_eq!(rig.cfg(p + 2, 2) & 0x7ff, 2, "3 vectors");
            assert_eq!(rig.cfg(p + 4, 4), 0x8000);
            assert_eq!(rig.cfg(p + 8, 4), 0xc000);
        }
        p = rig.cfg(p + 1, 1) as usize;
    }
    let types: Vec<u8> = found.iter().map(|f| f.0).collect();
    assert_eq!(types, vec![1, 2, 3, 4]);
    assert!(found.iter().all(|f| f.1 == 0));
    assert!(found[0].3 >= 0x38, "covers struct virtio_pci_common_cfg");
}

#[test]
fn bar_sizing_through_config_space() {
    let rig = rig();
    let mut pci = rig.pci.lock().unwrap();
    let orig_lo = {
        let mut b = [0u8; 4];
        pci.read_config(0x10, &mut b);
        u32::from_le_bytes(b)
    };
    assert_eq!(orig_lo, 0xe000_0004);
    pci.write_config(0x10, &[0xff; 4]);
    pci.write_config(0x14, &[0xff; 4]);
    let mut b = [0u8; 4];
    pci.read_config(0x10, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0xffff_0004, "64 KiB, 64-bit");
    assert_eq!(pci.write_config(0x10, &orig_lo.to_le_bytes()), None);
    assert_eq!(
        pci.write_config(0x14, &[0; 4]),
        None,
        "restoring is not a move"
    );
    let mv = pci
        .write_config(0x10, &0xd000_0000u32.to_le_bytes())
        .unwrap();
    assert_eq!(
        (mv.old_base, mv.new_base, mv.len),
        (BAR, 0xd000_0000, 0x1_0000)
    );
    assert_eq!(pci.ioeventfds()[1].0, 0xd000_3004);
}

#[test]
fn feature_negotiation_requires_version_1() {
    let rig = rig();
    assert_eq!(rig.r(0x12, 2), 2, "num_queues");
    rig.w(0x00, 1, 4);
    assert_eq!(rig.r(0x04, 4), 1, "VERSION_1 offered");
    rig.w(0x00, 0, 4);
    assert_eq!(rig.r(0x04, 4), 1 << 5);
    // Without VERSION_1 FEATURES_OK does not stick.
    let st = rig.negotiate(1 << 5);
    assert_eq!(st & STATUS_FEATURES_OK, 0);
    rig.w(0x14, 0, 1);
    assert_eq!(rig.r(0x14, 1), 0);
    // Unoffered bits are dropped.
    let st = rig.negotiate(VIRTIO_F_VERSION_1 | 1 << 5 | 1 << 7);
    assert_ne!(st & STATUS_FEATURES_OK, 0);
    rig.w(0x08, 0, 4);
    assert_eq!(rig.r(0x0c, 4), 1 << 5);
    // Feature writes after FEATURES_OK are ignored.
    rig.w(0x0c, 0, 4);
    assert_eq!(rig.r(0x0c, 4), 1 << 5);
}

#[test]
fn queue_setup_activation_notify_and_reset() {
    let rig = rig();
    rig.negotiate(VIRTIO_F_VERSION_1);
    rig.setup_queue(0, 0x1000);
    rig.w(0x16, 0, 2);
    assert_eq!(rig.r(0x18, 2), 16);
    assert_eq!(rig.r(0x28, 4), 0x1100);
    assert_eq!(rig.r(0x1e, 2), 0);
    // Enabled queue fields are frozen.
    rig.w(0x18, 32, 2);
    assert_eq!(rig.r(0x18, 2), 16);
    // Invalid size on the other queue is refused.
    rig.w(0x16, 1, 2);
    rig.w(0x18, 3, 2);
    assert_eq!(rig.r(0x18, 2), 64);
    // Selecting a missing queue reads size 0.
    rig.w(0x16, 7, 2);
    assert_eq!(rig.r(0x18, 2), 0);
    rig.w(
        0x14,
        u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK),
        1,
    );
    {
        let d = rig.dev.lock().unwrap();
        let p = d.activated.as_ref().expect("activated");
        assert_eq!(p.acked_features, VIRTIO_F_VERSION_1);
        use virtio_queue::QueueT;
        assert!(p.queues[0].ready() && !p.queues[1].ready());
        // The transport kicked every queue once after activation.
        assert_eq!(d.evts[0].read().unwrap(), 1);
    }
    // Trapped notify write kicks the EventFd of queue 1.
    rig.w(0x3004, 1, 2);
    assert_eq!(rig.dev.lock().unwrap().evts[1].read().unwrap(), 2);
    // Device config region.
    assert_eq!(rig.r(0x2001, 2), 0x0302);
    // Reset.
    rig.w(0x14, 0, 1);
    assert_eq!(rig.r(0x14, 1), 0);
    let d = rig.dev.lock().unwrap();
    assert!(d.activated.is_none());
    assert_eq!(d.resets, 1);
    drop(d);
    rig.w(0x16, 0, 2);
    assert_eq!(rig.r(0x1c, 2), 0);
    assert_eq!(rig.r(0x20, 4), 0);
}

#[test]
fn invalid_rings_set_needs_reset() {
    let rig = rig();
    rig.negotiate(VIRTIO_F_VERSION_1);
    // Rings beyond the 1 MiB of guest memory.
    rig.setup_queue(0, 0x10_0000);
    rig.w(
        0x14,
        u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK),
        1,
    );
    assert_ne!(rig.r(0x14, 1) as u8 & STATUS_NEEDS_RESET, 0);
    assert!(rig.dev.lock().unwrap().activated.is_none());
}

#[test]
fn msix_vectors_route_queue_interrupts() {
    let rig = rig();
    rig.negotiate(VIRTIO_F_VERSION_1);
    // Enable MSI-X in the capability.
    let cap = {
        let mut p = rig.cfg(0x34, 1) as usize;
        while rig.cfg(p, 1) != 0x11 {
            p = rig.cfg(p + 1, 1) as usize;
        }
        p
    };
    rig.pci.lock().unwrap().write_config(cap + 3, &[0x80]);
    assert_eq!(rig.cfg(cap + 2, 2) & 0x8000, 0x8000);
    // Program vector 1 and unmask it.
    rig.w(0x8010, 0xfee0_1000, 4);
    rig.w(0x8014, 0, 4);
    rig.w(0x8018, 0x22, 4);
    rig.w(0x801c, 0, 4);
    rig.w(0x10, 0, 2);
    assert_eq!(rig.r(0x10, 2), 0);
    rig.w(0x16, 0, 2);
    rig.w(0x1a, 1, 2);
    assert_eq!(rig.r(0x1a, 2), 1);
    // A vector beyond the table reads back NO_VECTOR.
    rig.w(0x1a, 9, 2);
    assert_eq!(rig.r(0x1a, 2), u64::from(VIRTIO_MSI_NO_VECTOR));
    rig.w(0x1a, 1, 2);
    rig.setup_queue(0, 0x1000);
    rig.w(
        0x14,
        u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK),
        1,
    );
    let irq = rig
        .dev
        .lock()
        .unwrap()
        .activated
        .as_ref()
        .unwrap()
        .interrupt
        .clone();
    irq.signal_queue(0);
    assert_eq!(
        rig.sink.sent.lock().unwrap()[0],
        (
            1,
            MsiMessage {
                addr: 0xfee0_1000,
                data: 0x22
            }
        )
    );
    // Vector 0 is still masked: config interrupt goes pending in the PBA.
    irq.signal_config();
    assert_eq!(rig.r(0xc000, 1), 1);
    assert_eq!(rig.sink.sent.lock().unwrap().len(), 1);
}

#[test]
fn intx_fallback_and_isr_read_to_clear() {
    let rig = rig();
    rig.negotiate(VIRTIO_F_VERSION_1);
    rig.setup_queue(0, 0x1000);
    rig.w(
        0x14,
        u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK),
        1,
    );
    let irq = rig
        .dev
        .lock()
        .unwrap()
        .activated
        .as_ref()
        .unwrap()
        .interrupt
        .clone();
    irq.signal_queue(0);
    assert_eq!(rig.r(0x1000, 1), 1);
    assert_eq!(rig.r(0x1000, 1), 0);
    assert_eq!(*rig.sink.intx.lock().unwrap(), vec![true, false]);
}

#[test]
fn hostile_bar_accesses_do_not_panic() {
    let rig = rig();
    for off in [
        0u64, 0x37, 0x38, 0xfff, 0x1000, 0x2fff, 0x3ffe, 0x7fff, 0x8000, 0xbfff, 0xc000, 0xffff,
    ] {
        for len in [1usize, 2, 4, 8] {
            rig.w(off, u64::MAX, len);
            let _ = rig.r(off, len);
        }
    }
    let mut pci = rig.pci.lock().unwrap();
    for off in 0..256 {
        pci.write_config(off, &[0xff; 4][..(4 - off % 4)]);
        let mut b = [0u8; 4];
        pci.read_config(off, &mut b[..(4 - off % 4)]);
    }
}

#[test]
fn bar_ignored_until_memory_decode_enabled() {
    let rig = rig();
    rig.pci.lock().unwrap().write_config(4, &[0, 0]);
    let mut b = [0u8; 4];
    assert!(!rig.bus.lock().unwrap().mmio_read(BAR, &mut b));
    assert!(!rig.bus.lock().unwrap().mmio_write(BAR + 0x14, &[0xf]));
}
