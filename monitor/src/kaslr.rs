//! Where the guest kernel actually is: the virtual KASLR slide (from live
//! state) and the physical placement (from the guest's page tables).

use crate::error::GuestError;
use crate::guest::paging::AddressSpace;
use crate::guest::view::{msr, GuestView};
use crate::profile::KernelProfile;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

/// Link-time base of the kernel mapping (__START_KERNEL_map).
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// KASLR moves the kernel in CONFIG_PHYSICAL_ALIGN steps (2 MiB on Debian).
pub const SLIDE_ALIGN: u64 = 0x20_0000;
/// Largest virtual slide x86-64 KASLR can choose (KERNEL_IMAGE_SIZE, 1 GiB).
pub const MAX_SLIDE: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlideMethod {
    /// MSR_LSTAR holds entry_SYSCALL_64.
    Lstar,
    /// IDT exception gates point at asm_exc_* handlers.
    Idt,
    /// Tried every aligned slide until linux_banner read back.
    Scan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kaslr {
    /// Add to a profile (link-time) address to get the run-time address.
    pub slide: u64,
    pub method: SlideMethod,
    /// Guest-physical address of `_text`.
    pub text_phys: u64,
    /// Physical offset relative to the link-time load address (16 MiB).
    pub phys_slide: i64,
    pub space: AddressSpace,
}

/// Vectors whose gate must point at the named handler (arch/x86/kernel/idt.c).
const IDT_HANDLERS: &[(u64, &str)] = &[
    (0, "asm_exc_divide_error"),
    (3, "asm_exc_int3"),
    (6, "asm_exc_invalid_op"),
    (13, "asm_exc_general_protection"),
    (14, "asm_exc_page_fault"),
];

fn plausible(slide: u64) -> bool {
    slide.is_multiple_of(SLIDE_ALIGN) && slide < MAX_SLIDE
}

/// Find the slide and physical placement using vCPU `vcpu`'s CR3.
pub fn locate(
    view: &(impl GuestView + ?Sized),
    profile: &KernelProfile,
    vcpu: usize,
) -> Result<Kaslr, GuestError> {
    let sregs = view.sregs(vcpu)?;
    let space = AddressSpace::new(sregs.cr3, sregs.cr4);
    let text = profile.addr("_text")?;
    let check =
        |slide: u64| -> bool { plausible(slide) && banner_matches(view, &space, profile, slide) };
    let mut found = None;
    if let Ok(lstar) = view.msr(vcpu, msr::LSTAR) {
        let slide = lstar.wrapping_sub(profile.addr("entry_SYSCALL_64")?);
        if check(slide) {
            found = Some((slide, SlideMethod::Lstar));
        }
    }
    if found.is_none() {
        if let Some(slide) = slide_from_idt(view, &space, profile, sregs.idt.base) {
            if check(slide) {
                found = Some((slide, SlideMethod::Idt));
            }
        }
    }
    if found.is_none() {
        found = (0..MAX_SLIDE / SLIDE_ALIGN)
            .map(|i| i * SLIDE_ALIGN)
            .find(|&s| check(s))
            .map(|s| (s, SlideMethod::Scan));
    }
    let (slide, method) = found.ok_or_else(|| {
        GuestError::NoSlide(
            "no LSTAR, IDT or scanned slide maps linux_banner to the image's banner".into(),
        )
    })?;
    let text_phys = space.translate(view, text.wrapping_add(slide))?.pa;
    let phys_slide = text_phys as i64 - (text - START_KERNEL_MAP) as i64;
    Ok(Kaslr {
        slide,
        method,
        text_phys,
        phys_slide,
        space,
    })
}

fn slide_from_idt(
    view: &(impl GuestView + ?Sized),
    space: &AddressSpace,
    profile: &KernelProfile,
    idt_base: u64,
) -> Option<u64> {
    let mut agreed: Option<u64> = None;
    for &(vec, name) in IDT_HANDLERS {
        let mut g = [0u8; 16];
        space
            .read_virt(view, idt_base.wrapping_add(vec * 16), &mut g)
            .ok()?;
        let lo = u64::from(u16::from_le_bytes([g[0], g[1]]));
        let mid = u64::from(u16::from_le_bytes([g[6], g[7]]));
        let hi = u64::from(u32::from_le_bytes([g[8], g[9], g[10], g[11]]));
        let handler = lo | (mid << 16) | (hi << 32);
        let slide = handler.wrapping_sub(profile.symbol(name)?.addr);
        match agreed {
            None => agreed = Some(slide),
            Some(s) if s != slide => return None,
            _ => {}
        }
    }
    agreed
}

fn banner_matches(
    view: &(impl GuestView + ?Sized),
    space: &AddressSpace,
    profile: &KernelProfile,
    slide: u64,
) -> bool {
    let (Some(sym), Some(banner)) = (profile.symbol("linux_banner"), profile.banner.as_deref())
    else {
        // Without a banner to compare, accept a slide whose _text is mapped.
        return profile
            .symbol("_text")
            .is_some_and(|t| space.translate(view, t.addr.wrapping_add(slide)).is_ok());
    };
    let want = banner.as_bytes();
    let n = want.len().min(64);
    let mut got = vec![0u8; n];
    space
        .read_virt(view, sym.addr.wrapping_add(slide), &mut got)
        .is_ok()
        && got == want[..n]
}

/// A located kernel: the view plus profile plus slide, with typed reads of
/// kernel virtual memory. Every reader takes one of these.
pub struct Kernel<'a, V: GuestView + ?Sized> {
    pub view: &'a V,
    pub profile: &'a KernelProfile,
    pub kaslr: Kaslr,
    /// 4 KiB virtual page -> physical page. Valid for one consistent
    /// snapshot (paused VM or dump): make a new `Kernel` after resuming.
    tlb: RefCell<HashMap<u64, u64>>,
}

