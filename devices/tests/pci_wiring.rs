//! Wires a virtio-blk the way the VMM does, using only the public API:
//! PCI bus + 0xCF8/0xCFC, BAR MMIO, notify EventFds on an event manager,
//! and MSI-X delivery through an `MsiSink`.

use std::sync::{Arc, Mutex};

use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use vigil_devices::blk::{BlkConfig, BlkDevice, RawFileBackend};
use vigil_devices::guest_write::{GuestWriteGuard, ProtectedRanges};
use vigil_devices::pci::{BarAllocator, PciBus, PciConfigIo};
use vigil_devices::virtio::{MsiMessage, MsiSink, VirtioDevice, VirtioPciDevice, VirtioPciLayout};
use virtio_queue::desc::split::Descriptor as SplitDescriptor;
use virtio_queue::desc::RawDescriptor;
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

#[derive(Default)]
struct Sink(Mutex<Vec<(u16, MsiMessage)>>);
impl MsiSink for Sink {
    fn signal(&self, vector: u16, msg: MsiMessage) {
        self.0.lock().unwrap().push((vector, msg));
    }
}

fn cfg_addr(slot: u32, reg: u32) -> [u8; 4] {
    (0x8000_0000u32 | slot << 11 | reg).to_le_bytes()
}

#[test]
fn guest_driver_flow_end_to_end() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x20_0000)]).unwrap();
    let img = std::env::temp_dir().join(format!("vigil-wiring-{}.img", std::process::id()));
    std::fs::write(&img, vec![0x77u8; 1 << 20]).unwrap();
    let backend = Arc::new(RawFileBackend::open(&img, false).unwrap());

    // VMM side.
    let blk = Arc::new(Mutex::new(
        BlkDevice::new(backend, BlkConfig::default()).unwrap(),
    ));
    let mut em = EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new().unwrap();
    em.add_subscriber(blk.clone());
    let sink = Arc::new(Sink::default());
    let guard = GuestWriteGuard::new(mem.clone(), ProtectedRanges::new());
    let dev: Arc<Mutex<dyn VirtioDevice>> = blk.clone();
    let mut pci = VirtioPciDevice::new(dev, guard, sink.clone(), 2).unwrap();
    let mut alloc = BarAllocator::new(0xc000_0000, 0x1000_0000);
    let bar = alloc.allocate(VirtioPciLayout::BAR_SIZE).unwrap();
    pci.set_bar_addr(bar);
    let pci = Arc::new(Mutex::new(pci));
    let bus = Arc::new(Mutex::new(PciBus::new()));
    let slot = bus.lock().unwrap().add_device(pci.clone()).unwrap();
    assert_eq!(
        bus.lock().unwrap().mmio_ranges(),
        vec![(slot, 0, bar, VirtioPciLayout::BAR_SIZE)]
    );
    let mut io = PciConfigIo::new(bus.clone());

    // Guest side: find the device and enable memory decoding.
    io.write(0, &cfg_addr(u32::from(slot), 0));
    let mut id = [0u8; 4];
    io.read(4, &mut id);
    assert_eq!(u32::from_le_bytes(id), 0x1042_1af4);
    io.write(0, &cfg_addr(u32::from(slot), 4));
    io.write(4, &[0x06, 0x00]);
    // MSI-X: capability at the end of the list (0x80 here) -> enable.
    let mut p = [0u8; 1];
    io.write(0, &cfg_addr(u32::from(slot), 0x34));
    io.read(4, &mut p);
    let mut cap = p[0] as u32;
    loop {
        io.write(0, &cfg_addr(u32::from(slot), cap & !3));
        let mut hdr = [0u8; 2];
        io.read(4 + (cap & 3) as u16, &mut hdr);
        if hdr[0] == 0x11 {
            break;
        }
        cap = u32::from(hdr[1]);
    }
    io.write(0, &cfg_addr(u32::from(slot), cap));
    io.write(7, &[0x80]);

    let w = |off: u64, v: u64, len: usize| {
        assert!(bus
            .lock()
            .unwrap()
            .mmio_write(bar + off, &v.to_le_bytes()[..len]))
    };
    // MSI-X entry 1 for queue 0.
    w(0x8010, 0xfee0_0000, 4);
    w(0x8018, 0x31, 4);
    w(0x801c, 0, 4);
    w(0x14, 3, 1);
    w(0x08, 1, 4);
    w(0x0c, 1, 4); // VERSION_1
    w(0x14, 0xb, 1);
    let mq = MockSplitQueue::create(&mem, GuestAddress(0x10_0000), 16);
    w(0x16, 0, 2);
    w(0x18, 16, 2);
    w(0x1a, 1, 2);
    w(0x20, mq.desc_table_addr().0, 4);
    w(0x28, mq.avail_addr().0, 4);
    w(0x30, mq.used_addr().0, 4);
    w(0x1c, 1, 2);
    w(0x14, 0xf, 1);
    assert!(pci.lock().unwrap().is_active());

    // Submit a read of sector 2 and kick via the ioeventfd's EventFd.
    mem.write_obj(0u32, GuestAddress(0x1000)).unwrap();
    mem.write_obj(2u64, GuestAddress(0x1008)).unwrap();
    let d = |a: u64, l: u32, f: u16, n: u16| RawDescriptor::from(SplitDescriptor::new(a, l, f, n));
    mq.add_desc_chains(
        &[
            d(0x1000, 16, 1, 1),
            d(0x2000, 512, 3, 2),
            d(0x3000, 1, 2, 0),
        ],
        0,
    )
    .unwrap();
    let (addr, evt) = {
        let g = pci.lock().unwrap();
        let (a, e) = g.ioeventfds()[0];
        (a, e.try_clone().unwrap())
    };
    assert_eq!(addr, bar + VirtioPciLayout::NOTIFY);
    evt.write(1).unwrap();
    while em.run_with_timeout(100).unwrap() > 0 {}
    let mut b = [0u8; 512];
    mem.read_slice(&mut b, GuestAddress(0x2000)).unwrap();
    assert_eq!(b, [0x77; 512]);
    assert_eq!(mem.read_obj::<u8>(GuestAddress(0x3000)).unwrap(), 0);
    assert!(sink.0.lock().unwrap().contains(&(
        1,
        MsiMessage {
            addr: 0xfee0_0000,
            data: 0x31
        }
    )));
    // Reset through device_status 0.
    w(0x14, 0, 1);
    assert!(!pci.lock().unwrap().is_active());
    std::fs::remove_file(&img).unwrap();
}
