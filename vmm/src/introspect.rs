//! Live introspection: the monitor's readers on a running vigil VM.
//!
//! Consistency comes from the vCPU threads themselves. A vCPU's file
//! descriptor belongs to its thread, so when the VM is paused each vCPU
//! thread, just before it parks, lets KVM complete an I/O instruction
//! still pending (one `KVM_RUN` with `immediate_exit`, its exit handled
//! as usual), then stores a [`VcpuSnapshot`] of its registers, system
//! registers and the MSRs the monitor reads into
//! [`crate::control::VmControl`]. A pause returns only once every vCPU has
//! parked, so every snapshot is in place and no vCPU runs while the
//! readers walk guest memory. Resuming drops the snapshots.
//!
//! Guest RAM stays mapped while the inspector reads it: `Vm::run` frees it
//! only after the VM reached `Stopping`, which nothing can request while
//! every vCPU is parked and the (single) API thread is inspecting.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, Msrs};
use kvm_ioctls::VcpuFd;
use serde::{Deserialize, Serialize};
use vigil_monitor::error::GuestError;
use vigil_monitor::guest::view::{
    msr, DescriptorTable, GuestMemory, Regs, Segment, SpecialRegs, VcpuState,
};
use vigil_monitor::inspect::Report;
use vigil_monitor::profile::{cache, KernelProfile};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::boot::KernelLayout;
use crate::control::RunState;
use crate::vm::VmHandle;

/// The MSRs captured at every park (what the monitor's readers ask for).
pub const SNAPSHOT_MSRS: &[u32] = &[
    msr::EFER,
    msr::STAR,
    msr::LSTAR,
    msr::CSTAR,
    msr::SYSCALL_MASK,
    msr::KERNEL_GS_BASE,
    msr::SYSENTER_EIP,
];

/// One vCPU's state, taken by its own thread as it parked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuSnapshot {
    pub regs: Regs,
    pub sregs: SpecialRegs,
    /// (index, value) for each of [`SNAPSHOT_MSRS`] KVM returned.
    pub msrs: Vec<(u32, u64)>,
}

/// Captures `fd`'s state. Called on the vCPU's own thread, outside
/// `KVM_RUN` (after [`crate::vcpu::Vcpu::settle`] has let KVM finish a
/// pending I/O instruction). An ioctl failure is kept as text: the
/// inspector reports it.
pub fn capture(fd: &VcpuFd) -> Result<VcpuSnapshot, String> {
    let regs = fd.get_regs().map_err(|e| format!("KVM_GET_REGS: {e}"))?;
    let sregs = fd.get_sregs().map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
    let entries: Vec<kvm_msr_entry> = SNAPSHOT_MSRS
        .iter()
        .map(|&index| kvm_msr_entry {
            index,
            ..Default::default()
        })
        .collect();
    let mut list = Msrs::from_entries(&entries).map_err(|e| format!("MSR list: {e:?}"))?;
    // KVM_GET_MSRS stops at the first MSR it cannot read: what precedes it
    // is valid, the rest is reported as absent.
    let n = fd
        .get_msrs(&mut list)
        .map_err(|e| format!("KVM_GET_MSRS: {e}"))?;
    let msrs = list
        .as_slice()
        .iter()
        .take(n)
        .map(|e| (e.index, e.data))
        .collect();
    Ok(VcpuSnapshot {
        regs: convert_regs(&regs),
        sregs: convert_sregs(&sregs),
        msrs,
    })
}

fn convert_regs(r: &kvm_regs) -> Regs {
    Regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.rflags,
    }
}

fn segment(s: &kvm_segment) -> Segment {
    Segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
    }
}

fn convert_sregs(s: &kvm_sregs) -> SpecialRegs {
    SpecialRegs {
        cs: segment(&s.cs),
        ss: segment(&s.ss),
        fs: segment(&s.fs),
        gs: segment(&s.gs),
        tr: segment(&s.tr),
        gdt: DescriptorTable {
            base: s.gdt.base,
            limit: s.gdt.limit,
        },
        idt: DescriptorTable {
            base: s.idt.base,
            limit: s.idt.limit,
        },
        cr0: s.cr0,
        cr2: s.cr2,
        cr3: s.cr3,
        cr4: s.cr4,
        cr8: s.cr8,
        efer: Some(s.efer),
    }
}

