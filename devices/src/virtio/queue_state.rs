//! Per-queue state the transport keeps: the driver-configured queue and its
//! MSI-X vector (shared with the interrupt path).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use virtio_queue::{Queue, QueueT};

use super::VIRTIO_MSI_NO_VECTOR;

/// Vectors for the config change interrupt and each queue.
#[derive(Debug)]
pub struct Vectors {
    pub config: AtomicU16,
    pub queues: Vec<AtomicU16>,
}

impl Vectors {
    pub fn new(num_queues: usize) -> Arc<Self> {
        Arc::new(Self {
            config: AtomicU16::new(VIRTIO_MSI_NO_VECTOR),
            queues: (0..num_queues)
                .map(|_| AtomicU16::new(VIRTIO_MSI_NO_VECTOR))
                .collect(),
        })
    }

    pub fn queue(&self, q: u16) -> u16 {
        self.queues
            .get(usize::from(q))
            .map_or(VIRTIO_MSI_NO_VECTOR, |v| v.load(Ordering::Acquire))
    }

    pub fn reset(&self) {
        self.config.store(VIRTIO_MSI_NO_VECTOR, Ordering::Release);
        for v in &self.queues {
            v.store(VIRTIO_MSI_NO_VECTOR, Ordering::Release);
        }
    }
}

/// The queues as the driver configures them through common cfg.
pub struct QueueSet {
    pub queues: Vec<Queue>,
}

impl QueueSet {
    /// Max sizes must be powers of two; others fall back to 256.
    pub fn new(max_sizes: &[u16]) -> Self {
        let queues = max_sizes
            .iter()
            .map(|m| Queue::new(*m).or_else(|_| Queue::new(256)))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_default();
        Self { queues }
    }

    pub fn get(&self, q: u16) -> Option<&Queue> {
        self.queues.get(usize::from(q))
    }

    pub fn get_mut(&mut self, q: u16) -> Option<&mut Queue> {
        self.queues.get_mut(usize::from(q))
    }

    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    pub fn reset(&mut self) {
        for q in &mut self.queues {
            q.reset();
        }
    }

    /// Copies for the device: a `Queue` is rebuilt from its state so the
    /// transport keeps its own view for common cfg reads. A state the queue
    /// crate rejects becomes a disabled queue.
    pub fn snapshot(&self, event_idx: bool) -> Vec<Queue> {
        self.queues
            .iter()
            .map(|q| {
                let mut c = Queue::try_from(q.state()).unwrap_or_default();
                c.set_event_idx(event_idx);
                c
            })
            .collect()
    }
}
