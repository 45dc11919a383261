//! virtio-blk device: request execution against a `BlockBackend`, one
//! event-manager subscriber serving all of its queues.

use std::sync::Arc;

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes};
use vmm_sys_util::eventfd::EventFd;

use super::backend::BlockBackend;
use super::request::*;
use crate::guest_write::GuestWriteGuard;
use crate::virtio::pci_transport::TRANSPORT_FEATURES;
use crate::virtio::{
    read_config_bytes, ActivateError, ActivateParams, VirtioDevice, VirtioInterrupt,
    VIRTIO_ID_BLOCK,
};

use virtio_bindings::virtio_blk as vb;

pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << vb::VIRTIO_BLK_F_SEG_MAX;
pub const VIRTIO_BLK_F_RO: u64 = 1 << vb::VIRTIO_BLK_F_RO;
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << vb::VIRTIO_BLK_F_BLK_SIZE;
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << vb::VIRTIO_BLK_F_FLUSH;
pub const VIRTIO_BLK_F_MQ: u64 = 1 << vb::VIRTIO_BLK_F_MQ;
pub const VIRTIO_BLK_F_DISCARD: u64 = 1 << vb::VIRTIO_BLK_F_DISCARD;
pub const VIRTIO_BLK_F_WRITE_ZEROES: u64 = 1 << vb::VIRTIO_BLK_F_WRITE_ZEROES;

/// Bounce buffer size for data copies; guest descriptors may claim 4 GiB.
const CHUNK: usize = 64 * 1024;
const MAX_DWZ_SEGMENTS: u32 = 16;
const MAX_DWZ_SECTORS: u32 = 0x3f_ffff;
const CONFIG_LEN: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlkConfig {
    pub num_queues: u16,
    /// Power of two.
    pub queue_size: u16,
    pub read_only: bool,
    /// Returned by GET_ID; truncated to 20 bytes.
    pub serial: String,
    /// DISCARD granularity in 512-byte sectors (the encrypted backend sets
    /// its key segment size here).
    pub discard_alignment_sectors: u32,
}

impl Default for BlkConfig {
    fn default() -> Self {
        Self {
            num_queues: 1,
            queue_size: 256,
            read_only: false,
            serial: String::new(),
            discard_alignment_sectors: 8,
        }
    }
}

struct Active {
    mem: GuestWriteGuard,
    queues: Vec<Queue>,
    interrupt: Arc<dyn VirtioInterrupt>,
}

pub struct BlkDevice {
    backend: Arc<dyn BlockBackend>,
    cfg: BlkConfig,
    config_space: [u8; CONFIG_LEN],
    evts: Vec<EventFd>,
    active: Option<Active>,
}

impl BlkDevice {
    pub fn new(backend: Arc<dyn BlockBackend>, mut cfg: BlkConfig) -> std::io::Result<Self> {
        cfg.num_queues = cfg.num_queues.max(1);
        if !cfg.queue_size.is_power_of_two() {
            cfg.queue_size = 256;
        }
        cfg.read_only |= backend.read_only();
        let mut c = [0u8; CONFIG_LEN];
        let seg_max = u32::from(cfg.queue_size).saturating_sub(2).max(1);
        c[0..8].copy_from_slice(&(backend.len() / SECTOR_SIZE).to_le_bytes());
        c[12..16].copy_from_slice(&seg_max.to_le_bytes());
        c[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        c[34..36].copy_from_slice(&cfg.num_queues.to_le_bytes());
        c[36..40].copy_from_slice(&MAX_DWZ_SECTORS.to_le_bytes());
        c[40..44].copy_from_slice(&MAX_DWZ_SEGMENTS.to_le_bytes());
        c[44..48].copy_from_slice(&cfg.discard_alignment_sectors.max(1).to_le_bytes());
        c[48..52].copy_from_slice(&MAX_DWZ_SECTORS.to_le_bytes());
        c[52..56].copy_from_slice(&MAX_DWZ_SEGMENTS.to_le_bytes());
        c[56] = 1;
        let evts = crate::virtio::new_queue_events(usize::from(cfg.num_queues))?;
        Ok(Self {
            backend,
            cfg,
            config_space: c,
            evts,
            active: None,
        })
    }

    fn max_descs(&self) -> usize {
        usize::from(self.cfg.queue_size)
    }

    /// Serve every available request on queue `q`; returns how many.
    pub fn process_queue(&mut self, q: usize) -> usize {
        let max_descs = self.max_descs();
        let Some(act) = self.active.as_mut() else {
            return 0;
        };
        let Some(queue) = act.queues.get_mut(q).filter(|q| q.ready()) else {
            return 0;
        };
        let mut done = 0;
        // With EVENT_IDX the driver only kicks when avail_event says so:
        // drain, re-enable, and drain again if more arrived meanwhile.
        'outer: loop {
            if queue.disable_notification(act.mem.memory()).is_err() {
                break;
            }
            let before = done;
            while let Some(chain) = queue.pop_descriptor_chain(act.mem.memory()) {
                let head = chain.head_index();
                let (status, used) = match parse(chain, max_descs) {
                    Ok(req) => {
                        let (st, n) = execute(&*self.backend, &self.cfg, &act.mem, &req);
                        (Some((req.status, st)), n)
                    }
                    Err((e, status)) => {
                        tracing::warn!(device = "blk", queue = q, head, error = %e, "malformed request");
                        (status.map(|s| (s, VIRTIO_BLK_S_IOERR)), 0)
                    }
                };
                let mut len = used;
                if let Some((addr, st)) = status {
                    match act.mem.write(addr, &[st]) {
                        Ok(()) => len = len.saturating_add(1),
                        Err(e) => {
                            tracing::warn!(device = "blk", head, error = %e, "cannot write status")
                        }
                    }
                }
                if let Err(e) = queue.add_used(act.mem.memory(), head, len) {
                    tracing::warn!(device = "blk", error = %e, "failed to return used descriptor");
                    break 'outer;
                }
                done += 1;
            }
            // Nothing poppable although the avail index moved: the guest
            // published a bogus index; stop instead of spinning.
            if done == before || !queue.enable_notification(act.mem.memory()).unwrap_or(false) {
                break;
            }
        }
        if done > 0 && queue.needs_notification(act.mem.memory()).unwrap_or(true) {
            act.interrupt.signal_queue(q as u16);
        }
        done
    }
}

