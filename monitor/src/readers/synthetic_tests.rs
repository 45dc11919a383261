//! Readers and KASLR on a hand-built guest: page tables, a kernel image
//! mapped at a slide, tasks, creds, a module and lockdown state.

use crate::error::GuestError;
use crate::guest::paging::tests::PtBuilder;
use crate::guest::paging::Levels;
use crate::guest::view::{msr, FlatGuest, FlatVcpu, SpecialRegs};
use crate::kaslr::{Kernel, SlideMethod};
use crate::profile::btf::{Field, StructLayout};
use crate::profile::kallsyms::Symbol;
use crate::profile::KernelProfile;
use crate::readers::{lockdown, modules, tasks, text_hash};
use std::collections::BTreeMap;

const TEXT: u64 = 0xffff_ffff_8100_0000;
const SLIDE: u64 = 0x0200_0000;
const PHYS: u64 = 0x20_0000;
const BANNER: &str = "Linux version 6.1.0-test (synthetic)";

fn layout(size: u64, fields: &[(&str, u64, u64)]) -> StructLayout {
    StructLayout {
        size,
        fields: fields
            .iter()
            .map(|&(n, offset, size)| {
                (
                    n.to_string(),
                    Field {
                        offset,
                        size,
                        bit_size: 0,
                        bit_offset: 0,
                        ty: String::new(),
                    },
                )
            })
            .collect(),
    }
}

