//! Error types. Kernel images and guest dumps are hostile input, so every
//! parse failure is a typed error with enough context to act on.

use thiserror::Error;

/// Errors from building a kernel profile out of an image file.
#[derive(Debug, Error)]
pub enum ProfileError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a bzImage: {0}")]
    NotBzImage(String),
    #[error("truncated image: {0}")]
    Truncated(String),
    #[error("unknown payload compression (first bytes {0})")]
    UnknownCompression(String),
    #[error("decompression failed ({format}): {reason}")]
    Decompress {
        format: &'static str,
        reason: String,
    },
    #[error("bad vmlinux ELF: {0}")]
    Elf(String),
    #[error("kallsyms tables not found: {0}")]
    MissingKallsyms(String),
    #[error("BTF missing or malformed: {0}")]
    Btf(String),
    #[error("required symbol {0} not found")]
    MissingSymbol(String),
    #[error("certificate list malformed: {0}")]
    Certs(String),
    #[error("profile cache: {0}")]
    Cache(String),
}

/// Errors from looking at a guest through a [`crate::guest::view::GuestView`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GuestError {
    #[error("guest memory has nothing at physical address {0:#x} (len {1})")]
    NoMemory(u64, usize),
    #[error("virtual address {va:#x} not mapped (page-table level {level}, entry {entry:#x})")]
    NotMapped { va: u64, level: u8, entry: u64 },
    #[error("non-canonical virtual address {0:#x}")]
    NonCanonical(u64),
    #[error("vCPU state unavailable: {0}")]
    NoCpuState(String),
    #[error("MSR {0:#x} not available from this guest view")]
    NoMsr(u32),
    #[error("bad dump file: {0}")]
    BadDump(String),
    #[error("KASLR slide not found: {0}")]
    NoSlide(String),
    #[error("guest data looks corrupt: {0}")]
    Corrupt(String),
    #[error("profile lacks {0}")]
    ProfileLacks(String),
    #[error("I/O error: {0}")]
    Io(String),
}
