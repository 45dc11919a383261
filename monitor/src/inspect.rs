//! One report of everything the readers see, for `vigil inspect`.

use crate::error::GuestError;
use crate::guest::view::GuestView;
use crate::kaslr::{Kaslr, Kernel};
use crate::profile::KernelProfile;
use crate::readers::{lockdown, modules, registers, tasks, text_hash};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub kernel_sha256: String,
    pub kaslr: Kaslr,
    pub registers: Vec<registers::CpuRegisters>,
    pub lockdown: lockdown::Lockdown,
    pub modules: Vec<modules::ModuleInfo>,
    pub tasks: Vec<tasks::TaskInfo>,
    pub text: text_hash::TextHash,
}

pub fn inspect(
    view: &(impl GuestView + ?Sized),
    profile: &KernelProfile,
) -> Result<Report, GuestError> {
    Ok(read(view, profile)?.finish())
}

/// Everything read from the guest, with text and rodata copied but not
/// yet hashed: what needs the guest stopped is done, what does not
/// ([`Unhashed::finish`]) can run after the guest resumes.
#[derive(Debug, Clone)]
pub struct Unhashed {
    report: Report,
    text: text_hash::TextCopy,
}

impl Unhashed {
    pub fn finish(self) -> Report {
        Report {
            text: self.text.hash(),
            ..self.report
        }
    }
}

/// Runs every reader; kernel text and rodata are copied, not hashed.
pub fn read(
    view: &(impl GuestView + ?Sized),
    profile: &KernelProfile,
) -> Result<Unhashed, GuestError> {
    let k = Kernel::new(view, profile)?;
    let report = Report {
        kernel_sha256: profile.measurements.image_sha256.clone(),
        kaslr: k.kaslr,
        registers: registers::read_all(view)?,
        lockdown: lockdown::read(&k)?,
        modules: modules::read(&k)?,
        tasks: tasks::read(&k)?,
        text: text_hash::TextHash::default(),
    };
    Ok(Unhashed {
        report,
        text: text_hash::copy(&k)?,
    })
}

impl Report {
    /// Human-readable rendering.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let k = &self.kaslr;
        let _ = writeln!(
            s,
            "kaslr: slide {:#x} ({:?}), _text at phys {:#x}",
            k.slide, k.method, k.text_phys
        );
        for r in &self.registers {
            let _ = writeln!(
                s,
                "vcpu{}: cr0 {:#x} cr3 {:#x} cr4 {:#x} efer {} lstar {} idt {:#x} wp={} smep={} smap={}",
                r.vcpu,
                r.cr0,
                r.cr3,
                r.cr4,
                r.efer.map_or("n/a".into(), |v| format!("{v:#x}")),
                r.lstar.map_or("n/a".into(), |v| format!("{v:#x}")),
                r.idt_base,
                r.wp,
                r.smep,
                r.smap
            );
        }
        let _ = writeln!(s, "lockdown: {}", self.lockdown.level.as_str());
        let _ = writeln!(
            s,
            "text sha256 {} rodata sha256 {}",
            self.text.text_sha256, self.text.rodata_sha256
        );
        let _ = writeln!(s, "modules ({}):", self.modules.len());
        for m in &self.modules {
            let _ = writeln!(
                s,
                "  {:<24} {:<9} text {:#x}+{:#x} sig_ok={:?}",
                m.name, m.state_name, m.text_start, m.text_size, m.sig_ok
            );
        }
        let _ = writeln!(s, "tasks ({}):", self.tasks.len());
        for t in &self.tasks {
            let _ = writeln!(
                s,
                "  {:>6} {:<16} uid {:>5} euid {:>5} CapEff {:016x} CapBnd {:016x}",
                t.pid, t.comm, t.uid, t.euid, t.caps.effective, t.caps.bounding
            );
        }
        s
    }
}
