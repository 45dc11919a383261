//! Guest CPUID: what KVM can virtualise (KVM_GET_SUPPORTED_CPUID), with the
//! topology rewritten per vCPU and features the guest must not rely on
//! removed.

use kvm_bindings::{kvm_cpuid_entry2, CpuId};

const LEAF_FEATURES: u32 = 0x1;
const LEAF_CACHE_TOPOLOGY: u32 = 0x4;
const LEAF_EXT_FEATURES: u32 = 0x7;
const LEAF_PMU: u32 = 0xa;
const LEAF_X2APIC_TOPOLOGY: u32 = 0xb;
const LEAF_AMD_SIZES: u32 = 0x8000_0008;
const LEAF_AMD_TOPOLOGY: u32 = 0x8000_001e;

const ECX_MONITOR: u32 = 1 << 3;
const ECX_TSC_DEADLINE: u32 = 1 << 24;
const ECX_AES: u32 = 1 << 25;
const ECX_HYPERVISOR: u32 = 1 << 31;
const EDX_HTT: u32 = 1 << 28;
const EXT_ECX_VAES: u32 = 1 << 9;

/// Topology level types for leaf 0xb.
const LEVEL_SMT: u32 = 1;
const LEVEL_CORE: u32 = 2;

/// Choices that shape the guest's CPUID.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuidOptions {
    /// Hide AES-NI and VAES, so a guest prefers other `aes` drivers (such as
    /// virtio-crypto) over its own instructions.
    pub hide_aes: bool,
    /// KVM's in-kernel LAPIC emulates the TSC-deadline timer; saying so
    /// spares the guest its LAPIC timer calibration.
    pub tsc_deadline: bool,
}

/// Rewrites `cpuid` for vCPU `cpu` of `count` (APIC ID = vCPU index).
pub fn customize(cpuid: &mut CpuId, cpu: u8, count: u8, opts: CpuidOptions) {
    let apic_id = u32::from(cpu);
    let count = u32::from(count);
    let core_bits = u32::BITS - (count.max(1) - 1).leading_zeros();
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            LEAF_FEATURES => {
                entry.ebx = (entry.ebx & 0x0000_ffff) | (apic_id << 24) | (count << 16);
                // MONITOR/MWAIT would let an idle guest spin in the host.
                entry.ecx = (entry.ecx | ECX_HYPERVISOR) & !ECX_MONITOR;
                if opts.hide_aes {
                    entry.ecx &= !ECX_AES;
                }
                if opts.tsc_deadline {
                    entry.ecx |= ECX_TSC_DEADLINE;
                }
                if count > 1 {
                    entry.edx |= EDX_HTT;
                } else {
                    entry.edx &= !EDX_HTT;
                }
            }
            LEAF_CACHE_TOPOLOGY => {
                entry.eax = (entry.eax & 0x03ff_ffff) | ((count - 1) << 26);
            }
            LEAF_EXT_FEATURES if entry.index == 0 && opts.hide_aes => {
                entry.ecx &= !EXT_ECX_VAES;
            }
            // No virtual PMU is configured; a guest probing one gets errors.
            LEAF_PMU => {
                entry.eax = 0;
                entry.ebx = 0;
                entry.ecx = 0;
                entry.edx = 0;
            }
            LEAF_X2APIC_TOPOLOGY => x2apic_topology(entry, apic_id, count, core_bits),
            LEAF_AMD_SIZES => {
                entry.ecx = (entry.ecx & !0xf0ff) | (count - 1);
            }
            LEAF_AMD_TOPOLOGY => {
                entry.eax = apic_id;
                entry.ebx = apic_id & 0xff; // one thread per core
                entry.ecx = 0;
            }
            _ => {}
        }
    }
}

/// One thread per core, all cores in one package.
fn x2apic_topology(entry: &mut kvm_cpuid_entry2, apic_id: u32, count: u32, core_bits: u32) {
    entry.edx = apic_id;
    match entry.index {
        0 => {
            entry.eax = 0;
            entry.ebx = 1;
            entry.ecx = (LEVEL_SMT << 8) | entry.index;
        }
        1 => {
            entry.eax = core_bits;
            entry.ebx = count;
            entry.ecx = (LEVEL_CORE << 8) | entry.index;
        }
        _ => {
            entry.eax = 0;
            entry.ebx = 0;
            entry.ecx = entry.index;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ecx: ECX_AES | ECX_MONITOR,
            ..Default::default()
        }
    }

    fn sample() -> CpuId {
        CpuId::from_entries(&[
            entry(LEAF_FEATURES, 0),
            entry(LEAF_X2APIC_TOPOLOGY, 0),
            entry(LEAF_X2APIC_TOPOLOGY, 1),
            entry(LEAF_PMU, 0),
        ])
        .unwrap()
    }

    #[test]
    fn topology_names_each_vcpu() {
        let mut cpuid = sample();
        customize(&mut cpuid, 3, 4, CpuidOptions::default());
        let e = cpuid.as_slice();
        assert_eq!(e[0].ebx >> 24, 3);
        assert_eq!((e[0].ebx >> 16) & 0xff, 4);
        assert_ne!(e[0].ecx & ECX_HYPERVISOR, 0);
        assert_eq!(e[0].ecx & ECX_MONITOR, 0);
        assert_ne!(e[0].ecx & ECX_AES, 0);
        assert_eq!(e[1].edx, 3);
        assert_eq!((e[2].eax, e[2].ebx), (2, 4));
        assert_eq!(e[3].eax, 0);
    }

    #[test]
    fn aes_can_be_hidden() {
        let mut cpuid = sample();
        customize(
            &mut cpuid,
            0,
            1,
            CpuidOptions {
                hide_aes: true,
                tsc_deadline: false,
            },
        );
        assert_eq!(cpuid.as_slice()[0].ecx & ECX_AES, 0);
    }
}