/// Run one request; returns the status and the bytes written to guest data
/// buffers.
fn execute(
    backend: &dyn BlockBackend,
    cfg: &BlkConfig,
    mem: &GuestWriteGuard,
    req: &Request,
) -> (u8, u32) {
    let fail = |why: &str, st: u8| {
        tracing::warn!(device = "blk", rtype = ?req.rtype, sector = req.sector, len = req.data_len(), "{why}");
        (st, 0)
    };
    let writes = matches!(
        req.rtype,
        RequestType::Out | RequestType::Discard | RequestType::WriteZeroes
    );
    if writes && cfg.read_only {
        return fail("write to read-only disk", VIRTIO_BLK_S_IOERR);
    }
    match req.rtype {
        RequestType::In | RequestType::Out => {
            let len = req.data_len();
            if len & (SECTOR_SIZE - 1) != 0 {
                return fail("data length not a multiple of 512", VIRTIO_BLK_S_IOERR);
            }
            let Some(start) = req.sector.checked_mul(SECTOR_SIZE) else {
                return fail("sector overflows", VIRTIO_BLK_S_IOERR);
            };
            if start.checked_add(len).is_none_or(|end| end > backend.len()) {
                return fail("request past the end of the disk", VIRTIO_BLK_S_IOERR);
            }
            match copy_data(backend, mem, req, start) {
                Ok(n) => (VIRTIO_BLK_S_OK, n),
                Err(e) => fail(&format!("I/O failed: {e}"), VIRTIO_BLK_S_IOERR),
            }
        }
        RequestType::Flush => match backend.flush() {
            Ok(()) => (VIRTIO_BLK_S_OK, 0),
            Err(e) => fail(&format!("flush failed: {e}"), VIRTIO_BLK_S_IOERR),
        },
        RequestType::GetId => {
            let Some((addr, l)) = req.data.first() else {
                return fail("GET_ID without a buffer", VIRTIO_BLK_S_IOERR);
            };
            let mut id = [0u8; VIRTIO_BLK_ID_BYTES];
            let s = cfg.serial.as_bytes();
            let n = s.len().min(VIRTIO_BLK_ID_BYTES);
            id[..n].copy_from_slice(&s[..n]);
            let n = (*l as usize).min(VIRTIO_BLK_ID_BYTES);
            match mem.write(*addr, &id[..n]) {
                Ok(()) => (VIRTIO_BLK_S_OK, n as u32),
                Err(_) => fail("GET_ID buffer not writable", VIRTIO_BLK_S_IOERR),
            }
        }
        RequestType::Discard | RequestType::WriteZeroes => {
            match discard_write_zeroes(backend, mem, req) {
                Ok(()) => (VIRTIO_BLK_S_OK, 0),
                Err(st) => fail("bad discard/write-zeroes request", st),
            }
        }
        RequestType::Unsupported(_) => fail("unsupported request type", VIRTIO_BLK_S_UNSUPP),
    }
}

