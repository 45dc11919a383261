//! Kernel profile: everything the monitor needs to know about a guest
//! kernel, computed from the bzImage alone on the host before boot.

pub mod btf;
pub mod bzimage;
pub mod cache;
pub mod certs;
pub mod decompress;
pub mod elf;
pub mod kallsyms;
pub mod sections;

use crate::error::ProfileError;
use btf::StructLayout;
use certs::CertInfo;
use kallsyms::Symbol;
use sections::KernelSections;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// Bumped whenever the serialised form or its meaning changes.
pub const PROFILE_VERSION: u32 = 1;

/// Structs whose layouts the readers need.
pub const STRUCTS: &[&str] = &[
    "task_struct",
    "cred",
    "module",
    "module_layout",
    "module_memory",
    "load_info",
    "list_head",
    "kernel_cap_struct",
    "desc_ptr",
];
/// Enums whose constants the readers need.
pub const ENUMS: &[&str] = &["lockdown_reason", "module_state"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Measurements {
    pub image_size: u64,
    pub image_sha256: String,
    pub image_sha384: String,
    pub kernel_size: u64,
    pub kernel_sha256: String,
    pub kernel_sha384: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct KernelProfile {
    pub version: u32,
    /// `Linux version ...` banner found in the image, if any.
    pub banner: Option<String>,
    pub setup: bzimage::SetupHeader,
    pub compression: decompress::Compression,
    pub measurements: Measurements,
    pub elf_entry: u64,
    pub elf_sections: Vec<elf::Section>,
    pub kallsyms: kallsyms::KallsymsLayout,
    /// Sorted by address as kallsyms stores them.
    pub symbols: Vec<Symbol>,
    pub sections: KernelSections,
    pub structs: BTreeMap<String, StructLayout>,
    pub enums: BTreeMap<String, BTreeMap<String, i64>>,
    pub btf_types: usize,
    pub certificates: Vec<CertInfo>,
    #[serde(skip)]
    index: OnceLock<HashMap<String, usize>>,
}

fn hashes(d: &[u8]) -> (String, String) {
    (
        hex::encode(Sha256::digest(d)),
        hex::encode(Sha384::digest(d)),
    )
}

impl KernelProfile {
    /// Build a profile from bzImage bytes (no cache involved).
    pub fn from_bzimage(img: &[u8]) -> Result<Self, ProfileError> {
        let setup = bzimage::parse_setup_header(img)?;
        let payload = bzimage::payload(img, &setup)?;
        let (compression, vmlinux) = decompress::decompress(payload)?;
        let (image_sha256, image_sha384) = hashes(img);
        let (kernel_sha256, kernel_sha384) = hashes(&vmlinux);
        let measurements = Measurements {
            image_size: img.len() as u64,
            image_sha256,
            image_sha384,
            kernel_size: vmlinux.len() as u64,
            kernel_sha256,
            kernel_sha384,
        };
        Self::from_vmlinux(&vmlinux, setup, compression, measurements)
    }

    fn from_vmlinux(
        vmlinux: &[u8],
        setup: bzimage::SetupHeader,
        compression: decompress::Compression,
        measurements: Measurements,
    ) -> Result<Self, ProfileError> {
        let elf = elf::KernelElf::parse(vmlinux)?;
        let rodata_sec = elf
            .section(".rodata")
            .ok_or_else(|| ProfileError::MissingKallsyms("no .rodata section".into()))?;
        let rodata = elf
            .section_data(rodata_sec)
            .ok_or_else(|| ProfileError::Truncated(".rodata outside the file".into()))?;
        // Debian sets KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP default).
        let (symbols, kallsyms) = kallsyms::recover(rodata, true)?;
        let btf_sec = elf
            .section(".BTF")
            .ok_or_else(|| ProfileError::Btf("no .BTF section in vmlinux".into()))?;
        let btf_data = elf
            .section_data(btf_sec)
            .ok_or_else(|| ProfileError::Btf(".BTF outside the file".into()))?;
        let btf = btf::Btf::parse(btf_data)?;
        let structs: BTreeMap<_, _> = STRUCTS
            .iter()
            .filter_map(|n| Some((n.to_string(), btf.struct_layout(n)?)))
            .collect();
        for need in ["task_struct", "cred", "module", "list_head"] {
            if !structs.contains_key(need) {
                return Err(ProfileError::Btf(format!("struct {need} not in BTF")));
            }
        }
        let enums = ENUMS
            .iter()
            .filter_map(|n| Some((n.to_string(), btf.enum_values(n)?)))
            .collect();
        let idx: HashMap<&str, &Symbol> = symbols.iter().map(|s| (s.name.as_str(), s)).collect();
        let sections = sections::from_symbols(&idx).map_err(ProfileError::MissingSymbol)?;
        let certificates = read_certs(&elf, &idx)?;
        let banner = find_banner(rodata);
        Ok(Self {
            version: PROFILE_VERSION,
            banner,
            setup,
            compression,
            measurements,
            elf_entry: elf.entry,
            elf_sections: elf.sections.clone(),
            kallsyms,
            symbols,
            sections,
            structs,
            enums,
            btf_types: btf.type_count(),
            certificates,
            index: OnceLock::new(),
        })
    }

    /// A profile assembled by hand, for tests of the readers.
    #[cfg(test)]
    pub(crate) fn synthetic(
        symbols: Vec<Symbol>,
        structs: BTreeMap<String, StructLayout>,
        enums: BTreeMap<String, BTreeMap<String, i64>>,
        banner: &str,
    ) -> Self {
        let idx: HashMap<&str, &Symbol> = symbols.iter().map(|s| (s.name.as_str(), s)).collect();
        let sections = sections::from_symbols(&idx).expect("section symbols");
        Self {
            version: PROFILE_VERSION,
            banner: Some(banner.into()),
            setup: bzimage::SetupHeader {
                setup_sects: 4,
                boot_protocol: 0x20f,
                kernel_alignment: 0x20_0000,
                relocatable: true,
                xloadflags: 0,
                payload_offset: 0,
                payload_length: 0,
                init_size: 0,
                pm_offset: 0xa00,
            },
            compression: decompress::Compression::None,
            measurements: Measurements {
                image_size: 0,
                image_sha256: String::new(),
                image_sha384: String::new(),
                kernel_size: 0,
                kernel_sha256: String::new(),
                kernel_sha384: String::new(),
            },
            elf_entry: 0,
            elf_sections: vec![],
            kallsyms: kallsyms::KallsymsLayout {
                num_syms: 0,
                names: 0,
                markers: 0,
                token_table: 0,
                token_index: 0,
                offsets: 0,
                relative_base: 0,
            },
            symbols,
            sections,
            structs,
            enums,
            btf_types: 0,
            certificates: vec![],
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> &HashMap<String, usize> {
        self.index.get_or_init(|| {
            let mut m = HashMap::with_capacity(self.symbols.len());
            for (i, s) in self.symbols.iter().enumerate() {
                // Keep the first of duplicate (static) names.
                m.entry(s.name.clone()).or_insert(i);
            }
            m
        })
    }

    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.index().get(name).and_then(|&i| self.symbols.get(i))
    }

    /// Link-time address of a symbol, or a clear error.
    pub fn addr(&self, name: &str) -> Result<u64, crate::error::GuestError> {
        self.symbol(name)
            .map(|s| s.addr)
            .ok_or_else(|| crate::error::GuestError::ProfileLacks(format!("symbol {name}")))
    }

    /// Byte offset of `field` in `strukt`.
    pub fn offset(&self, strukt: &str, field: &str) -> Result<u64, crate::error::GuestError> {
        self.field(strukt, field).map(|f| f.offset)
    }

    pub fn field(
        &self,
        strukt: &str,
        field: &str,
    ) -> Result<&btf::Field, crate::error::GuestError> {
        self.structs
            .get(strukt)
            .and_then(|s| s.fields.get(field))
            .ok_or_else(|| crate::error::GuestError::ProfileLacks(format!("{strukt}.{field}")))
    }

    pub fn struct_size(&self, strukt: &str) -> Result<u64, crate::error::GuestError> {
        self.structs
            .get(strukt)
            .map(|s| s.size)
            .ok_or_else(|| crate::error::GuestError::ProfileLacks(format!("struct {strukt}")))
    }

    pub fn enum_value(&self, e: &str, name: &str) -> Option<i64> {
        self.enums.get(e)?.get(name).copied()
    }
}

fn read_certs(
    elf: &elf::KernelElf,
    idx: &HashMap<&str, &Symbol>,
) -> Result<Vec<CertInfo>, ProfileError> {
    let (Some(list), Some(size)) = (
        idx.get("system_certificate_list"),
        idx.get("system_certificate_list_size"),
    ) else {
        return Ok(vec![]); // kernel built without built-in keys
    };
    let size = elf
        .read_va(size.addr, 8)
        .and_then(|b| crate::bytes::u64_at(b, 0))
        .ok_or_else(|| ProfileError::Certs("system_certificate_list_size unreadable".into()))?;
    let len = usize::try_from(size)
        .ok()
        .filter(|&l| l <= 16 << 20)
        .ok_or_else(|| ProfileError::Certs(format!("implausible list size {size}")))?;
    let bytes = elf
        .read_va(list.addr, len)
        .ok_or_else(|| ProfileError::Certs("system_certificate_list outside the image".into()))?;
    certs::parse_cert_list(bytes)
}

fn find_banner(rodata: &[u8]) -> Option<String> {
    let needle = b"Linux version ";
    let p = rodata.windows(needle.len()).position(|w| w == needle)?;
    let s = crate::bytes::cstr_at(rodata, p, 512)?;
    Some(s.trim_end().to_string())
}