impl<'a, V: GuestView + ?Sized> Kernel<'a, V> {
    pub fn new(view: &'a V, profile: &'a KernelProfile) -> Result<Self, GuestError> {
        let kaslr = locate(view, profile, 0)?;
        Ok(Self {
            view,
            profile,
            kaslr,
            tlb: RefCell::new(HashMap::new()),
        })
    }

    /// Run-time address of a profile symbol.
    pub fn sym(&self, name: &str) -> Result<u64, GuestError> {
        Ok(self.profile.addr(name)?.wrapping_add(self.kaslr.slide))
    }

    /// Physical address of `va`, through the snapshot's TLB.
    pub fn phys(&self, va: u64) -> Result<u64, GuestError> {
        let page = va >> 12;
        if let Some(pa) = self.tlb.borrow().get(&page) {
            return Ok(pa | (va & 0xfff));
        }
        let pa = self.kaslr.space.translate(self.view, va)?.pa;
        let mut tlb = self.tlb.borrow_mut();
        if tlb.len() > 1 << 20 {
            tlb.clear(); // bound memory on huge walks
        }
        tlb.insert(page, pa & !0xfff);
        Ok(pa)
    }

    pub fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), GuestError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va.wrapping_add(done as u64);
            let n = (0x1000 - (cur & 0xfff) as usize).min(buf.len() - done);
            self.view
                .read_phys(self.phys(cur)?, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    pub fn u64(&self, va: u64) -> Result<u64, GuestError> {
        let mut b = [0u8; 8];
        self.read(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn u32(&self, va: u64) -> Result<u32, GuestError> {
        let mut b = [0u8; 4];
        self.read(va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Read a field of `strukt` at object address `obj`, sized by BTF (1-8 bytes).
    pub fn field(&self, obj: u64, strukt: &str, field: &str) -> Result<u64, GuestError> {
        let f = self.profile.field(strukt, field)?;
        let n = usize::try_from(f.size).unwrap_or(8).clamp(1, 8);
        let mut b = [0u8; 8];
        self.read(obj.wrapping_add(f.offset), &mut b[..n])?;
        Ok(u64::from_le_bytes(b))
    }

    /// Read the span of `strukt` at `obj` covering `fields` in one go, so a
    /// reader pays one memory access per object rather than one per field.
    pub fn snapshot(
        &self,
        obj: u64,
        strukt: &str,
        fields: &[&str],
    ) -> Result<Snapshot, GuestError> {
        let mut lo = u64::MAX;
        let mut hi = 0u64;
        for f in fields {
            let f = self.profile.field(strukt, f)?;
            lo = lo.min(f.offset);
            hi = hi.max(f.offset + f.size.clamp(1, 256));
        }
        if lo > hi || hi - lo > 1 << 16 {
            return Err(GuestError::ProfileLacks(format!(
                "sane field span in {strukt}"
            )));
        }
        let mut buf = vec![0u8; (hi - lo) as usize];
        self.read(obj.wrapping_add(lo), &mut buf)?;
        Ok(Snapshot {
            strukt: strukt.to_string(),
            lo,
            buf,
        })
    }

    /// NUL-terminated string field (char array) of at most its BTF size.
    pub fn str_field(&self, obj: u64, strukt: &str, field: &str) -> Result<String, GuestError> {
        let f = self.profile.field(strukt, field)?;
        let n = usize::try_from(f.size).unwrap_or(0).clamp(1, 256);
        let mut b = vec![0u8; n];
        self.read(obj.wrapping_add(f.offset), &mut b)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(n);
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}

/// Bytes of part of one kernel object, read at once (see [`Kernel::snapshot`]).
pub struct Snapshot {
    strukt: String,
    lo: u64,
    buf: Vec<u8>,
}

impl Snapshot {
    fn bytes<'s>(
        &'s self,
        profile: &KernelProfile,
        field: &str,
        max: usize,
    ) -> Result<&'s [u8], GuestError> {
        let f = profile.field(&self.strukt, field)?;
        let n = usize::try_from(f.size).unwrap_or(max).clamp(1, max);
        let start = f
            .offset
            .checked_sub(self.lo)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(|| {
                GuestError::ProfileLacks(format!("{}.{field} in snapshot", self.strukt))
            })?;
        crate::bytes::slice(&self.buf, start, n)
            .ok_or_else(|| GuestError::ProfileLacks(format!("{}.{field} in snapshot", self.strukt)))
    }

    /// Integer field (1-8 bytes, little-endian).
    pub fn get(&self, profile: &KernelProfile, field: &str) -> Result<u64, GuestError> {
        let b = self.bytes(profile, field, 8)?;
        let mut v = [0u8; 8];
        v[..b.len()].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    }

    /// char-array field up to its first NUL.
    pub fn string(&self, profile: &KernelProfile, field: &str) -> Result<String, GuestError> {
        let b = self.bytes(profile, field, 256)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}
