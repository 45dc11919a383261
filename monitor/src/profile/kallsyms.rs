//! Recover the kernel's own symbol table from the kallsyms tables that
//! scripts/kallsyms.c compiles into .rodata. Debian ships no usable
//! System.map, so these tables are the only symbol source in the image.
//!
//! Layout (Linux 6.1, CONFIG_KALLSYMS_BASE_RELATIVE, 8-byte aligned labels):
//! kallsyms_offsets[N] (s32), kallsyms_relative_base (u64),
//! kallsyms_num_syms (u32), kallsyms_names, kallsyms_markers[(N+255)/256]
//! (u32), kallsyms_token_table (256 NUL-terminated strings),
//! kallsyms_token_index[256] (u16). Newer kernels move offsets and
//! relative_base after token_index; both placements are tried.

use crate::bytes::{align_up, i32_at, slice, u16_at, u32_at, u64_at, u8_at};
use crate::error::ProfileError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    /// Link-time virtual address (before KASLR).
    pub addr: u64,
    /// nm-style type letter (T, t, D, d, R, r, B, b, A, ...).
    pub kind: char,
}

impl Symbol {
    /// Per-CPU symbols are absolute offsets (KALLSYMS_ABSOLUTE_PERCPU) and
    /// do not move with KASLR; everything in the kernel half does.
    pub fn is_absolute(&self) -> bool {
        self.addr >> 47 != 0x1ffff
    }

    /// Run-time address given the KASLR slide.
    pub fn runtime_addr(&self, slide: u64) -> u64 {
        if self.is_absolute() {
            self.addr
        } else {
            self.addr.wrapping_add(slide)
        }
    }
}

/// Where the tables were found, as offsets into the scanned region.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KallsymsLayout {
    pub num_syms: u32,
    pub names: usize,
    pub markers: usize,
    pub token_table: usize,
    pub token_index: usize,
    pub offsets: usize,
    pub relative_base: u64,
}

const DIGITS: &[u8] = b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00";
/// Longest kallsyms name the kernel allows (KSYM_NAME_LEN in 6.1).
const KSYM_NAME_LEN: usize = 512;

struct Tokens {
    table: usize,
    index: usize,
    tokens: Vec<Vec<u8>>,
}

