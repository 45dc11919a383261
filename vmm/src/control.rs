//! Run state shared by the vCPU threads, the API and the main thread:
//! running, paused or stopping, and why the VM stopped.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use vmm_sys_util::eventfd::EventFd;

use crate::introspect::VcpuSnapshot;

/// Why a VM stopped running.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum VmExit {
    /// The guest asked to reboot (i8042 reset or a KVM reset event).
    Reset,
    /// The guest powered off, or the API asked for shutdown.
    Shutdown,
    /// A vCPU triple-faulted.
    TripleFault,
    /// A vCPU halted with no interrupt controller to wake it (tiny guests).
    Halted,
    /// The VM could not continue.
    Error(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RunState {
    Running,
    Paused,
    Stopping,
}

/// What a parked vCPU left for the inspector (see [`crate::introspect`]).
pub type Snapshot = Result<VcpuSnapshot, String>;

struct Inner {
    state: RunState,
    parked: usize,
    exit: Option<VmExit>,
    /// By vCPU id; filled as vCPUs park, emptied when they resume.
    snapshots: Vec<Option<Snapshot>>,
}

pub struct VmControl {
    inner: Mutex<Inner>,
    changed: Condvar,
    /// Written once when the VM must stop; the main thread waits on it.
    pub exit_evt: EventFd,
}

impl VmControl {
    pub fn new() -> std::io::Result<Self> {
        Ok(VmControl {
            inner: Mutex::new(Inner {
                state: RunState::Running,
                parked: 0,
                exit: None,
                snapshots: Vec::new(),
            }),
            changed: Condvar::new(),
            exit_evt: EventFd::new(libc::EFD_CLOEXEC)?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> RunState {
        self.lock().state
    }

    pub fn exit_reason(&self) -> Option<VmExit> {
        self.lock().exit.clone()
    }

    /// Records the first reason to stop and wakes everyone.
    pub fn request_exit(&self, reason: VmExit) {
        let mut inner = self.lock();
        if inner.exit.is_none() {
            inner.exit = Some(reason);
        }
        inner.state = RunState::Stopping;
        inner.snapshots.clear();
        drop(inner);
        self.changed.notify_all();
        let _ = self.exit_evt.write(1);
    }

    /// Asks vCPUs to park; false if the VM is stopping.
    pub fn pause(&self) -> bool {
        let mut inner = self.lock();
        if inner.state == RunState::Stopping {
            return false;
        }
        inner.state = RunState::Paused;
        true
    }

    /// Lets parked vCPUs run again; false if the VM is stopping.
    pub fn resume(&self) -> bool {
        let mut inner = self.lock();
        if inner.state == RunState::Stopping {
            return false;
        }
        inner.state = RunState::Running;
        inner.snapshots.clear();
        drop(inner);
        self.changed.notify_all();
        true
    }

    /// Waits until `count` vCPUs are parked (or the VM stops), up to `timeout`.
    pub fn wait_parked(&self, count: usize, timeout: Duration) -> bool {
        let inner = self.lock();
        let (inner, _) = self
            .changed
            .wait_timeout_while(inner, timeout, |i| {
                i.parked < count && i.state == RunState::Paused
            })
            .unwrap_or_else(|p| p.into_inner());
        inner.parked >= count
    }

    /// Called by a vCPU thread between runs: parks while paused. Returns
    /// false when the vCPU must stop.
    pub fn checkpoint(&self) -> bool {
        self.park(None::<(u8, fn() -> Snapshot)>)
    }

    /// Like [`Self::checkpoint`], but before parking the vCPU stores the
    /// state `capture` returns as vCPU `id`'s snapshot. It is in place
    /// before the vCPU counts as parked, so once [`Self::wait_parked`]
    /// succeeds every snapshot is there and stays valid until resume.
    pub fn checkpoint_with(&self, id: u8, capture: impl FnOnce() -> Snapshot) -> bool {
        self.park(Some((id, capture)))
    }

    fn park(&self, capture: Option<(u8, impl FnOnce() -> Snapshot)>) -> bool {
        let mut inner = self.lock();
        if inner.state == RunState::Paused {
            if let Some((id, capture)) = capture {
                // Under the lock: a few ioctls, and it keeps a resume from
                // slipping between the capture and the parking.
                let snap = capture();
                let i = usize::from(id);
                if inner.snapshots.len() <= i {
                    inner.snapshots.resize(i + 1, None);
                }
                inner.snapshots[i] = Some(snap);
            }
            inner.parked += 1;
            self.changed.notify_all();
            while inner.state == RunState::Paused {
                inner = self.changed.wait(inner).unwrap_or_else(|p| p.into_inner());
            }
            inner.parked -= 1;
        }
        inner.state != RunState::Stopping
    }

    /// The snapshots of vCPUs `0..count` while paused (a vCPU that left
    /// none, or a VM that is not paused, gives an error entry).
    pub fn snapshots(&self, count: usize) -> Vec<Snapshot> {
        let inner = self.lock();
        (0..count)
            .map(|i| match inner.snapshots.get(i) {
                Some(Some(s)) if inner.state == RunState::Paused => s.clone(),
                _ => Err(format!("vCPU {i} left no snapshot (not parked)")),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn pause_parks_and_resume_releases() {
        let ctl = Arc::new(VmControl::new().unwrap());
        assert!(ctl.pause());
        let c = ctl.clone();
        let t = std::thread::spawn(move || c.checkpoint());
        assert!(ctl.wait_parked(1, Duration::from_secs(5)));
        assert!(ctl.resume());
        assert!(t.join().unwrap());
    }

    #[test]
    fn parked_vcpus_leave_snapshots_until_resume() {
        let ctl = Arc::new(VmControl::new().unwrap());
        assert!(ctl.pause());
        let threads: Vec<_> = (0..2u8)
            .map(|id| {
                let c = ctl.clone();
                std::thread::spawn(move || {
                    c.checkpoint_with(id, || {
                        Ok(VcpuSnapshot {
                            regs: Default::default(),
                            sregs: Default::default(),
                            msrs: vec![(0xc000_0082, u64::from(id))],
                        })
                    })
                })
            })
            .collect();
        assert!(ctl.wait_parked(2, Duration::from_secs(5)));
        let snaps = ctl.snapshots(3);
        assert_eq!(snaps[0].as_ref().unwrap().msrs, [(0xc000_0082, 0)]);
        assert_eq!(snaps[1].as_ref().unwrap().msrs, [(0xc000_0082, 1)]);
        assert!(snaps[2].is_err(), "no vCPU 2");
        assert!(ctl.resume());
        for t in threads {
            assert!(t.join().unwrap());
        }
        assert!(
            ctl.snapshots(2).iter().all(Result::is_err),
            "stale after resume"
        );
    }

    #[test]
    fn first_exit_reason_wins() {
        let ctl = VmControl::new().unwrap();
        ctl.request_exit(VmExit::Reset);
        ctl.request_exit(VmExit::Shutdown);
        assert_eq!(ctl.exit_reason(), Some(VmExit::Reset));
        assert!(!ctl.checkpoint());
        assert!(!ctl.pause());
    }
}
