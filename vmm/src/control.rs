//! Run state shared by the vCPU threads, the API and the main thread:
//! running, paused or stopping, and why the VM stopped.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use vmm_sys_util::eventfd::EventFd;

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

struct Inner {
    state: RunState,
    parked: usize,
    exit: Option<VmExit>,
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
        let mut inner = self.lock();
        if inner.state == RunState::Paused {
            inner.parked += 1;
            self.changed.notify_all();
            while inner.state == RunState::Paused {
                inner = self.changed.wait(inner).unwrap_or_else(|p| p.into_inner());
            }
            inner.parked -= 1;
        }
        inner.state != RunState::Stopping
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
    fn first_exit_reason_wins() {
        let ctl = VmControl::new().unwrap();
        ctl.request_exit(VmExit::Reset);
        ctl.request_exit(VmExit::Shutdown);
        assert_eq!(ctl.exit_reason(), Some(VmExit::Reset));
        assert!(!ctl.checkpoint());
        assert!(!ctl.pause());
    }
}
