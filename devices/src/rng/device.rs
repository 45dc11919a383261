//! virtio-rng: each device-writable descriptor is filled from the entropy
//! source, throttled by an optional token bucket; when throttled the device
//! parks until a timerfd fires instead of spinning.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestAddress;
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::timerfd::TimerFd;

use super::entropy::EntropySource;
use super::rate_limiter::{RateLimiterConfig, TokenBucket};
use crate::guest_write::GuestWriteGuard;
use crate::virtio::pci_transport::TRANSPORT_FEATURES;
use crate::virtio::{ActivateError, ActivateParams, VirtioDevice, VirtioInterrupt, VIRTIO_ID_RNG};

const QUEUE_SIZE: u16 = 256;
/// Upper bound per request so a guest cannot make us allocate 4 GiB.
pub const MAX_BYTES_PER_REQUEST: u64 = 64 * 1024;
const TIMER_DATA: u32 = u32::MAX;

struct Active {
    mem: GuestWriteGuard,
    queue: Queue,
    interrupt: Arc<dyn VirtioInterrupt>,
}

pub struct RngDevice {
    source: Box<dyn EntropySource>,
    limiter_cfg: Option<RateLimiterConfig>,
    limiter: Option<TokenBucket>,
    evts: Vec<EventFd>,
    timer: TimerFd,
    throttled: bool,
    active: Option<Active>,
}

impl RngDevice {
    pub fn new(
        source: Box<dyn EntropySource>,
        limiter: Option<RateLimiterConfig>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            source,
            limiter_cfg: limiter,
            limiter: limiter.and_then(TokenBucket::new),
            evts: crate::virtio::new_queue_events(1)?,
            timer: TimerFd::new()?,
            throttled: false,
            active: None,
        })
    }

    /// Whether the device is waiting for the rate limiter.
    pub fn is_throttled(&self) -> bool {
        self.throttled
    }

    /// Serve every available request; returns the number completed.
    pub fn process_queue(&mut self) -> usize {
        let Some(act) = self.active.as_mut() else {
            return 0;
        };
        let mut done = 0;
        let mut wait = None;
        // Drain, re-enable notifications (EVENT_IDX), drain again if needed.
        'outer: loop {
            if act.queue.disable_notification(act.mem.memory()).is_err() {
                break;
            }
            let before = done;
            while let Some(chain) = act.queue.pop_descriptor_chain(act.mem.memory()) {
                let head = chain.head_index();
                let mut written: u64 = 0;
                let mut throttled = false;
                for desc in chain {
                    if !desc.is_write_only() {
                        tracing::warn!(
                            device = "rng",
                            head,
                            "device-readable descriptor in rng request; skipped"
                        );
                        continue;
                    }
                    let want = u64::from(desc.len()).min(MAX_BYTES_PER_REQUEST - written);
                    if want == 0 {
                        continue;
                    }
                    let grant = match self.limiter.as_mut() {
                        Some(l) => l.take(want),
                        None => want,
                    };
                    if grant == 0 {
                        throttled = true;
                        break;
                    }
                    let mut buf = vec![0u8; grant as usize];
                    if let Err(e) = self.source.fill(&mut buf) {
                        tracing::warn!(device = "rng", error = %e, "entropy source failed");
                        break;
                    }
                    if let Err(e) = act.mem.write(GuestAddress(desc.addr().0), &buf) {
                        tracing::warn!(device = "rng", head, error = %e, "bad rng buffer");
                        break;
                    }
                    written += grant;
                    if grant < want || written >= MAX_BYTES_PER_REQUEST {
                        throttled = grant < want;
                        break;
                    }
                }
                if throttled && written == 0 {
                    // Nothing granted: give the chain back and sleep on the timer.
                    let prev = act.queue.next_avail().wrapping_sub(1);
                    act.queue.set_next_avail(prev);
                    wait = self.limiter.as_ref().map(|l| l.wait_for(1024));
                    break 'outer;
                }
                if let Err(e) = act.queue.add_used(act.mem.memory(), head, written as u32) {
                    tracing::warn!(device = "rng", error = %e, "failed to return used descriptor");
                    break 'outer;
                }
                done += 1;
                if throttled {
                    wait = self.limiter.as_ref().map(|l| l.wait_for(1024));
                    break 'outer;
                }
            }
            // A bogus avail index yields nothing to pop: stop, do not spin.
            if done == before
                || !act
                    .queue
                    .enable_notification(act.mem.memory())
                    .unwrap_or(false)
            {
                break;
            }
        }
        if done > 0
            && act
                .queue
                .needs_notification(act.mem.memory())
                .unwrap_or(true)
        {
            act.interrupt.signal_queue(0);
        }
        if let Some(d) = wait {
            self.throttled = true;
            if let Err(e) = self.timer.reset(d, None) {
                tracing::warn!(device = "rng", error = %e, "cannot arm rate limiter timer");
                self.throttled = false;
            }
        }
        done
    }

    fn on_timer(&mut self) {
        let _ = self.timer.wait();
        self.throttled = false;
        self.process_queue();
    }
}

