//! Kernel section boundaries, from the linker symbols kallsyms keeps.

use super::kallsyms::Symbol;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn contains(&self, a: u64) -> bool {
        a >= self.start && a < self.end
    }
}

/// Link-time ranges; add the KASLR slide for run-time addresses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KernelSections {
    /// `_text` .. `_end`: the whole kernel image.
    pub image: Range,
    pub text: Range,
    pub rodata: Range,
    pub ro_after_init: Range,
    pub init: Range,
}

pub fn from_symbols(idx: &HashMap<&str, &Symbol>) -> Result<KernelSections, String> {
    let r = |a: &str, b: &str| -> Result<Range, String> {
        let s = idx.get(a).ok_or_else(|| format!("symbol {a}"))?.addr;
        let e = idx.get(b).ok_or_else(|| format!("symbol {b}"))?.addr;
        if e < s {
            return Err(format!("{b} ({e:#x}) before {a} ({s:#x})"));
        }
        Ok(Range { start: s, end: e })
    };
    Ok(KernelSections {
        image: r("_text", "_end")?,
        text: r("_stext", "_etext")?,
        rodata: r("__start_rodata", "__end_rodata")?,
        ro_after_init: r("__start_ro_after_init", "__end_ro_after_init")?,
        init: r("__init_begin", "__init_end")?,
    })
}
