//! Control registers and entry points the monitor pins.

use crate::error::GuestError;
use crate::guest::view::{msr, GuestView};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuRegisters {
    pub vcpu: usize,
    pub rip: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    /// None when the source has no MSRs (QEMU dumps).
    pub efer: Option<u64>,
    pub lstar: Option<u64>,
    pub idt_base: u64,
    pub idt_limit: u16,
    pub gdt_base: u64,
    pub wp: bool,
    pub smep: bool,
    pub smap: bool,
    pub umip: bool,
    pub la57: bool,
    pub nxe: Option<bool>,
}

fn opt(r: Result<u64, GuestError>) -> Result<Option<u64>, GuestError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(GuestError::NoMsr(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn read(view: &(impl GuestView + ?Sized), vcpu: usize) -> Result<CpuRegisters, GuestError> {
    let r = view.regs(vcpu)?;
    let s = view.sregs(vcpu)?;
    let efer = match s.efer {
        Some(e) => Some(e),
        None => opt(view.msr(vcpu, msr::EFER))?,
    };
    Ok(CpuRegisters {
        vcpu,
        rip: r.rip,
        cr0: s.cr0,
        cr3: s.cr3,
        cr4: s.cr4,
        efer,
        lstar: opt(view.msr(vcpu, msr::LSTAR))?,
        idt_base: s.idt.base,
        idt_limit: s.idt.limit,
        gdt_base: s.gdt.base,
        wp: s.cr0 & (1 << 16) != 0,
        smep: s.cr4 & (1 << 20) != 0,
        smap: s.cr4 & (1 << 21) != 0,
        umip: s.cr4 & (1 << 11) != 0,
        la57: s.cr4 & (1 << 12) != 0,
        nxe: efer.map(|e| e & (1 << 11) != 0),
    })
}

pub fn read_all(view: &(impl GuestView + ?Sized)) -> Result<Vec<CpuRegisters>, GuestError> {
    (0..view.vcpu_count()).map(|i| read(view, i)).collect()
}
