//! Guest view over an ELF core written by QEMU's `dump-guest-memory`
//! (paging=false): PT_LOAD segments give guest-physical ranges through
//! p_paddr, and per-vCPU notes carry registers: "CORE"/NT_PRSTATUS
//! (general registers) and "QEMU" (QEMUCPUState from
//! target/i386/arch_dump.c, which adds segments, GDT/IDT and CR0-CR4).
//! The dump has no MSRs, so `msr()` answers NoMsr.

use super::view::{DescriptorTable, GuestMemory, Regs, Segment, SpecialRegs, VcpuState};
use crate::bytes::{slice, u16_at, u32_at, u64_at};
use crate::error::GuestError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_PRSTATUS: u32 = 1;
/// Offset of pr_reg in x86-64 `struct elf_prstatus`.
const PRSTATUS_REGS: usize = 112;

#[derive(Debug, Clone, Copy)]
struct Load {
    paddr: u64,
    offset: u64,
    filesz: u64,
}

#[derive(Debug, Clone, Default)]
struct Cpu {
    regs: Regs,
    sregs: Option<SpecialRegs>,
}

#[derive(Debug)]
pub struct CoreDump {
    file: File,
    file_len: u64,
    loads: Vec<Load>,
    cpus: Vec<Cpu>,
}

fn bad(s: impl Into<String>) -> GuestError {
    GuestError::BadDump(s.into())
}

impl CoreDump {
    pub fn open(path: &Path) -> Result<Self, GuestError> {
        let file =
            File::open(path).map_err(|e| GuestError::Io(format!("{}: {e}", path.display())))?;
        let file_len = file
            .metadata()
            .map_err(|e| GuestError::Io(e.to_string()))?
            .len();
        let read = |off: u64, len: usize| -> Result<Vec<u8>, GuestError> {
            if off.checked_add(len as u64).is_none_or(|e| e > file_len) {
                return Err(bad(format!(
                    "truncated: need {len} bytes at {off:#x}, file is {file_len:#x}"
                )));
            }
            let mut b = vec![0u8; len];
            file.read_exact_at(&mut b, off)
                .map_err(|e| GuestError::Io(e.to_string()))?;
            Ok(b)
        };
        let eh = read(0, 64)?;
        if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
            return Err(bad("not a little-endian ELF64 core file"));
        }
        if u16_at(&eh, 16) != Some(4) {
            return Err(bad("ELF type is not ET_CORE"));
        }
        let phoff = u64_at(&eh, 32).unwrap_or(0);
        let phentsize = usize::from(u16_at(&eh, 54).unwrap_or(0));
        let phnum = usize::from(u16_at(&eh, 56).unwrap_or(0));
        if phentsize < 56 || phnum == 0 {
            // phnum == 0xffff (PN_XNUM) would need section 0; QEMU only
            // uses it for >65534 segments, which guests here never reach.
            return Err(bad("no program headers"));
        }
        let ph = read(phoff, phentsize * phnum)?;
        let mut loads = vec![];
        let mut cpus = vec![];
        for i in 0..phnum {
            let p = i * phentsize;
            let field =
                |o: usize| u64_at(&ph, p + o).ok_or_else(|| bad("program header truncated"));
            let ty = u32_at(&ph, p).ok_or_else(|| bad("program header truncated"))?;
            let (offset, paddr, filesz) = (field(8)?, field(24)?, field(32)?);
            match ty {
                PT_LOAD if filesz > 0 => {
                    if offset.checked_add(filesz).is_none_or(|e| e > file_len) {
                        return Err(bad(format!(
                            "PT_LOAD at paddr {paddr:#x} runs past end of file"
                        )));
                    }
                    loads.push(Load {
                        paddr,
                        offset,
                        filesz,
                    });
                }
                PT_NOTE => {
                    let len = usize::try_from(filesz)
                        .ok()
                        .filter(|&l| l <= 64 << 20)
                        .ok_or_else(|| bad("huge PT_NOTE"))?;
                    parse_notes(&read(offset, len)?, &mut cpus);
                }
                _ => {}
            }
        }
        if loads.is_empty() {
            return Err(bad("no PT_LOAD memory segments"));
        }
        loads.sort_by_key(|l| l.paddr);
        Ok(Self {
            file,
            file_len,
            loads,
            cpus,
        })
    }

    /// Guest-physical ranges present in the dump.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.loads.iter().map(|l| (l.paddr, l.paddr + l.filesz))
    }
}