fn copy_data(
    backend: &dyn BlockBackend,
    mem: &GuestWriteGuard,
    req: &Request,
    start: u64,
) -> Result<u32, String> {
    let mut buf = vec![0u8; CHUNK];
    let mut off = start;
    let mut to_guest: u64 = 0;
    for (addr, len) in &req.data {
        let mut done: u64 = 0;
        while done < u64::from(*len) {
            let n = (u64::from(*len) - done).min(CHUNK as u64) as usize;
            let ga = addr.checked_add(done).ok_or("guest address overflows")?;
            let b = &mut buf[..n];
            if req.rtype == RequestType::In {
                backend.read_at(b, off).map_err(|e| e.to_string())?;
                mem.write(ga, b).map_err(|e| e.to_string())?;
                to_guest += n as u64;
            } else {
                mem.read(ga, b).map_err(|e| e.to_string())?;
                backend.write_at(b, off).map_err(|e| e.to_string())?;
            }
            done += n as u64;
            off += n as u64;
        }
    }
    Ok(u32::try_from(to_guest).unwrap_or(u32::MAX))
}

fn discard_write_zeroes(
    backend: &dyn BlockBackend,
    mem: &GuestWriteGuard,
    req: &Request,
) -> Result<(), u8> {
    let total = req.data_len();
    if total == 0
        || total & (DWZ_SEGMENT_SIZE - 1) != 0
        || total / DWZ_SEGMENT_SIZE > u64::from(MAX_DWZ_SEGMENTS)
    {
        return Err(VIRTIO_BLK_S_IOERR);
    }
    // Gather the segment array (it may span descriptors), validate all, then act.
    let mut raw = Vec::with_capacity(total as usize);
    for (addr, len) in &req.data {
        let mut b = vec![0u8; *len as usize];
        mem.memory()
            .read_slice(&mut b, *addr)
            .map_err(|_| VIRTIO_BLK_S_IOERR)?;
        raw.extend_from_slice(&b);
    }
    let mut segs = Vec::new();
    for s in raw.chunks_exact(DWZ_SEGMENT_SIZE as usize) {
        let sector = u64::from_le_bytes(s[0..8].try_into().map_err(|_| VIRTIO_BLK_S_IOERR)?);
        let num = u32::from_le_bytes(s[8..12].try_into().map_err(|_| VIRTIO_BLK_S_IOERR)?);
        let flags = u32::from_le_bytes(s[12..16].try_into().map_err(|_| VIRTIO_BLK_S_IOERR)?);
        let allowed = if req.rtype == RequestType::WriteZeroes {
            DWZ_FLAG_UNMAP
        } else {
            0
        };
        if flags & !allowed != 0 {
            return Err(VIRTIO_BLK_S_UNSUPP);
        }
        if num > MAX_DWZ_SECTORS {
            return Err(VIRTIO_BLK_S_IOERR);
        }
        let off = sector.checked_mul(SECTOR_SIZE).ok_or(VIRTIO_BLK_S_IOERR)?;
        let len = u64::from(num) * SECTOR_SIZE;
        if off.checked_add(len).is_none_or(|e| e > backend.len()) {
            return Err(VIRTIO_BLK_S_IOERR);
        }
        segs.push((off, len, flags & DWZ_FLAG_UNMAP != 0));
    }
    for (off, len, unmap) in segs {
        let r = if req.rtype == RequestType::Discard {
            backend.discard(off, len)
        } else {
            backend.write_zeroes(off, len, unmap)
        };
        r.map_err(|_| VIRTIO_BLK_S_IOERR)?;
    }
    Ok(())
}

impl VirtioDevice for BlkDevice {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }
    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![self.cfg.queue_size; usize::from(self.cfg.num_queues)]
    }
    fn features(&self) -> u64 {
        let mut f = TRANSPORT_FEATURES
            | VIRTIO_BLK_F_SEG_MAX
            | VIRTIO_BLK_F_BLK_SIZE
            | VIRTIO_BLK_F_FLUSH
            | VIRTIO_BLK_F_DISCARD
            | VIRTIO_BLK_F_WRITE_ZEROES
            | VIRTIO_BLK_F_MQ;
        if self.cfg.read_only {
            f |= VIRTIO_BLK_F_RO;
        }
        f
    }
    fn queue_events(&self) -> &[EventFd] {
        &self.evts
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config_space, offset, data)
    }
    fn activate(&mut self, params: ActivateParams) -> Result<(), ActivateError> {
        if !params.queues.first().is_some_and(|q| q.ready()) {
            return Err(ActivateError::QueueNotReady(0));
        }
        self.active = Some(Active {
            mem: params.mem,
            queues: params.queues,
            interrupt: params.interrupt,
        });
        Ok(())
    }
    fn reset(&mut self) {
        self.active = None;
    }
    fn pci_class(&self) -> (u8, u8) {
        (0x01, 0x80)
    }
}

impl MutEventSubscriber for BlkDevice {
    fn init(&mut self, ops: &mut EventOps) {
        for (i, e) in self.evts.iter().enumerate() {
            if let Err(err) = ops.add(Events::with_data(e, i as u32, EventSet::IN)) {
                tracing::error!(device = "blk", error = ?err, "cannot register with event manager");
            }
        }
    }

    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        let q = events.data() as usize;
        if let Some(e) = self.evts.get(q) {
            let _ = e.read();
            self.process_queue(q);
        }
    }
}