/// Decode all symbols from `rodata` (the bytes of the section holding the
/// tables). `percpu_absolute` mirrors CONFIG_KALLSYMS_ABSOLUTE_PERCPU.
pub fn recover(
    rodata: &[u8],
    percpu_absolute: bool,
) -> Result<(Vec<Symbol>, KallsymsLayout), ProfileError> {
    let mut from = 0;
    let mut last_err = "no token table (digit tokens) found".to_string();
    while let Some(rel) = find(&rodata[from..], DIGITS) {
        let digits = from + rel;
        from = digits + 1;
        let Some(tok) = find_tokens(rodata, digits) else {
            continue;
        };
        match decode_from_tokens(rodata, &tok, percpu_absolute) {
            Ok(r) => return Ok(r),
            Err(e) => last_err = e,
        }
    }
    Err(ProfileError::MissingKallsyms(last_err))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Given the position of the "0".."9" tokens, find token_index after the
/// table and check the table is exactly 256 strings that end at it.
fn find_tokens(data: &[u8], digits: usize) -> Option<Tokens> {
    let start = align_up(digits, 8)?;
    for p in (start..start + 0x4000).step_by(8) {
        let idx: Option<Vec<u16>> = (0..256).map(|i| u16_at(data, p + 2 * i)).collect();
        let idx = idx?;
        if idx[0] != 0 || !idx.windows(2).all(|w| w[0] < w[1]) {
            continue;
        }
        let Some(table) = digits.checked_sub(usize::from(idx[usize::from(b'0')])) else {
            continue;
        };
        let mut tokens = Vec::with_capacity(256);
        let mut ok = true;
        for i in 0..256 {
            let s = table + usize::from(idx[i]);
            let end = if i < 255 {
                table + usize::from(idx[i + 1]) - 1
            } else {
                match data.get(s..p).and_then(|t| t.iter().position(|&b| b == 0)) {
                    Some(n) => s + n,
                    None => {
                        ok = false;
                        break;
                    }
                }
            };
            match slice(data, s, end.saturating_sub(s) + 1) {
                Some(t) if end >= s && t.last() == Some(&0) && !t[..t.len() - 1].contains(&0) => {
                    tokens.push(t[..t.len() - 1].to_vec())
                }
                _ => {
                    ok = false;
                    break;
                }
            }
            if i == 255 && align_up(end + 1, 8) != Some(p) {
                ok = false;
            }
        }
        if ok {
            return Some(Tokens {
                table,
                index: p,
                tokens,
            });
        }
    }
    None
}

/// Markers found by walking back from `end`: increasing u32s down to a 0.
fn markers_ending_at(data: &[u8], end: usize) -> Option<(usize, Vec<u32>)> {
    let mut end = end;
    if end >= 4 && u32_at(data, end - 4) == Some(0) && u32_at(data, end.checked_sub(8)?) != Some(0)
    {
        end -= 4; // alignment padding
    }
    let mut markers = Vec::new();
    let mut pos = end;
    loop {
        pos = pos.checked_sub(4)?;
        let v = u32_at(data, pos)?;
        if markers.last().is_some_and(|&next| v >= next) {
            return None;
        }
        markers.push(v);
        if v == 0 {
            break;
        }
    }
    markers.reverse();
    Some((pos, markers))
}

/// Markers starting at `start`, read forward while increasing.
fn markers_starting_at(data: &[u8], start: usize) -> Option<Vec<u32>> {
    let mut m = vec![u32_at(data, start)?];
    while let Some(v) = u32_at(data, start + 4 * m.len()) {
        if v <= *m.last()? {
            break;
        }
        m.push(v);
    }
    Some(m)
}

fn decode_from_tokens(
    data: &[u8],
    tok: &Tokens,
    percpu_absolute: bool,
) -> Result<(Vec<Symbol>, KallsymsLayout), String> {
    // 6.1 upstream puts markers right before the token table. Kernels with
    // kallsyms_seqs_of_names (6.2+, and Debian's 6.1 backport) put a 3*N
    // byte array between them, so also scan back for a marker array whose
    // size agrees with the gap.
    let mut tried_any = false;
    if let Some((ms, markers)) = markers_ending_at(data, tok.table) {
        tried_any = true;
        if let Ok(r) = names_before_markers(data, tok, ms, &markers, percpu_absolute) {
            return Ok(r);
        }
    }
    let lo = tok.table.saturating_sub(8 << 20);
    let mut q = tok.table.saturating_sub(8) & !7;
    while q > lo {
        q -= 8;
        if u32_at(data, q) != Some(0) || !u32_at(data, q + 4).is_some_and(|v| v > 0 && v < 0x10000)
        {
            continue;
        }
        let Some(markers) = markers_starting_at(data, q) else {
            continue;
        };
        let m = markers.len();
        let Some(seqs_start) = align_up(q + 4 * m, 8) else {
            continue;
        };
        let Some(gap) = tok.table.checked_sub(seqs_start) else {
            continue;
        };
        let (min, max) = (3 * (m - 1) * 256, 3 * m * 256 + 8);
        if gap < min || gap > max {
            continue;
        }
        tried_any = true;
        if let Ok(r) = names_before_markers(data, tok, q, &markers, percpu_absolute) {
            return Ok(r);
        }
    }
    Err(if tried_any {
        "kallsyms_num_syms / kallsyms_names not found before markers".into()
    } else {
        "kallsyms_markers not found".into()
    })
}

fn names_before_markers(
    data: &[u8],
    tok: &Tokens,
    markers_start: usize,
    markers: &[u32],
    percpu_absolute: bool,
) -> Result<(Vec<Symbol>, KallsymsLayout), String> {
    let m = markers.len();
    let last = *markers.last().unwrap_or(&0) as usize;
    // names start (8-aligned) lies before markers_start - last, within 256 names.
    let hi = markers_start
        .checked_sub(last)
        .ok_or("markers exceed section")?
        & !7;
    let lo = hi.saturating_sub(256 * (KSYM_NAME_LEN + 2));
    let mut s = hi;
    while s >= lo.max(8) {
        if let Some(n) = u32_at(data, s - 8) {
            if n > 0 && (n as usize).div_ceil(256) == m {
                if let Some(names) =
                    decode_names(data, s, n as usize, markers, markers_start, &tok.tokens)
                {
                    return finish(data, tok, s, n, markers_start, names, percpu_absolute);
                }
            }
        }
        s -= 8;
    }
    Err("kallsyms_num_syms / kallsyms_names not found before markers".into())
}

/// Decode `n` compressed names at `start`, checking them against markers.
fn decode_names(
    data: &[u8],
    start: usize,
    n: usize,
    markers: &[u32],
    markers_start: usize,
    tokens: &[Vec<u8>],
) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(n);
    let mut off = start;
    for i in 0..n {
        if i % 256 == 0 && markers.get(i / 256).map(|&m| m as usize) != Some(off - start) {
            return None;
        }
        let b0 = u8_at(data, off)?;
        let (len, hdr) = if b0 & 0x80 != 0 {
            let b1 = u8_at(data, off + 1)?;
            (usize::from(b0 & 0x7f) | (usize::from(b1) << 7), 2)
        } else {
            (usize::from(b0), 1)
        };
        if len == 0 || len > KSYM_NAME_LEN {
            return None;
        }
        let bytes = slice(data, off + hdr, len)?;
        let mut name = Vec::with_capacity(len * 3);
        for &b in bytes {
            name.extend_from_slice(&tokens[usize::from(b)]);
        }
        out.push(name);
        off += hdr + len;
    }
    (off <= markers_start && markers_start - off < 8).then_some(out)
}

