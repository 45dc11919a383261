//! virtio-blk driven through mock queues, including hostile chains.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::request::*;
use super::{BlkConfig, BlkDevice, BlockBackend, RawFileBackend};
use crate::guest_write::ProtectedRanges;
use crate::test_utils::*;
use crate::virtio::VirtioDevice;

const DISK: u64 = 64 * 1024;
const HDR: u64 = 0x10000;
const DATA: u64 = 0x20000;
const STATUS: u64 = 0x30000;

fn image() -> (std::path::PathBuf, Arc<RawFileBackend>) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "vigil-blk-{}-{}.img",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let data: Vec<u8> = (0..DISK).map(|i| (i / 512) as u8).collect();
    std::fs::write(&p, data).unwrap();
    let b = Arc::new(RawFileBackend::open(&p, false).unwrap());
    (p, b)
}

struct Tmp(std::path::PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn header(mem: &GuestMemoryMmap, at: u64, t: u32, sector: u64) {
    mem.write_obj(t.to_le(), GuestAddress(at)).unwrap();
    mem.write_obj(0u32, GuestAddress(at + 4)).unwrap();
    mem.write_obj(sector.to_le(), GuestAddress(at + 8)).unwrap();
}

fn status(mem: &GuestMemoryMmap, at: u64) -> u8 {
    mem.read_obj(GuestAddress(at)).unwrap()
}

struct Setup {
    _tmp: Tmp,
    backend: Arc<RawFileBackend>,
    dev: BlkDevice,
}

fn setup(
    mem: &GuestMemoryMmap,
    queues: Vec<virtio_queue::Queue>,
    cfg: BlkConfig,
    prot: &ProtectedRanges,
) -> Setup {
    let (p, backend) = image();
    let mut dev = BlkDevice::new(backend.clone(), cfg).unwrap();
    dev.activate(params(
        mem,
        prot,
        queues,
        Arc::new(CountingInterrupt::default()),
    ))
    .unwrap();
    Setup {
        _tmp: Tmp(p),
        backend,
        dev,
    }
}

#[test]
fn config_space_and_features() {
    let (p, b) = image();
    let _t = Tmp(p);
    let dev = BlkDevice::new(
        b,
        BlkConfig {
            num_queues: 2,
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut c = [0u8; 8];
    dev.read_config(0, &mut c);
    assert_eq!(u64::from_le_bytes(c), DISK / 512);
    let mut w = [0u8; 4];
    dev.read_config(20, &mut w);
    assert_eq!(u32::from_le_bytes(w), 512);
    dev.read_config(12, &mut w);
    assert_eq!(u32::from_le_bytes(w), 254);
    let mut q = [0u8; 2];
    dev.read_config(34, &mut q);
    assert_eq!(u16::from_le_bytes(q), 2);
    let f = dev.features();
    for bit in [2, 5, 6, 9, 12, 13, 14] {
        assert_ne!(f & (1 << bit), 0, "feature bit {bit}");
    }
    assert_eq!(dev.queue_max_sizes(), vec![256, 256]);
    // Out-of-range config reads are zero, not a panic.
    let mut big = [0xffu8; 8];
    dev.read_config(u64::MAX - 2, &mut big);
    assert_eq!(big, [0; 8]);
}

#[test]
fn write_read_flush_get_id() {
    let mem = memory();
    let mut d = Driver::new(&mem, 16);
    let mut s = setup(
        &mem,
        vec![d.queue()],
        BlkConfig {
            serial: "vigil-disk-0".into(),
            ..Default::default()
        },
        &ProtectedRanges::new(),
    );
    mem.write_slice(&[0x5a; 1024], GuestAddress(DATA)).unwrap();
    header(&mem, HDR, VIRTIO_BLK_T_OUT, 4);
    d.chain(&[(HDR, 16, 0), (DATA, 1024, 0), (STATUS, 1, F_WRITE)]);
    assert_eq!(s.dev.process_queue(0), 1);
    assert_eq!(status(&mem, STATUS), VIRTIO_BLK_S_OK);
    assert_eq!(d.used(), vec![(0, 1)]);
    let mut b = [0u8; 1024];
    s.backend.read_at(&mut b, 4 * 512).unwrap();
    assert_eq!(b, [0x5a; 1024]);

    header(&mem, HDR + 0x100, VIRTIO_BLK_T_IN, 3);
    d.chain(&[
        (HDR + 0x100, 16, 0),
        (DATA + 0x1000, 512, F_WRITE),
        (DATA + 0x2000, 1024, F_WRITE),
        (STATUS + 1, 1, F_WRITE),
    ]);
    header(&mem, HDR + 0x200, VIRTIO_BLK_T_FLUSH, 0);
    d.chain(&[(HDR + 0x200, 16, 0), (STATUS + 2, 1, F_WRITE)]);
    header(&mem, HDR + 0x300, VIRTIO_BLK_T_GET_ID, 0);
    d.chain(&[
        (HDR + 0x300, 16, 0),
        (DATA + 0x3000, 20, F_WRITE),
        (STATUS + 3, 1, F_WRITE),
    ]);
    assert_eq!(s.dev.process_queue(0), 3);
    assert_eq!(d.used(), vec![(3, 1537), (7, 1), (9, 21)]);
    let mut r = [0u8; 512];
    mem.read_slice(&mut r, GuestAddress(DATA + 0x1000)).unwrap();
    assert_eq!(r, [3; 512], "sector 3 untouched");
    mem.read_slice(&mut r, GuestAddress(DATA + 0x2000)).unwrap();
    assert_eq!(r, [0x5a; 512]);
    for i in 0..4 {
        assert_eq!(status(&mem, STATUS + i), VIRTIO_BLK_S_OK);
    }
    let mut id = [0u8; 20];
    mem.read_slice(&mut id, GuestAddress(DATA + 0x3000))
        .unwrap();
    assert_eq!(&id[..12], b"vigil-disk-0");
    assert_eq!(id[12..], [0; 8]);
}

#[test]
fn discard_and_write_zeroes() {
    let mem = memory();
    let mut d = Driver::new(&mem, 16);
    let mut s = setup(
        &mem,
        vec![d.queue()],
        BlkConfig::default(),
        &ProtectedRanges::new(),
    );
    let seg = |at: u64, sector: u64, num: u32, flags: u32| {
        mem.write_obj(sector, GuestAddress(at)).unwrap();
        mem.write_obj(num, GuestAddress(at + 8)).unwrap();
        mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
    };
    header(&mem, HDR, VIRTIO_BLK_T_WRITE_ZEROES, 0);
    seg(DATA, 8, 8, 0);
    seg(DATA + 16, 32, 8, DWZ_FLAG_UNMAP);
    d.chain(&[(HDR, 16, 0), (DATA, 32, 0), (STATUS, 1, F_WRITE)]);
    header(&mem, HDR + 0x100, VIRTIO_BLK_T_DISCARD, 0);
    seg(DATA + 0x100, 64, 8, 0);
    d.chain(&[
        (HDR + 0x100, 16, 0),
        (DATA + 0x100, 16, 0),
        (STATUS + 1, 1, F_WRITE),
    ]);
    // Reserved flag bits, past the end, and a ragged segment array.
    header(&mem, HDR + 0x200, VIRTIO_BLK_T_DISCARD, 0);
    seg(DATA + 0x200, 0, 8, DWZ_FLAG_UNMAP);
    d.chain(&[
        (HDR + 0x200, 16, 0),
        (DATA + 0x200, 16, 0),
        (STATUS + 2, 1, F_WRITE),
    ]);
    header(&mem, HDR + 0x300, VIRTIO_BLK_T_WRITE_ZEROES, 0);
    seg(DATA + 0x300, DISK / 512 - 4, 8, 0);
    d.chain(&[
        (HDR + 0x300, 16, 0),
        (DATA + 0x300, 16, 0),
        (STATUS + 3, 1, F_WRITE),
    ]);
    header(&mem, HDR + 0x400, VIRTIO_BLK_T_DISCARD, 0);
    d.chain(&[
        (HDR + 0x400, 16, 0),
        (DATA + 0x400, 15, 0),
        (STATUS + 4, 1, F_WRITE),
    ]);
    assert_eq!(s.dev.process_queue(0), 5);
    let st: Vec<u8> = (0..5).map(|i| status(&mem, STATUS + i)).collect();
    assert_eq!(
        st,
        vec![
            VIRTIO_BLK_S_OK,
            VIRTIO_BLK_S_OK,
            VIRTIO_BLK_S_UNSUPP,
            VIRTIO_BLK_S_IOERR,
            VIRTIO_BLK_S_IOERR
        ]
    );
    let mut b = vec![0u8; 8 * 512];
    s.backend.read_at(&mut b, 8 * 512).unwrap();
    assert!(b.iter().all(|x| *x == 0));
    s.backend.read_at(&mut b, 32 * 512).unwrap();
    assert!(b.iter().all(|x| *x == 0));
    s.backend.read_at(&mut b[..512], 0).unwrap();
    assert!(
        b[..512].iter().all(|x| *x == 0),
        "sector 0 is all zero in the pattern"
    );
    s.backend.read_at(&mut b[..512], 16 * 512).unwrap();
    assert!(b[..512].iter().all(|x| *x == 16), "neighbours untouched");
}

#[test]
fn hostile_chains_get_error_status_and_device_keeps_serving() {
    let mem = memory();
    let prot = ProtectedRanges::new();
    prot.add(0x50000, 0x1000);
    let mut d = Driver::new(&mem, 64);
    let mut s = setup(
        &mem,
        vec![d.queue()],
        BlkConfig {
            queue_size: 8,
            ..Default::default()
        },
        &prot,
    );
    let sectors = DISK / 512;
    let mut expect = Vec::new();
    let mut st = STATUS;
    let mut case = |d: &mut Driver,
                    name: &str,
                    t: u32,
                    sector: u64,
                    data: &[(u64, u32, u16)],
                    want: Option<u8>| {
        let h = HDR + 0x100 * expect.len() as u64;
        header(&mem, h, t, sector);
        let mut c = vec![(h, 16, 0)];
        c.extend_from_slice(data);
        c.push((st, 1, F_WRITE));
        d.chain(&c);
        expect.push((name.to_string(), st, want));
        st += 1;
    };
    case(
        &mut d,
        "past the end",
        VIRTIO_BLK_T_IN,
        sectors - 1,
        &[(DATA, 1024, F_WRITE)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    case(
        &mut d,
        "sector overflow",
        VIRTIO_BLK_T_OUT,
        u64::MAX,
        &[(DATA, 512, 0)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    case(
        &mut d,
        "data outside memory",
        VIRTIO_BLK_T_IN,
        0,
        &[(MEM_SIZE - 256, 512, F_WRITE)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    case(
        &mut d,
        "data address wraps",
        VIRTIO_BLK_T_OUT,
        0,
        &[(u64::MAX - 100, 512, 0)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    case(
        &mut d,
        "wrong direction (IN into readable)",
        VIRTIO_BLK_T_IN,
        0,
        &[(DATA, 512, 0)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    case(
        &mut d,
        "wrong direction (OUT from writable)",
        VIRTIO_BLK_T_OUT,
        0,
        &[(DATA, 512, F_WRITE)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    case(
        &mut d,
        "unaligned length",
        VIRTIO_BLK_T_IN,
        0,
        &[(DATA, 100, F_WRITE)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    case(
        &mut d,
        "unsupported type",
        99,
        0,
        &[],
        Some(VIRTIO_BLK_S_UNSUPP),
    );
    case(
        &mut d,
        "read into protected memory",
        VIRTIO_BLK_T_IN,
        0,
        &[(0x50000, 512, F_WRITE)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    case(
        &mut d,
        "GET_ID with readable buffer",
        VIRTIO_BLK_T_GET_ID,
        0,
        &[(DATA, 20, 0)],
        Some(VIRTIO_BLK_S_IOERR),
    );
    let long: Vec<(u64, u32, u16)> = (0..10).map(|i| (DATA + i * 512, 512, F_WRITE)).collect();
    case(
        &mut d,
        "over-long chain",
        VIRTIO_BLK_T_IN,
        0,
        &long,
        Some(VIRTIO_BLK_S_IOERR),
    );
    // Header outside guest memory.
    let n = d.next_index();
    d.chain(&[(MEM_SIZE - 4, 16, 0), (st, 1, F_WRITE)]);
    expect.push(("header outside memory".into(), st, Some(VIRTIO_BLK_S_IOERR)));
    st += 1;
    // Header too short.
    d.chain(&[(HDR, 8, 0), (st, 1, F_WRITE)]);
    expect.push(("short header".into(), st, Some(VIRTIO_BLK_S_IOERR)));
    st += 1;
    // Status buffer of length 0, and a read-only status: nothing to write.
    header(&mem, HDR + 0x2000, VIRTIO_BLK_T_FLUSH, 0);
    d.chain(&[(HDR + 0x2000, 16, 0), (st, 0, F_WRITE)]);
    expect.push(("short status".into(), st, None));
    st += 1;
    d.chain(&[(HDR + 0x2000, 16, 0), (st, 1, 0)]);
    expect.push(("read-only status".into(), st, None));
    st += 1;
    // Status descriptor outside memory.
    d.chain(&[(HDR + 0x2000, 16, 0), (MEM_SIZE + 10, 1, F_WRITE)]);
    expect.push(("status outside memory".into(), st, None));
    st += 1;
    let _ = n;
    // A good request after all of that.
    header(&mem, HDR + 0x3000, VIRTIO_BLK_T_IN, 5);
    d.chain(&[
        (HDR + 0x3000, 16, 0),
        (DATA + 0x8000, 512, F_WRITE),
        (st, 1, F_WRITE),
    ]);
    expect.push(("good".into(), st, Some(VIRTIO_BLK_S_OK)));
    // Pre-fill status bytes so an untouched one is visible.
    for (_, at, _) in &expect {
        if *at < MEM_SIZE {
            mem.write_obj(0xeeu8, GuestAddress(*at)).unwrap();
        }
    }
    let served = s.dev.process_queue(0);
    assert_eq!(served, expect.len());
    for (name, at, want) in &expect {
        if *at >= MEM_SIZE {
            continue;
        }
        assert_eq!(status(&mem, *at), want.unwrap_or(0xee), "{name}");
    }
    let mut b = [0u8; 512];
    mem.read_slice(&mut b, GuestAddress(DATA + 0x8000)).unwrap();
    assert_eq!(b, [5; 512]);
    mem.read_slice(&mut b, GuestAddress(0x50000)).unwrap();
    assert_eq!(b, [0; 512], "protected memory untouched");
}

#[test]
fn descriptor_loop_gets_error_status() {
    let mem = memory();
    let mut d = Driver::new(&mem, 16);
    let mut s = setup(
        &mem,
        vec![d.queue()],
        BlkConfig::default(),
        &ProtectedRanges::new(),
    );
    header(&mem, HDR, VIRTIO_BLK_T_IN, 0);
    // 0: header -> 1: status-like writable -> 1 (self loop).
    d.raw(&[
        Driver::desc(HDR, 16, F_NEXT, 1),
        Driver::desc(STATUS, 1, F_WRITE | F_NEXT, 1),
    ]);
    header(&mem, HDR + 0x100, VIRTIO_BLK_T_FLUSH, 0);
    d.chain(&[(HDR + 0x100, 16, 0), (STATUS + 1, 1, F_WRITE)]);
    // Next index beyond the table.
    d.raw(&[Driver::desc(HDR, 16, F_NEXT, 500)]);
    header(&mem, HDR + 0x200, VIRTIO_BLK_T_FLUSH, 0);
    d.chain(&[(HDR + 0x200, 16, 0), (STATUS + 2, 1, F_WRITE)]);
    assert_eq!(s.dev.process_queue(0), 4);
    assert_eq!(status(&mem, STATUS), VIRTIO_BLK_S_IOERR);
    assert_eq!(status(&mem, STATUS + 1), VIRTIO_BLK_S_OK);
    assert_eq!(status(&mem, STATUS + 2), VIRTIO_BLK_S_OK);
}

#[test]
fn read_only_disk_refuses_writes() {
    let mem = memory();
    let mut d = Driver::new(&mem, 16);
    let mut s = setup(
        &mem,
        vec![d.queue()],
        BlkConfig {
            read_only: true,
            ..Default::default()
        },
        &ProtectedRanges::new(),
    );
    header(&mem, HDR, VIRTIO_BLK_T_OUT, 0);
    d.chain(&[(HDR, 16, 0), (DATA, 512, 0), (STATUS, 1, F_WRITE)]);
    s.dev.process_queue(0);
    assert_eq!(status(&mem, STATUS), VIRTIO_BLK_S_IOERR);
    let mut b = [0u8; 512];
    s.backend.read_at(&mut b, 0).unwrap();
    assert_eq!(b, [0; 512]);
}

#[test]
fn several_queues_serve_independently() {
    let mem = memory();
    let mut d0 = Driver::new(&mem, 16);
    let q0 = d0.queue();
    let d1mq = virtio_queue::mock::MockSplitQueue::create(&mem, GuestAddress(0x8000), 16);
    let q1 = d1mq.create_queue::<virtio_queue::Queue>().unwrap();
    let mut s = setup(
        &mem,
        vec![q0, q1],
        BlkConfig {
            num_queues: 2,
            ..Default::default()
        },
        &ProtectedRanges::new(),
    );
    header(&mem, HDR, VIRTIO_BLK_T_IN, 7);
    let descs = [
        Driver::desc(HDR, 16, F_NEXT, 1),
        Driver::desc(DATA, 512, F_WRITE | F_NEXT, 2),
        Driver::desc(STATUS, 1, F_WRITE, 0),
    ];
    d1mq.add_desc_chains(&descs, 0).unwrap();
    assert_eq!(s.dev.process_queue(0), 0);
    assert_eq!(s.dev.process_queue(1), 1);
    assert_eq!(s.dev.process_queue(5), 0);
    let mut b = [0u8; 512];
    mem.read_slice(&mut b, GuestAddress(DATA)).unwrap();
    assert_eq!(b, [7; 512]);
    d0.chain(&[(HDR, 16, 0), (DATA, 512, F_WRITE), (STATUS, 1, F_WRITE)]);
    assert_eq!(s.dev.process_queue(0), 1);
}

#[test]
fn event_idx_rearms_avail_event_after_draining() {
    use virtio_queue::QueueT;
    let mem = memory();
    let mut d = Driver::new(&mem, 16);
    let mut q = d.queue();
    q.set_event_idx(true);
    let mut s = setup(&mem, vec![q], BlkConfig::default(), &ProtectedRanges::new());
    header(&mem, HDR, VIRTIO_BLK_T_FLUSH, 0);
    d.chain(&[(HDR, 16, 0), (STATUS, 1, F_WRITE)]);
    d.chain(&[(HDR, 16, 0), (STATUS + 1, 1, F_WRITE)]);
    assert_eq!(s.dev.process_queue(0), 2);
    // avail_event sits after the used ring entries (virtio 1.2 §2.7.10).
    let avail_event: u16 = mem
        .read_obj(d.mq.used_addr().unchecked_add(4 + 8 * 16))
        .unwrap();
    assert_eq!(
        avail_event, 2,
        "driver is asked to kick for the next request"
    );
}

#[test]
fn bogus_avail_index_does_not_spin() {
    let mem = memory();
    let d = Driver::new(&mem, 16);
    let mut q = d.queue();
    virtio_queue::QueueT::set_event_idx(&mut q, true);
    let mut s = setup(&mem, vec![q], BlkConfig::default(), &ProtectedRanges::new());
    // avail idx far beyond the queue size: nothing can be popped.
    d.mq.avail().idx().store(1000);
    assert_eq!(s.dev.process_queue(0), 0);
}

/// Backend whose writes and flushes fail, counting flushes.
#[derive(Default)]
struct Failing {
    flushes: AtomicUsize,
}
impl BlockBackend for Failing {
    fn len(&self) -> u64 {
        DISK
    }
    fn read_at(&self, buf: &mut [u8], _offset: u64) -> std::io::Result<()> {
        buf.fill(9);
        Ok(())
    }
    fn write_at(&self, _buf: &[u8], _offset: u64) -> std::io::Result<()> {
        Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
    }
    fn flush(&self) -> std::io::Result<()> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Err(std::io::Error::from_raw_os_error(libc::EIO))
    }
    fn discard(&self, _offset: u64, _len: u64) -> std::io::Result<()> {
        Ok(())
    }
    fn write_zeroes(&self, _offset: u64, _len: u64, _may_unmap: bool) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn backend_errors_become_ioerr_and_flush_reaches_backend() {
    let mem = memory();
    let mut d = Driver::new(&mem, 16);
    let backend = Arc::new(Failing::default());
    let mut dev = BlkDevice::new(backend.clone(), BlkConfig::default()).unwrap();
    dev.activate(params(
        &mem,
        &ProtectedRanges::new(),
        vec![d.queue()],
        Arc::new(CountingInterrupt::default()),
    ))
    .unwrap();
    header(&mem, HDR, VIRTIO_BLK_T_OUT, 0);
    d.chain(&[(HDR, 16, 0), (DATA, 512, 0), (STATUS, 1, F_WRITE)]);
    header(&mem, HDR + 0x100, VIRTIO_BLK_T_FLUSH, 0);
    d.chain(&[(HDR + 0x100, 16, 0), (STATUS + 1, 1, F_WRITE)]);
    header(&mem, HDR + 0x200, VIRTIO_BLK_T_IN, 0);
    d.chain(&[
        (HDR + 0x200, 16, 0),
        (DATA, 512, F_WRITE),
        (STATUS + 2, 1, F_WRITE),
    ]);
    assert_eq!(dev.process_queue(0), 3);
    assert_eq!(status(&mem, STATUS), VIRTIO_BLK_S_IOERR);
    assert_eq!(status(&mem, STATUS + 1), VIRTIO_BLK_S_IOERR);
    assert_eq!(status(&mem, STATUS + 2), VIRTIO_BLK_S_OK);
    assert_eq!(backend.flushes.load(Ordering::SeqCst), 1);
}

#[test]
fn config_deserializes_with_defaults() {
    let c: BlkConfig = serde_json::from_str(r#"{"num_queues": 4, "serial": "d0"}"#).unwrap();
    assert_eq!(
        c,
        BlkConfig {
            num_queues: 4,
            serial: "d0".into(),
            ..Default::default()
        }
    );
    assert!(serde_json::from_str::<BlkConfig>(r#"{"bogus": 1}"#).is_err());
}