impl VirtioDevice for RngDevice {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_RNG
    }
    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE]
    }
    fn features(&self) -> u64 {
        TRANSPORT_FEATURES
    }
    fn queue_events(&self) -> &[EventFd] {
        &self.evts
    }
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0)
    }
    fn activate(&mut self, params: ActivateParams) -> Result<(), ActivateError> {
        let queue = params
            .queues
            .into_iter()
            .next()
            .filter(|q| q.ready())
            .ok_or(ActivateError::QueueNotReady(0))?;
        self.active = Some(Active {
            mem: params.mem,
            queue,
            interrupt: params.interrupt,
        });
        Ok(())
    }
    fn reset(&mut self) {
        self.active = None;
        self.throttled = false;
        let _ = self.timer.clear();
        self.limiter = self.limiter_cfg.and_then(TokenBucket::new);
    }
}

impl MutEventSubscriber for RngDevice {
    fn init(&mut self, ops: &mut EventOps) {
        for ev in [
            Events::with_data(&self.evts[0], 0, EventSet::IN),
            Events::with_data(&self.timer, TIMER_DATA, EventSet::IN),
        ] {
            if let Err(e) = ops.add(ev) {
                tracing::error!(device = "rng", error = ?e, "cannot register with event manager");
            }
        }
    }

    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        if events.data() == TIMER_DATA && events.fd() == self.timer.as_raw_fd() {
            self.on_timer();
            return;
        }
        let _ = self.evts[0].read();
        if !self.throttled {
            self.process_queue();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_write::ProtectedRanges;
    use crate::rng::GetrandomSource;
    use crate::test_utils::*;
    use std::sync::atomic::Ordering;
    use vm_memory::Bytes;

    struct Fixed(u8);
    impl EntropySource for Fixed {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), crate::rng::entropy::EntropyError> {
            buf.fill(self.0);
            Ok(())
        }
    }

    fn rng(limit: Option<RateLimiterConfig>) -> RngDevice {
        RngDevice::new(Box::new(Fixed(0xab)), limit).unwrap()
    }