/// A paused VM as the monitor sees it: guest RAM plus the snapshots.
pub struct LiveView<'a> {
    pub memory: &'a GuestMemoryMmap,
    pub vcpus: Vec<Result<VcpuSnapshot, String>>,
}

impl LiveView<'_> {
    fn vcpu(&self, vcpu: usize) -> Result<&VcpuSnapshot, GuestError> {
        match self.vcpus.get(vcpu) {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(GuestError::NoCpuState(format!("vCPU {vcpu}: {e}"))),
            None => Err(GuestError::NoCpuState(format!("no vCPU {vcpu}"))),
        }
    }
}

impl GuestMemory for LiveView<'_> {
    fn read_phys(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestError> {
        // read_slice fails unless the whole range is backed: all or nothing.
        self.memory
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| GuestError::NoMemory(gpa, buf.len()))
    }
}

impl VcpuState for LiveView<'_> {
    fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }
    fn regs(&self, vcpu: usize) -> Result<Regs, GuestError> {
        self.vcpu(vcpu).map(|s| s.regs)
    }
    fn sregs(&self, vcpu: usize) -> Result<SpecialRegs, GuestError> {
        self.vcpu(vcpu).map(|s| s.sregs)
    }
    fn msr(&self, vcpu: usize, index: u32) -> Result<u64, GuestError> {
        self.vcpu(vcpu)?
            .msrs
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, v)| *v)
            .ok_or(GuestError::NoMsr(index))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("kernel profile of {path}: {reason}")]
    Profile { path: String, reason: String },
    #[error("the VM is not running")]
    NotRunning,
    #[error("the vCPUs did not all park")]
    PauseTimeout,
    #[error("reading the guest: {0}")]
    Guest(#[from] GuestError),
}

/// How long one live inspection took.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct InspectTiming {
    /// From asking the vCPUs to park until all had parked.
    pub pause_us: u64,
    /// Running the readers and copying text+rodata on the paused guest.
    pub read_us: u64,
    /// Hashing the copied text+rodata, after the guest was resumed.
    pub hash_us: u64,
    /// From the pause request until the vCPUs were released.
    pub paused_total_us: u64,
    /// Whether the VM was paused already (then it is left paused).
    pub was_paused: bool,
}

/// vigil's own knowledge of the kernel layout next to what the monitor
/// found (present when vigil placed the kernel: the `direct` loader).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct BootCrossCheck {
    pub phys_base: u64,
    pub virt_text: u64,
    pub randomized: bool,
    /// `_text` + the slide the monitor found == `virt_text`.
    pub slide_agrees: bool,
    /// The `_text` physical address from the page tables == `phys_base`.
    pub phys_agrees: bool,
}

/// The answer of `GET /api/v1/vm.inspect`: the monitor's report, with how
/// it was taken and vigil's own view of the layout.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LiveReport {
    #[serde(flatten)]
    pub report: Report,
    pub timing: InspectTiming,
    pub boot_layout: Option<BootCrossCheck>,
}

/// Per-VM introspection state: guest RAM, the kernel it booted and its
/// profile (loaded or built once, on first use).
pub struct Introspector {
    memory: GuestMemoryMmap,
    kernel: PathBuf,
    layout: Option<KernelLayout>,
    profile: Mutex<Option<Arc<KernelProfile>>>,
}

impl Introspector {
    pub fn new(memory: GuestMemoryMmap, kernel: PathBuf, layout: Option<KernelLayout>) -> Self {
        Introspector {
            memory,
            kernel,
            layout,
            profile: Mutex::new(None),
        }
    }

    /// Where vigil placed the kernel, if it did.
    pub fn layout(&self) -> Option<KernelLayout> {
        self.layout
    }