/// Walk the note list. NT_PRSTATUS starts a new vCPU; the QEMU note that
/// QEMU writes after it adds system registers to the same vCPU.
fn parse_notes(d: &[u8], cpus: &mut Vec<Cpu>) {
    let mut p = 0usize;
    let pad4 = |n: usize| n.checked_add(3).map(|v| v & !3);
    while let (Some(namesz), Some(descsz), Some(ty)) =
        (u32_at(d, p), u32_at(d, p + 4), u32_at(d, p + 8))
    {
        let Some(name_len) = pad4(namesz as usize) else {
            return;
        };
        let Some(desc_len) = pad4(descsz as usize) else {
            return;
        };
        let name = slice(d, p + 12, namesz as usize).unwrap_or(&[]);
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        let Some(desc) = slice(d, p + 12 + name_len, descsz as usize) else {
            return;
        };
        match (name, ty) {
            (b"CORE", NT_PRSTATUS) => {
                if let Some(regs) = prstatus_regs(desc) {
                    cpus.push(Cpu { regs, sregs: None });
                }
            }
            (b"QEMU", 0) => {
                if let Some((regs, sregs)) = qemu_cpu_state(desc) {
                    match cpus.last_mut() {
                        Some(c) if c.sregs.is_none() => c.sregs = Some(sregs),
                        _ => cpus.push(Cpu {
                            regs,
                            sregs: Some(sregs),
                        }),
                    }
                }
            }
            _ => {}
        }
        p += 12 + name_len + desc_len;
    }
}

fn prstatus_regs(d: &[u8]) -> Option<Regs> {
    let r = |i: usize| u64_at(d, PRSTATUS_REGS + 8 * i);
    // user_regs_struct order.
    Some(Regs {
        r15: r(0)?,
        r14: r(1)?,
        r13: r(2)?,
        r12: r(3)?,
        rbp: r(4)?,
        rbx: r(5)?,
        r11: r(6)?,
        r10: r(7)?,
        r9: r(8)?,
        r8: r(9)?,
        rax: r(10)?,
        rcx: r(11)?,
        rdx: r(12)?,
        rsi: r(13)?,
        rdi: r(14)?,
        rip: r(16)?,
        rflags: r(18)?,
        rsp: r(19)?,
    })
}

fn qemu_cpu_state(d: &[u8]) -> Option<(Regs, SpecialRegs)> {
    let q = |o: usize| u64_at(d, o);
    let g = |i: usize| q(8 + 8 * i);
    let regs = Regs {
        rax: g(0)?,
        rbx: g(1)?,
        rcx: g(2)?,
        rdx: g(3)?,
        rsi: g(4)?,
        rdi: g(5)?,
        rsp: g(6)?,
        rbp: g(7)?,
        r8: g(8)?,
        r9: g(9)?,
        r10: g(10)?,
        r11: g(11)?,
        r12: g(12)?,
        r13: g(13)?,
        r14: g(14)?,
        r15: g(15)?,
        rip: q(136)?,
        rflags: q(144)?,
    };
    // QEMUCPUSegment: selector u32, limit u32, flags u32, pad u32, base u64.
    let seg = |i: usize| -> Option<Segment> {
        let o = 152 + 24 * i;
        Some(Segment {
            selector: u32_at(d, o)? as u16,
            limit: u32_at(d, o + 4)?,
            base: u64_at(d, o + 16)?,
        })
    };
    let dt = |i: usize| -> Option<DescriptorTable> {
        let s = seg(i)?;
        Some(DescriptorTable {
            base: s.base,
            limit: s.limit as u16,
        })
    };
    let cr = |i: usize| q(392 + 8 * i);
    let sregs = SpecialRegs {
        cs: seg(0)?,
        fs: seg(3)?,
        gs: seg(4)?,
        ss: seg(5)?,
        tr: seg(7)?,
        gdt: dt(8)?,
        idt: dt(9)?,
        cr0: cr(0)?,
        cr2: cr(2)?,
        cr3: cr(3)?,
        cr4: cr(4)?,
        cr8: 0,
        efer: None,
    };
    Some((regs, sregs))
}

impl GuestMemory for CoreDump {
    fn read_phys(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = gpa
                .checked_add(done as u64)
                .ok_or(GuestError::NoMemory(gpa, buf.len()))?;
            let i = self.loads.partition_point(|l| l.paddr <= cur);
            let l = i
                .checked_sub(1)
                .and_then(|i| self.loads.get(i))
                .filter(|l| cur < l.paddr + l.filesz)
                .ok_or(GuestError::NoMemory(cur, buf.len() - done))?;
            let n = ((l.paddr + l.filesz - cur) as usize).min(buf.len() - done);
            let off = l.offset + (cur - l.paddr);
            if off + n as u64 > self.file_len {
                return Err(GuestError::NoMemory(cur, n));
            }
            self.file
                .read_exact_at(&mut buf[done..done + n], off)
                .map_err(|e| GuestError::Io(e.to_string()))?;
            done += n;
        }
        Ok(())
    }
}

