//! Per-vCPU architectural state at boot: CPUID, MSRs, registers for the
//! 64-bit Linux entry, and the local APIC's interrupt pins.

pub mod cpuid;
pub mod msrs;
pub mod regs;

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("KVM_GET_SUPPORTED_CPUID failed: {0}")]
    SupportedCpuid(kvm_ioctls::Error),
    #[error("cannot set CPUID on vCPU {0}: {1}")]
    SetCpuid(u8, kvm_ioctls::Error),
    #[error("cannot set MSRs on vCPU {0}: {1}")]
    SetMsrs(u8, String),
    #[error("cannot set registers on vCPU {0}: {1}")]
    Registers(u8, kvm_ioctls::Error),
    #[error("cannot write boot page tables or GDT: {0}")]
    BootTables(vm_memory::GuestMemoryError),
    #[error("cannot program the local APIC of vCPU {0}: {1}")]
    Lapic(u8, kvm_ioctls::Error),
}
