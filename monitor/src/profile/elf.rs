//! The decompressed vmlinux: a stripped ELF whose sections still carry
//! addresses, so kernel virtual addresses can be mapped to file bytes.

use crate::error::ProfileError;
use goblin::elf::{section_header::SHT_NOBITS, Elf};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub nobits: bool,
}

#[derive(Debug)]
pub struct KernelElf<'a> {
    pub data: &'a [u8],
    pub entry: u64,
    pub sections: Vec<Section>,
}

impl<'a> KernelElf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, ProfileError> {
        let elf = Elf::parse(data).map_err(|e| ProfileError::Elf(e.to_string()))?;
        if !elf.is_64 || elf.header.e_machine != goblin::elf::header::EM_X86_64 {
            return Err(ProfileError::Elf("not an x86-64 ELF".into()));
        }
        let sections = elf
            .section_headers
            .iter()
            .map(|sh| Section {
                name: elf.shdr_strtab.get_at(sh.sh_name).unwrap_or("").to_string(),
                addr: sh.sh_addr,
                offset: sh.sh_offset,
                size: sh.sh_size,
                nobits: sh.sh_type == SHT_NOBITS,
            })
            .collect();
        Ok(Self {
            data,
            entry: elf.entry,
            sections,
        })
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// File bytes of a section (None for NOBITS or out-of-file ranges).
    pub fn section_data(&self, s: &Section) -> Option<&'a [u8]> {
        if s.nobits {
            return None;
        }
        crate::bytes::slice(
            self.data,
            usize::try_from(s.offset).ok()?,
            usize::try_from(s.size).ok()?,
        )
    }

    /// Bytes at link-time virtual address `va`, if a section holds them.
    pub fn read_va(&self, va: u64, len: usize) -> Option<&'a [u8]> {
        let s = self.sections.iter().find(|s| {
            !s.nobits
                && s.addr != 0
                && va >= s.addr
                && va
                    .checked_add(len as u64)
                    .is_some_and(|e| e <= s.addr + s.size)
        })?;
        let off = s.offset.checked_add(va - s.addr)?;
        crate::bytes::slice(self.data, usize::try_from(off).ok()?, len)
    }
}