fn finish(
    data: &[u8],
    tok: &Tokens,
    names_start: usize,
    n: u32,
    markers_start: usize,
    names: Vec<Vec<u8>>,
    percpu_absolute: bool,
) -> Result<(Vec<Symbol>, KallsymsLayout), String> {
    let count = n as usize;
    let table_bytes = align_up(count * 4, 8).ok_or("overflow")?;
    // 6.1 order: offsets, relative_base, num_syms. Newer: after token_index.
    let before = names_start
        .checked_sub(16)
        .and_then(|rb| Some((rb.checked_sub(table_bytes)?, rb)));
    let after = align_up(tok.index + 512, 8).map(|o| (o, o + table_bytes));
    for (offsets, rb_pos) in [before, after].into_iter().flatten() {
        let Some(relative_base) = u64_at(data, rb_pos) else {
            continue;
        };
        if relative_base >> 47 != 0x1ffff {
            continue; // not a kernel-half address
        }
        let mut syms = Vec::with_capacity(count);
        let mut ok = true;
        for (i, raw) in names.iter().enumerate() {
            let Some(o) = i32_at(data, offsets + 4 * i) else {
                ok = false;
                break;
            };
            let addr = if !percpu_absolute {
                relative_base.wrapping_add(u64::from(o as u32))
            } else if o >= 0 {
                o as u64
            } else {
                relative_base
                    .wrapping_sub(1)
                    .wrapping_sub(i64::from(o) as u64)
            };
            let (kind, name) = match raw.split_first() {
                Some((&k, rest)) => (char::from(k), String::from_utf8_lossy(rest).into_owned()),
                None => {
                    ok = false;
                    break;
                }
            };
            syms.push(Symbol { name, addr, kind });
        }
        if !ok {
            continue;
        }
        // kallsyms is sorted by address; demand that of the kernel-half part.
        let kern: Vec<u64> = syms
            .iter()
            .map(|s| s.addr)
            .filter(|a| a >> 47 == 0x1ffff)
            .collect();
        let sorted = kern.windows(2).filter(|w| w[0] <= w[1]).count();
        if kern.len() < 2 || sorted * 100 < (kern.len() - 1) * 99 {
            continue;
        }
        let layout = KallsymsLayout {
            num_syms: n,
            names: names_start,
            markers: markers_start,
            token_table: tok.table,
            token_index: tok.index,
            offsets,
            relative_base,
        };
        return Ok((syms, layout));
    }
    Err("kallsyms_offsets / kallsyms_relative_base not found".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Build a 6.1-style table set from (type+name, addr) pairs using
    /// single-character tokens plus one multi-char token, as a synthetic
    /// stand-in for scripts/kallsyms.c output.
    pub fn build(syms: &[(&str, u64)], base: u64) -> Vec<u8> {
        let mut out = vec![0xccu8; 64];
        let pad = |v: &mut Vec<u8>| {
            while !v.len().is_multiple_of(8) {
                v.push(0)
            }
        };
        pad(&mut out);
        for (_, a) in syms {
            let o = -((a - base) as i64) - 1;
            out.extend_from_slice(&(o as i32).to_le_bytes());
        }
        pad(&mut out);
        out.extend_from_slice(&base.to_le_bytes());
        out.extend_from_slice(&(syms.len() as u32).to_le_bytes());
        pad(&mut out);
        // token 0x01 = "sys_" (multi-char), others are themselves.
        let names_start = out.len();
        let mut markers = vec![];
        for (i, (n, _)) in syms.iter().enumerate() {
            if i % 256 == 0 {
                markers.push((out.len() - names_start) as u32);
            }
            let enc: Vec<u8> = if let Some(rest) = n.strip_prefix("Tsys_") {
                let mut v = vec![b'T', 1];
                v.extend_from_slice(rest.as_bytes());
                v
            } else {
                n.as_bytes().to_vec()
            };
            out.push(enc.len() as u8);
            out.extend_from_slice(&enc);
        }
        pad(&mut out);
        for m in markers {
            out.extend_from_slice(&m.to_le_bytes());
        }
        pad(&mut out);
        let mut idx = vec![];
        let table = out.len();
        for i in 0..256u32 {
            idx.push((out.len() - table) as u16);
            match i {
                0 => out.extend_from_slice(b"\x00"),
                1 => out.extend_from_slice(b"sys_\x00"),
                c if !(0x20..=0x7e).contains(&c) => out.extend_from_slice(&[b'#', c as u8, 0]),
                c => out.extend_from_slice(&[c as u8, 0]),
            }
        }
        // token 0 must be non-empty for a valid table; give it a byte.
        out[table] = b'~';
        out.insert(table + 1, 0);
        for v in idx.iter_mut().skip(1) {
            *v += 1;
        }
        pad(&mut out);
        for v in idx {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[0xdd; 32]);
        out
    }

    #[test]
    fn decodes_synthetic_tables() {
        let base = 0xffff_ffff_8100_0000;
        let mut syms: Vec<(String, u64)> =
            vec![("T_stext".into(), base), ("Tsys_read".into(), base + 0x10)];
        for i in 0..600u64 {
            syms.push((format!("tfunc_{i}"), base + 0x100 + i * 16));
        }
        let refs: Vec<(&str, u64)> = syms.iter().map(|(n, a)| (n.as_str(), *a)).collect();
        let img = build(&refs, base);
        let (got, layout) = recover(&img, true).unwrap();
        assert_eq!(layout.num_syms, 602);
        assert_eq!(got.len(), 602);
        assert_eq!(got[0].name, "_stext");
        assert_eq!(got[0].kind, 'T');
        assert_eq!(got[0].addr, base);
        assert_eq!(got[1].name, "sys_read");
        assert_eq!(got[601].name, "func_599");
        assert_eq!(got[601].addr, base + 0x100 + 599 * 16);
    }

    #[test]
    fn rejects_corrupt_tables() {
        let base = 0xffff_ffff_8100_0000;
        let refs = [("T_stext", base), ("Tsys_read", base + 0x10)];
        let img = build(&refs, base);
        // Truncations at many points never panic and never succeed falsely.
        for cut in (0..img.len()).step_by(7) {
            let _ = recover(&img[..cut], true);
        }
        assert!(matches!(
            recover(&[0u8; 4096], true),
            Err(ProfileError::MissingKallsyms(_))
        ));
        let mut bad = img.clone();
        // Corrupt num_syms.
        let pos = find(&bad, &base.to_le_bytes()).unwrap() + 8;
        bad[pos] = 0x77;
        assert!(recover(&bad, true).is_err());
    }
}
