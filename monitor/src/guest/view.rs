//! The guest-view traits. The monitor never depends on the VMM: the VMM
//! implements these for a live VM (vCPUs paused while read), and
//! [`super::coredump::CoreDump`] implements them for QEMU memory dumps.

use crate::error::GuestError;
use serde::{Deserialize, Serialize};

/// Well-known MSR indices the readers ask for.
pub mod msr {
    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SYSCALL_MASK: u32 = 0xc000_0084;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const SYSENTER_EIP: u32 = 0x176;
}

/// Guest physical memory. Reads must be all-or-nothing: a range that is not
/// fully backed is [`GuestError::NoMemory`].
pub trait GuestMemory {
    fn read_phys(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestError>;

    fn read_phys_u64(&self, gpa: u64) -> Result<u64, GuestError> {
        let mut b = [0u8; 8];
        self.read_phys(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// General-purpose registers (KVM_GET_REGS order of meaning, not layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorTable {
    pub base: u64,
    pub limit: u16,
}

/// System registers (the subset of KVM_GET_SREGS the monitor uses).
/// `efer` is `None` when the source does not record it (QEMU dumps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialRegs {
    pub cs: Segment,
    pub ss: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub tr: Segment,
    pub gdt: DescriptorTable,
    pub idt: DescriptorTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: Option<u64>,
}

/// vCPU state. For a live VM, callers pause the vCPUs first so registers
/// and memory form one consistent snapshot.
pub trait VcpuState {
    fn vcpu_count(&self) -> usize;
    fn regs(&self, vcpu: usize) -> Result<Regs, GuestError>;
    fn sregs(&self, vcpu: usize) -> Result<SpecialRegs, GuestError>;
    /// One MSR; [`GuestError::NoMsr`] if this source cannot provide it.
    fn msr(&self, vcpu: usize, index: u32) -> Result<u64, GuestError>;
}

/// Everything the readers need. Implemented automatically.
pub trait GuestView: GuestMemory + VcpuState {}
impl<T: GuestMemory + VcpuState + ?Sized> GuestView for T {}

/// Flat in-memory guest for tests and for small snapshots: physical memory
/// is one buffer starting at `base`.
#[derive(Debug, Clone, Default)]
pub struct FlatGuest {
    pub base: u64,
    pub mem: Vec<u8>,
    pub vcpus: Vec<FlatVcpu>,
}

#[derive(Debug, Clone, Default)]
pub struct FlatVcpu {
    pub regs: Regs,
    pub sregs: SpecialRegs,
    pub msrs: Vec<(u32, u64)>,
}

impl GuestMemory for FlatGuest {
    fn read_phys(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestError> {
        let src = gpa
            .checked_sub(self.base)
            .and_then(|o| usize::try_from(o).ok())
            .and_then(|o| crate::bytes::slice(&self.mem, o, buf.len()))
            .ok_or(GuestError::NoMemory(gpa, buf.len()))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl VcpuState for FlatGuest {
    fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }
    fn regs(&self, vcpu: usize) -> Result<Regs, GuestError> {
        self.vcpus
            .get(vcpu)
            .map(|v| v.regs)
            .ok_or_else(|| GuestError::NoCpuState(format!("no vCPU {vcpu}")))
    }
    fn sregs(&self, vcpu: usize) -> Result<SpecialRegs, GuestError> {
        self.vcpus
            .get(vcpu)
            .map(|v| v.sregs)
            .ok_or_else(|| GuestError::NoCpuState(format!("no vCPU {vcpu}")))
    }
    fn msr(&self, vcpu: usize, index: u32) -> Result<u64, GuestError> {
        let v = self
            .vcpus
            .get(vcpu)
            .ok_or_else(|| GuestError::NoCpuState(format!("no vCPU {vcpu}")))?;
        v.msrs
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, val)| *val)
            .ok_or(GuestError::NoMsr(index))
    }
}
