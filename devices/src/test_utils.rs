//! Helpers for driving devices through virtio-queue's mock split queues.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use virtio_queue::desc::split::Descriptor as SplitDescriptor;
use virtio_queue::desc::RawDescriptor;
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::Queue;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::guest_write::{GuestWriteGuard, ProtectedRanges};
use crate::virtio::{ActivateParams, VirtioInterrupt, VIRTIO_F_VERSION_1};

pub const MEM_SIZE: u64 = 0x10_0000;
pub const F_NEXT: u16 = 1;
pub const F_WRITE: u16 = 2;

#[derive(Default)]
pub struct CountingInterrupt {
    pub queue: AtomicUsize,
    pub config: AtomicUsize,
}

impl VirtioInterrupt for CountingInterrupt {
    fn signal_queue(&self, _queue: u16) {
        self.queue.fetch_add(1, Ordering::SeqCst);
    }
    fn signal_config(&self) {
        self.config.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap()
}

pub fn params(
    mem: &GuestMemoryMmap,
    prot: &ProtectedRanges,
    queues: Vec<Queue>,
    irq: Arc<CountingInterrupt>,
) -> ActivateParams {
    ActivateParams {
        mem: GuestWriteGuard::new(mem.clone(), prot.clone()),
        interrupt: irq,
        acked_features: VIRTIO_F_VERSION_1,
        queues,
    }
}

/// Tracks where the next chain goes in the descriptor table.
pub struct Driver<'a> {
    pub mq: MockSplitQueue<'a, GuestMemoryMmap>,
    next: u16,
    used_seen: u16,
}

impl<'a> Driver<'a> {
    pub fn new(mem: &'a GuestMemoryMmap, size: u16) -> Self {
        Self {
            mq: MockSplitQueue::create(mem, GuestAddress(0), size),
            next: 0,
            used_seen: 0,
        }
    }

    pub fn queue(&self) -> Queue {
        self.mq.create_queue::<Queue>().unwrap()
    }

    /// Add one chain of (addr, len, flags); NEXT/next are filled in.
    pub fn chain(&mut self, descs: &[(u64, u32, u16)]) -> u16 {
        let head = self.next;
        let raw: Vec<RawDescriptor> = descs
            .iter()
            .enumerate()
            .map(|(i, (a, l, f))| {
                let last = i + 1 == descs.len();
                let flags = if last { *f & !F_NEXT } else { *f | F_NEXT };
                RawDescriptor::from(SplitDescriptor::new(*a, *l, flags, head + i as u16 + 1))
            })
            .collect();
        self.raw(&raw);
        head
    }

    /// Add descriptors exactly as given (for loops and other malformations).
    pub fn raw(&mut self, descs: &[RawDescriptor]) {
        self.mq.add_desc_chains(descs, self.next).unwrap();
        self.next += descs.len() as u16;
    }

    pub fn desc(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
        RawDescriptor::from(SplitDescriptor::new(addr, len, flags, next))
    }

    /// Used entries added since the last call: (head id, len).
    pub fn used(&mut self) -> Vec<(u32, u32)> {
        let idx = self.mq.used().idx().load();
        let mut out = Vec::new();
        while self.used_seen != idx {
            let e = self
                .mq
                .used()
                .ring()
                .ref_at(usize::from(self.used_seen % self.size()))
                .unwrap()
                .load();
            out.push((e.id(), e.len()));
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        out
    }

    fn size(&self) -> u16 {
        self.mq.desc_table().total_size() as u16 / 16
    }

    pub fn next_index(&self) -> u16 {
        self.next
    }
}