fn profile() -> KernelProfile {
    let sym = |name: &str, off: u64, kind: char| Symbol {
        name: name.into(),
        addr: TEXT + off,
        kind,
    };
    let symbols = vec![
        sym("_text", 0, 'T'),
        sym("_stext", 0, 'T'),
        sym("entry_SYSCALL_64", 0x100, 'T'),
        sym("_etext", 0x1000, 'T'),
        sym("__start_rodata", 0x1000, 'D'),
        sym("linux_banner", 0x1000, 'D'),
        sym("__start_ro_after_init", 0x1800, 'D'),
        sym("__end_ro_after_init", 0x1900, 'D'),
        sym("__end_rodata", 0x2000, 'D'),
        sym("__init_begin", 0x3000, 'T'),
        sym("__init_end", 0x4000, 'T'),
        sym("init_task", 0x5000, 'D'),
        sym("kernel_locked_down", 0x6000, 'b'),
        sym("modules", 0x6100, 'd'),
        sym("_end", 0x10000, 'B'),
    ];
    let mut structs = BTreeMap::new();
    structs.insert(
        "task_struct".into(),
        layout(
            0x100,
            &[
                ("tasks", 0x10, 16),
                ("pid", 0x20, 4),
                ("tgid", 0x24, 4),
                ("comm", 0x30, 16),
                ("real_cred", 0x40, 8),
                ("cred", 0x48, 8),
            ],
        ),
    );
    structs.insert(
        "cred".into(),
        layout(
            0x60,
            &[
                ("uid", 4, 4),
                ("gid", 8, 4),
                ("suid", 0xc, 4),
                ("euid", 0x14, 4),
                ("egid", 0x18, 4),
                ("fsuid", 0x1c, 4),
                ("cap_inheritable", 0x28, 8),
                ("cap_permitted", 0x30, 8),
                ("cap_effective", 0x38, 8),
                ("cap_bset", 0x40, 8),
                ("cap_ambient", 0x48, 8),
            ],
        ),
    );
    structs.insert(
        "module".into(),
        layout(
            0x100,
            &[
                ("state", 0, 4),
                ("list", 8, 16),
                ("name", 0x18, 56),
                ("core_layout", 0x50, 0x28),
                ("sig_ok", 0x80, 1),
            ],
        ),
    );
    structs.insert(
        "module_layout".into(),
        layout(
            0x28,
            &[("base", 0, 8), ("size", 8, 4), ("text_size", 0xc, 4)],
        ),
    );
    let mut enums = BTreeMap::new();
    enums.insert(
        "lockdown_reason".into(),
        [
            ("LOCKDOWN_NONE", 0),
            ("LOCKDOWN_INTEGRITY_MAX", 20),
            ("LOCKDOWN_CONFIDENTIALITY_MAX", 28),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect(),
    );
    enums.insert(
        "module_state".into(),
        [("MODULE_STATE_LIVE", 0), ("MODULE_STATE_COMING", 1)]
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
    );
    KernelProfile::synthetic(symbols, structs, enums, BANNER)
}

struct Guest {
    g: FlatGuest,
}

impl Guest {
    /// Write at a run-time kernel virtual address (all inside one 2 MiB page).
    fn put(&mut self, va: u64, bytes: &[u8]) {
        let pa = (va - TEXT - SLIDE + PHYS) as usize;
        self.g.mem[pa..pa + bytes.len()].copy_from_slice(bytes);
    }
    fn put64(&mut self, va: u64, v: u64) {
        self.put(va, &v.to_le_bytes());
    }
    fn put32(&mut self, va: u64, v: u32) {
        self.put(va, &v.to_le_bytes());
    }
}

fn rt(off: u64) -> u64 {
    TEXT + SLIDE + off
}

/// Guest with init_task + one task (pid 1), one module, lockdown integrity.
fn guest(with_lstar: bool) -> Guest {
    let mut b = PtBuilder::new(0x60_0000, Levels::Four);
    b.map(TEXT + SLIDE, PHYS, 0x20_0000, 0);
    let mut vcpu = FlatVcpu {
        sregs: SpecialRegs {
            cr3: b.root,
            cr0: 0x8005_0033,
            cr4: 0x3006f0,
            ..Default::default()
        },
        ..Default::default()
    };
    if with_lstar {
        vcpu.msrs.push((msr::LSTAR, rt(0x100)));
    }
    b.g.vcpus.push(vcpu);
    let mut g = Guest { g: b.g };
    g.put(rt(0x1000), BANNER.as_bytes());
    for i in 0..0x100u64 {
        g.put(rt(i), &[(i * 7) as u8]);
    }
    // init_task <-> task1 via tasks at +0x10.
    let (init, t1) = (rt(0x5000), rt(0x7000));
    g.put64(init + 0x10, t1 + 0x10);
    g.put64(init + 0x18, t1 + 0x10);
    g.put64(t1 + 0x10, init + 0x10);
    g.put64(t1 + 0x18, init + 0x10);
    g.put(init + 0x30, b"swapper/0\0");
    g.put32(t1 + 0x20, 1);
    g.put32(t1 + 0x24, 1);
    g.put(t1 + 0x30, b"init\0");
    let (c0, c1) = (rt(0x8000), rt(0x8100));
    for (t, c) in [(init, c0), (t1, c1)] {
        g.put64(t + 0x40, c);
        g.put64(t + 0x48, c);
    }
    g.put32(c1 + 4, 1000);
    g.put32(c1 + 0x14, 1000);
    g.put64(c1 + 0x38, 0x3000);
    g.put64(c1 + 0x40, 0x1ff_ffff_ffff);
    g.put64(c0 + 0x40, 0x1ff_ffff_ffff);
    // modules head <-> one module.
    let (head, m) = (rt(0x6100), rt(0x9000));
    g.put64(head, m + 8);
    g.put64(head + 8, m + 8);
    g.put64(m + 8, head);
    g.put64(m + 16, head);
    g.put(m + 0x18, b"crc7\0");
    g.put64(m + 0x50, 0xffff_ffff_c000_0000);
    g.put32(m + 0x58, 0x3000);
    g.put32(m + 0x5c, 0x1000);
    g.put(m + 0x80, &[1]);
    g.put32(rt(0x6000), 20);
    g
}

#[test]
fn slide_from_lstar_and_scan() {
    let p = profile();
    let g = guest(true);
    let k = Kernel::new(&g.g, &p).unwrap();
    assert_eq!((k.kaslr.slide, k.kaslr.method), (SLIDE, SlideMethod::Lstar));
    assert_eq!(k.kaslr.text_phys, PHYS);
    // Without LSTAR or an IDT the scan still finds the banner.
    let g = guest(false);
    let k = Kernel::new(&g.g, &p).unwrap();
    assert_eq!((k.kaslr.slide, k.kaslr.method), (SLIDE, SlideMethod::Scan));
}

#[test]
fn wrong_lstar_is_not_trusted() {
    let p = profile();
    let mut g = guest(true);
    g.g.vcpus[0].msrs[0].1 = rt(0x100) + 0x1234; // not 2 MiB aligned slide
    let k = Kernel::new(&g.g, &p).unwrap();
    assert_eq!(k.kaslr.method, SlideMethod::Scan);
}

#[test]
fn readers_on_synthetic_guest() {
    let p = profile();
    let g = guest(true);
    let k = Kernel::new(&g.g, &p).unwrap();
    let ts = tasks::read(&k).unwrap();
    assert_eq!(ts.len(), 2);
    assert_eq!((ts[0].pid, ts[0].comm.as_str()), (0, "swapper/0"));
    let t = &ts[1];
    assert_eq!(
        (t.pid, t.comm.as_str(), t.uid, t.euid),
        (1, "init", 1000, 1000)
    );
    assert_eq!(
        (t.caps.effective, t.caps.bounding),
        (0x3000, 0x1ff_ffff_ffff)
    );
    let ms = modules::read(&k).unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(
        (ms[0].name.as_str(), ms[0].state_name.as_str()),
        ("crc7", "Live")
    );
    assert_eq!(
        (
            ms[0].text_start,
            ms[0].text_size,
            ms[0].core_size,
            ms[0].sig_ok
        ),
        (0xffff_ffff_c000_0000, 0x1000, 0x3000, Some(true))
    );
    assert_eq!(
        lockdown::read(&k).unwrap().level,
        lockdown::Level::Integrity
    );
    let h = text_hash::read(&k).unwrap();
    assert_eq!(h.text_len, 0x1000);
}

#[test]
fn corrupt_guest_state_is_an_error_not_a_panic() {
    let p = profile();
    let mut g = guest(true);
    // A task list that loops without returning to init_task.
    let t1 = rt(0x7000);
    g.put64(t1 + 0x10, t1 + 0x10);
    // Lockdown beyond the enum.
    g.put32(rt(0x6000), 99);
    // A module pointer into unmapped memory.
    g.put64(rt(0x6100), 0xffff_ffff_dead_0000);
    let k = Kernel::new(&g.g, &p).unwrap();
    assert!(matches!(tasks::read(&k), Err(GuestError::Corrupt(_))));
    assert!(matches!(lockdown::read(&k), Err(GuestError::Corrupt(_))));
    assert!(matches!(
        modules::read(&k),
        Err(GuestError::NotMapped { .. })
    ));
}

#[test]
fn no_kernel_mapped_means_no_slide() {
    let p = profile();
    let mut g = guest(true);
    g.g.vcpus[0].sregs.cr3 = 0x50_0000; // an empty page table
    assert!(matches!(Kernel::new(&g.g, &p), Err(GuestError::NoSlide(_))));
}