    /// The kernel's profile, from the cache or built once (a failure is
    /// not remembered, so a later call retries).
    pub fn profile(&self) -> Result<Arc<KernelProfile>, IntrospectError> {
        let mut slot = self.profile.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let (p, source) =
            cache::load_or_build(&self.kernel).map_err(|e| IntrospectError::Profile {
                path: self.kernel.display().to_string(),
                reason: e.to_string(),
            })?;
        tracing::info!(?source, kernel = %self.kernel.display(), "kernel profile ready");
        let p = Arc::new(p);
        *slot = Some(p.clone());
        Ok(p)
    }

    /// Pauses the VM (unless it is paused already), runs the readers on
    /// the snapshots and guest RAM, and resumes it.
    pub fn inspect(&self, vm: &VmHandle) -> Result<LiveReport, IntrospectError> {
        // The profile may take seconds to build: before the pause, not in it.
        let profile = self.profile()?;
        let was_paused = match vm.control.state() {
            RunState::Paused => true,
            RunState::Running => false,
            RunState::Stopping => return Err(IntrospectError::NotRunning),
        };
        let start = Instant::now();
        if !was_paused && !vm.pause() {
            let stopping = !vm.control.resume();
            return Err(if stopping {
                IntrospectError::NotRunning
            } else {
                IntrospectError::PauseTimeout
            });
        }
        let parked = start.elapsed();
        let view = LiveView {
            memory: &self.memory,
            vcpus: vm.control.snapshots(usize::from(vm.config.vcpus)),
        };
        // Readers plus a copy of text and rodata while paused; hashing
        // the copy waits until the guest runs again.
        let unhashed = vigil_monitor::inspect::read(&view, &profile);
        let read = start.elapsed() - parked;
        if !was_paused {
            vm.control.resume();
        }
        let total = start.elapsed();
        let report = unhashed?.finish();
        let hashed = start.elapsed() - total;
        let boot_layout = self.layout.map(|l| cross_check(&l, &report, &profile));
        Ok(LiveReport {
            report,
            timing: InspectTiming {
                pause_us: micros(parked),
                read_us: micros(read),
                paused_total_us: micros(total),
                hash_us: micros(hashed),
                was_paused,
            },
            boot_layout,
        })
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Compares the monitor's slide and `_text` placement with vigil's own.
pub fn cross_check(
    layout: &KernelLayout,
    report: &Report,
    profile: &KernelProfile,
) -> BootCrossCheck {
    let text_link = profile.sections.image.start;
    BootCrossCheck {
        phys_base: layout.phys_base,
        virt_text: layout.virt_text,
        randomized: layout.randomized,
        slide_agrees: text_link.wrapping_add(report.kaslr.slide) == layout.virt_text,
        phys_agrees: report.kaslr.text_phys == layout.phys_base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_view_reads_all_or_nothing_and_reports_missing_state() {
        let ram = crate::memory::GuestRam::new(16 << 20).unwrap();
        ram.mem
            .write_slice(&[1, 2, 3, 4], GuestAddress(0x2000))
            .unwrap();
        let snap = VcpuSnapshot {
            regs: Regs::default(),
            sregs: SpecialRegs {
                cr3: 0x1000,
                ..Default::default()
            },
            msrs: vec![(msr::LSTAR, 0xffff_ffff_8100_0000)],
        };
        let view = LiveView {
            memory: &ram.mem,
            vcpus: vec![Ok(snap), Err("KVM_GET_REGS: boom".into())],
        };
        let mut buf = [0u8; 4];
        view.read_phys(0x2000, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        let end = 16 << 20;
        assert_eq!(
            view.read_phys(end - 2, &mut buf),
            Err(GuestError::NoMemory(end - 2, 4))
        );
        assert_eq!(view.msr(0, msr::LSTAR), Ok(0xffff_ffff_8100_0000));
        assert_eq!(view.msr(0, msr::EFER), Err(GuestError::NoMsr(msr::EFER)));
        assert_eq!(view.sregs(0).unwrap().cr3, 0x1000);
        assert!(matches!(view.regs(1), Err(GuestError::NoCpuState(m)) if m.contains("boom")));
        assert!(matches!(view.regs(2), Err(GuestError::NoCpuState(_))));
    }
}