    #[test]
    fn fills_writable_buffers() {
        let mem = memory();
        let mut d = Driver::new(&mem, 16);
        let irq = Arc::new(CountingInterrupt::default());
        let mut dev = rng(None);
        dev.activate(params(
            &mem,
            &ProtectedRanges::new(),
            vec![d.queue()],
            irq.clone(),
        ))
        .unwrap();
        let h = d.chain(&[(0x10000, 64, F_WRITE), (0x20000, 32, F_WRITE)]);
        assert_eq!(dev.process_queue(), 1);
        assert_eq!(d.used(), vec![(u32::from(h), 96)]);
        let mut b = [0u8; 64];
        mem.read_slice(&mut b, GuestAddress(0x10000)).unwrap();
        assert_eq!(b, [0xab; 64]);
        assert_eq!(irq.queue.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn getrandom_source_fills() {
        let mut b = [0u8; 4096];
        GetrandomSource.fill(&mut b).unwrap();
        assert!(b.iter().any(|x| *x != 0));
    }

    #[test]
    fn hostile_chains_get_zero_length_and_device_keeps_serving() {
        let mem = memory();
        let prot = ProtectedRanges::new();
        prot.add(0x30000, 0x1000);
        let mut d = Driver::new(&mem, 16);
        let irq = Arc::new(CountingInterrupt::default());
        let mut dev = rng(None);
        dev.activate(params(&mem, &prot, vec![d.queue()], irq))
            .unwrap();
        // Outside guest memory.
        d.chain(&[(MEM_SIZE - 8, 64, F_WRITE)]);
        // Wrong direction (device-readable only).
        d.chain(&[(0x10000, 64, 0)]);
        // Into a protected range (kernel text stand-in).
        d.chain(&[(0x30800, 64, F_WRITE)]);
        // Huge length is capped, not allocated.
        d.chain(&[(0x40000, u32::MAX, F_WRITE)]);
        // A descriptor loop: 2 -> 3 -> 2 ...
        let n = d.next_index();
        d.raw(&[
            Driver::desc(0x50000, 16, F_WRITE | F_NEXT, n + 1),
            Driver::desc(0x50010, 16, F_WRITE | F_NEXT, n),
        ]);
        let good = d.chain(&[(0x60000, 8, F_WRITE)]);
        dev.process_queue();
        let used = d.used();
        assert_eq!(used.len(), 6);
        assert_eq!(used[0].1, 0);
        assert_eq!(used[1].1, 0);
        assert_eq!(used[2].1, 0);
        assert_eq!(
            u64::from(used[3].1),
            MAX_BYTES_PER_REQUEST.min(MEM_SIZE - 0x40000)
        );
        // The loop ends after at most queue-size descriptors.
        assert!(used[4].1 <= 16 * 16);
        assert_eq!(used[5], (u32::from(good), 8));
        let mut b = [0u8; 64];
        mem.read_slice(&mut b, GuestAddress(0x30800)).unwrap();
        assert_eq!(b, [0; 64], "protected memory untouched");
    }

    #[test]
    fn rate_limited_device_defers_with_timer() {
        let mem = memory();
        let mut d = Driver::new(&mem, 16);
        let irq = Arc::new(CountingInterrupt::default());
        let cfg = RateLimiterConfig {
            bytes_per_sec: 10_000,
            burst: 100,
            one_time_burst: 0,
        };
        let mut dev = rng(Some(cfg));
        dev.activate(params(&mem, &ProtectedRanges::new(), vec![d.queue()], irq))
            .unwrap();
        d.chain(&[(0x10000, 64, F_WRITE)]);
        d.chain(&[(0x20000, 64, F_WRITE)]);
        d.chain(&[(0x30000, 64, F_WRITE)]);
        dev.process_queue();
        // 100 byte burst: one full and one partial request, then throttled.
        let used = d.used();
        assert_eq!(used.len(), 2);
        assert_eq!(used[0], (0, 64));
        assert!((36..40).contains(&used[1].1), "{used:?}");
        assert!(dev.is_throttled());
        // The timer wakes the device, which serves the rest.
        std::thread::sleep(std::time::Duration::from_millis(15));
        dev.on_timer();
        assert_eq!(d.used(), vec![(2, 64)]);
        assert!(!dev.is_throttled());
    }

    #[test]
    fn runs_on_event_manager() {
        use event_manager::{EventManager, SubscriberOps};
        use std::sync::Mutex;
        let mem = memory();
        let mut d = Driver::new(&mem, 16);
        let dev = Arc::new(Mutex::new(rng(None)));
        let mut em = EventManager::<Arc<Mutex<RngDevice>>>::new().unwrap();
        em.add_subscriber(dev.clone());
        let irq = Arc::new(CountingInterrupt::default());
        dev.lock()
            .unwrap()
            .activate(params(&mem, &ProtectedRanges::new(), vec![d.queue()], irq))
            .unwrap();
        d.chain(&[(0x10000, 16, F_WRITE)]);
        dev.lock().unwrap().queue_events()[0].write(1).unwrap();
        assert_eq!(em.run_with_timeout(1000).unwrap(), 1);
        assert_eq!(d.used(), vec![(0, 16)]);
    }
}
