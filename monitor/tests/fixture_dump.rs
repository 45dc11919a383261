//! The readers against a QEMU dump of the real Debian guest, compared with
//! what that guest printed about itself (fixtures/build.sh makes both).
//! Skips (with a message) when the fixture or kernel is absent.

use std::collections::HashMap;
use vigil_monitor::guest::coredump::CoreDump;
use vigil_monitor::kaslr::{Kernel, SlideMethod};
use vigil_monitor::profile::{cache, KernelProfile};
use vigil_monitor::readers::{lockdown, modules, registers, tasks, text_hash};
use vigil_monitor::test_support::{debian_kernel, ensure_fixture_cpu, parse_console, GuestReport};

fn load(
    name: &str,
    lockdown: &str,
    extra: &str,
    cpu: &str,
) -> Option<(KernelProfile, CoreDump, GuestReport)> {
    let (Some(dir), Some(k)) = (
        ensure_fixture_cpu(name, lockdown, extra, cpu),
        debian_kernel(),
    ) else {
        eprintln!(
            "SKIPPED: fixture {name} or Debian kernel missing (run monitor/fixtures/build.sh)"
        );
        return None;
    };
    let (profile, _) = cache::load_or_build(&k).expect("profile");
    if let Ok(sha) = std::fs::read_to_string(dir.join("kernel.sha256")) {
        if sha.trim() != profile.measurements.image_sha256 {
            eprintln!("SKIPPED: fixture {name} was made with another kernel");
            return None;
        }
    }
    let dump = CoreDump::open(&dir.join("dump.elf")).expect("dump");
    let text = std::fs::read_to_string(dir.join("console.log")).expect("console");
    Some((profile, dump, parse_console(&text)))
}

fn check(name: &str, want_lockdown: &str) -> Option<(usize, bool)> {
    check_with(name, want_lockdown, "", "max")
}

fn check_with(name: &str, want_lockdown: &str, extra: &str, cpu: &str) -> Option<(usize, bool)> {
    let (profile, dump, guest) = load(name, want_lockdown, extra, cpu)?;
    assert!(
        guest.tasks.len() > 10 && guest.modules.len() == 2,
        "console parse: {guest:?}"
    );
    let k = Kernel::new(&dump, &profile).expect("kaslr");
    // A QEMU dump has no MSRs: the slide must come from the IDT.
    assert_eq!(k.kaslr.method, SlideMethod::Idt);

    // Physical placement from the page tables matches /proc/iomem.
    if let Some(pa) = guest.kernel_code_phys {
        assert_eq!(k.kaslr.text_phys, pa, "_text physical address");
    }

    // Symbols: >= 99.9% of the printed kallsyms equal profile + slide.
    let mut by_name: HashMap<&str, Vec<u64>> = HashMap::new();
    for s in &profile.symbols {
        by_name
            .entry(s.name.as_str())
            .or_default()
            .push(s.runtime_addr(k.kaslr.slide));
    }
    let total = guest.kallsyms.len();
    assert!(total > 1000, "only {total} kallsyms lines printed");
    let ok = guest
        .kallsyms
        .iter()
        .filter(|(a, _, n)| by_name.get(n.as_str()).is_some_and(|v| v.contains(a)))
        .count();
    let bad: Vec<_> = guest
        .kallsyms
        .iter()
        .filter(|(a, _, n)| !by_name.get(n.as_str()).is_some_and(|v| v.contains(a)))
        .take(30)
        .collect();
    assert!(
        ok * 1000 >= total * 999,
        "{ok}/{total} kallsyms match; e.g. {bad:x?}"
    );

    // Modules: same set, states and core addresses.
    let mods = modules::read(&k).expect("modules");
    assert_eq!(mods.len(), guest.modules.len(), "{mods:?}");
    for (n, state, addr) in &guest.modules {
        let m = mods
            .iter()
            .find(|m| &m.name == n)
            .unwrap_or_else(|| panic!("module {n} missing"));
        assert_eq!(&m.state_name, state);
        assert_eq!(m.text_start, *addr, "{n}");
        assert!(m.text_size > 0 && m.text_size <= m.core_size);
    }

    // Lockdown.
    assert_eq!(
        lockdown::read(&k).expect("lockdown").level.as_str(),
        want_lockdown
    );

    // Tasks: every task the guest listed (bar the short-lived helpers
    // that ran the listing) has the same comm, ids and capabilities.
    let ts = tasks::read(&k).expect("tasks");
    assert_eq!(ts[0].pid, 0);
    for (pid, pname, ids, caps) in &guest.tasks {
        if pname == "awk" {
            continue;
        }
        let t = ts
            .iter()
            .find(|t| t.pid == *pid)
            .unwrap_or_else(|| panic!("pid {pid} ({pname}) missing"));
        // /proc shows kworkers as "kworker/0:1-events": comm is the prefix.
        assert!(
            pname.starts_with(&t.comm),
            "pid {pid}: {pname} vs {}",
            t.comm
        );
        assert_eq!([t.uid, t.euid, t.suid, t.fsuid], *ids, "pid {pid}");
        let c = t.caps;
        assert_eq!(
            [
                c.inheritable,
                c.permitted,
                c.effective,
                c.bounding,
                c.ambient
            ],
            *caps,
            "pid {pid}"
        );
    }

    // The fixture's init starts one task with inheritable+ambient caps and
    // one as nobody; both must be seen with those credentials.
    assert!(
        ts.iter().any(|t| t.uid == 65534 && t.caps.effective == 0),
        "no unprivileged task"
    );
    assert!(
        ts.iter()
            .any(|t| t.caps.ambient != 0 && t.caps.inheritable != 0),
        "no task with ambient caps"
    );

    // Registers and text hash.
    let regs = registers::read(&dump, 0).expect("regs");
    assert!(regs.wp && regs.cr3 != 0);
    assert_eq!(regs.lstar, None);
    let h = text_hash::read(&k).expect("text hash");
    assert_eq!(h.text_sha256.len(), 64);
    Some((ts.len(), regs.la57))
}

#[test]
fn dump_lockdown_integrity() {
    // QEMU's max CPU has LA57: this guest runs on 5-level paging.
    if let Some((_, la57)) = check("integrity", "integrity") {
        assert!(la57);
    }
}

#[test]
fn dump_four_level_paging() {
    if let Some((_, la57)) = check_with("fourlevel", "none", "", "max,la57=off") {
        assert!(!la57);
    }
}

#[test]
fn dump_lockdown_none() {
    check("none", "none");
}

#[test]
fn dump_lockdown_confidentiality() {
    check("confidentiality", "confidentiality");
}

/// A guest whose init started 1000 extra tasks (`vigil_tasks=1000`).
#[test]
fn dump_with_1000_tasks() {
    if let Some((n, _)) = check_with("many1000", "none", "vigil_tasks=1000", "max") {
        assert!(n > 1000, "{n} tasks");
    }
}
