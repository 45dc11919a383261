//! vCPU threads: run the vCPU, dispatch its exits to the buses, and stop or
//! park when the VM's control state says so.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kvm_bindings::{kvm_debug_exit_arch, KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

use crate::bus::Bus;
use crate::control::{RunState, VmControl, VmExit};

/// Signal used to knock a vCPU thread out of KVM_RUN.
pub fn kick_signal() -> i32 {
    SIGRTMIN()
}

/// Installs the (empty) kick handler; its only effect is KVM_RUN's EINTR.
pub fn install_kick_handler() -> std::io::Result<()> {
    extern "C" fn noop(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
    register_signal_handler(kick_signal(), noop).map_err(std::io::Error::other)
}

/// The buses a vCPU dispatches I/O exits to.
pub struct Buses {
    pub pio: Bus,
    pub mmio: Bus,
}

/// What one KVM_RUN ended with, once I/O has been handled.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Keep running.
    Continue,
    /// The vCPU hit a hardware breakpoint or single step.
    Debug(kvm_debug_exit_arch),
    /// The VM must stop.
    Exit(VmExit),
}

pub struct Vcpu {
    pub id: u8,
    pub fd: VcpuFd,
    buses: Arc<Buses>,
    /// Without an in-kernel irqchip, HLT comes to userspace and means "done".
    pub halt_exits: bool,
}

impl Vcpu {
    pub fn new(id: u8, fd: VcpuFd, buses: Arc<Buses>) -> Self {
        Vcpu {
            id,
            fd,
            buses,
            halt_exits: false,
        }
    }

    /// Runs the vCPU until its next exit and handles it.
    pub fn step(&mut self) -> Step {
        let buses = &self.buses;
        match self.fd.run() {
            Ok(VcpuExit::IoOut(port, data)) => {
                buses.pio.write(u64::from(port), data);
                Step::Continue
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                buses.pio.read(u64::from(port), data);
                Step::Continue
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                buses.mmio.read(addr, data);
                Step::Continue
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                if !buses.mmio.write(addr, data) {
                    tracing::debug!(
                        vcpu = self.id,
                        addr,
                        len = data.len(),
                        "unclaimed MMIO write"
                    );
                }
                Step::Continue
            }
            Ok(VcpuExit::Debug(arch)) => Step::Debug(arch),
            Ok(VcpuExit::Hlt) if self.halt_exits => Step::Exit(VmExit::Halted),
            Ok(VcpuExit::Hlt) => Step::Continue,
            Ok(VcpuExit::Shutdown) => Step::Exit(VmExit::TripleFault),
            Ok(VcpuExit::SystemEvent(kind, _)) => Step::Exit(match kind {
                KVM_SYSTEM_EVENT_RESET => VmExit::Reset,
                KVM_SYSTEM_EVENT_CRASH => VmExit::Error("guest crash event".into()),
                _ => VmExit::Shutdown,
            }),
            Ok(VcpuExit::FailEntry(reason, cpu)) => Step::Exit(VmExit::Error(format!(
                "vCPU {} failed to enter the guest (reason {reason:#x}, cpu {cpu})",
                self.id
            ))),
            Ok(VcpuExit::InternalError) => Step::Exit(VmExit::Error(format!(
                "KVM internal error on vCPU {}",
                self.id
            ))),
            Ok(other) => {
                tracing::warn!(vcpu = self.id, exit = ?other, "unexpected vCPU exit");
                Step::Continue
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                self.fd.set_kvm_immediate_exit(0);
                Step::Continue
            }
            Err(e) => Step::Exit(VmExit::Error(format!("KVM_RUN on vCPU {}: {e}", self.id))),
        }
    }

    /// The thread body: run until the VM stops, parking while paused.
    /// Each time it parks, the vCPU leaves a snapshot of its state for the
    /// inspector (its fd is usable only here, on its own thread).
    pub fn run(mut self, control: Arc<VmControl>) {
        let id = self.id;
        loop {
            if control.state() == RunState::Paused {
                if let Step::Exit(reason) = self.settle() {
                    control.request_exit(reason);
                    break;
                }
            }
            if !control.checkpoint_with(id, || crate::introspect::capture(&self.fd)) {
                break;
            }
            match self.step() {
                Step::Continue => {}
                Step::Debug(arch) => {
                    tracing::debug!(vcpu = self.id, pc = arch.pc, "debug exit");
                }
                Step::Exit(reason) => {
                    control.request_exit(reason);
                    break;
                }
            }
        }
    }

    /// Lets KVM finish an I/O or MMIO instruction whose exit was just
    /// handled (KVM completes it on the next `KVM_RUN`), without running
    /// the guest further: registers read afterwards are consistent. Any
    /// exit this produces is handled like any other.
    pub fn settle(&mut self) -> Step {
        self.fd.set_kvm_immediate_exit(1);
        let step = self.step();
        self.fd.set_kvm_immediate_exit(0);
        step
    }
}

/// Starts a vCPU thread named `vcpu<N>`.
pub fn spawn(vcpu: Vcpu, control: Arc<VmControl>) -> std::io::Result<JoinHandle<()>> {
    crate::threads::spawn(format!("vcpu{}", vcpu.id), move || vcpu.run(control))
}

/// Kicks every still-running vCPU thread out of KVM_RUN until `done` holds.
/// Repeats because a kick that lands just before KVM_RUN is lost.
pub fn kick_until(threads: &[JoinHandle<()>], mut done: impl FnMut() -> bool) {
    use std::os::unix::thread::JoinHandleExt;
    while !done() {
        for t in threads.iter().filter(|t| !t.is_finished()) {
            // SAFETY: the pthread is alive (not finished, not joined yet).
            unsafe { libc::pthread_kill(t.as_pthread_t(), kick_signal()) };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