impl VcpuState for CoreDump {
    fn vcpu_count(&self) -> usize {
        self.cpus.len()
    }
    fn regs(&self, vcpu: usize) -> Result<Regs, GuestError> {
        self.cpus
            .get(vcpu)
            .map(|c| c.regs)
            .ok_or_else(|| GuestError::NoCpuState(format!("dump has no vCPU {vcpu}")))
    }
    fn sregs(&self, vcpu: usize) -> Result<SpecialRegs, GuestError> {
        self.cpus.get(vcpu).and_then(|c| c.sregs).ok_or_else(|| {
            GuestError::NoCpuState(format!("dump has no QEMU CPU note for vCPU {vcpu}"))
        })
    }
    fn msr(&self, _vcpu: usize, index: u32) -> Result<u64, GuestError> {
        Err(GuestError::NoMsr(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = vec![];
        v.extend_from_slice(&((name.len() + 1) as u32).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(name);
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    /// A QEMU-shaped core: one vCPU, two memory segments with a hole.
    pub fn synthetic_core() -> Vec<u8> {
        let mut prs = vec![0u8; 336];
        prs[PRSTATUS_REGS + 16 * 8..PRSTATUS_REGS + 17 * 8]
            .copy_from_slice(&0xffff_ffff_8100_1234u64.to_le_bytes());
        let mut qs = vec![0u8; 440];
        qs[136..144].copy_from_slice(&0xffff_ffff_8100_1234u64.to_le_bytes());
        qs[368 + 16..368 + 24].copy_from_slice(&0xffff_fe00_0000_0000u64.to_le_bytes()); // idt base
        qs[368 + 4..368 + 8].copy_from_slice(&0xfffu32.to_le_bytes());
        qs[392..400].copy_from_slice(&0x8005_0033u64.to_le_bytes()); // cr0
        qs[392 + 24..392 + 32].copy_from_slice(&0x1234_5000u64.to_le_bytes()); // cr3
        qs[392 + 32..392 + 40].copy_from_slice(&0x3506f0u64.to_le_bytes()); // cr4
        let mut notes = note(b"CORE", NT_PRSTATUS, &prs);
        notes.extend(note(b"QEMU", 0, &qs));
        let phnum = 3u16;
        let data_off = 64 + 56 * u64::from(phnum);
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&4u16.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&phnum.to_le_bytes());
        let ph = |ty: u32, off: u64, paddr: u64, sz: u64| {
            let mut p = vec![0u8; 56];
            p[..4].copy_from_slice(&ty.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[24..32].copy_from_slice(&paddr.to_le_bytes());
            p[32..40].copy_from_slice(&sz.to_le_bytes());
            p[40..48].copy_from_slice(&sz.to_le_bytes());
            p
        };
        let notes_off = data_off;
        let m1 = notes_off + notes.len() as u64;
        f.extend(ph(PT_NOTE, notes_off, 0, notes.len() as u64));
        f.extend(ph(PT_LOAD, m1, 0, 0x2000));
        f.extend(ph(PT_LOAD, m1 + 0x2000, 0x10_0000, 0x1000));
        f.extend(notes);
        f.extend((0..0x3000u32).map(|i| (i % 253) as u8));
        f
    }

    fn write(tag: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("vigil-core-{tag}-{}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_memory_and_cpu_notes() {
        let p = write("ok", &synthetic_core());
        let d = CoreDump::open(&p).unwrap();
        assert_eq!(d.vcpu_count(), 1);
        assert_eq!(d.regs(0).unwrap().rip, 0xffff_ffff_8100_1234);
        let s = d.sregs(0).unwrap();
        assert_eq!(
            (s.cr3, s.cr4, s.idt.base, s.idt.limit),
            (0x1234_5000, 0x3506f0, 0xffff_fe00_0000_0000, 0xfff)
        );
        let mut b = [0u8; 4];
        d.read_phys(0x10_0000, &mut b).unwrap();
        assert_eq!(
            b,
            [
                (0x2000 % 253) as u8,
                (0x2001 % 253) as u8,
                (0x2002 % 253) as u8,
                (0x2003 % 253) as u8
            ]
        );
        assert_eq!(
            d.read_phys(0x1ffe, &mut b),
            Err(GuestError::NoMemory(0x2000, 2))
        );
        assert!(matches!(
            d.read_phys(0x5000, &mut b),
            Err(GuestError::NoMemory(..))
        ));
        assert!(matches!(d.msr(0, 0xc000_0082), Err(GuestError::NoMsr(_))));
        std::fs::remove_file(p).ok();
    }

    #[test]
    fn rejects_bad_dumps() {
        let core = synthetic_core();
        for (tag, bytes) in [
            ("empty", vec![]),
            ("notelf", vec![0u8; 200]),
            ("short", core[..core.len() - 100].to_vec()),
            ("hdr", core[..100].to_vec()),
        ] {
            let p = write(tag, &bytes);
            assert!(
                matches!(CoreDump::open(&p), Err(GuestError::BadDump(_))),
                "{tag}"
            );
            std::fs::remove_file(p).ok();
        }
        // Every truncation point: error or success, never a panic.
        for cut in (0..core.len()).step_by(97) {
            let p = write("cut", &core[..cut]);
            let _ = CoreDump::open(&p);
            std::fs::remove_file(p).ok();
        }
    }
}
