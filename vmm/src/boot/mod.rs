//! Loading a Linux bzImage, its initramfs and command line, and writing the
//! zero page, following Documentation/arch/x86/boot.rst (64-bit boot
//! protocol): the protected-mode kernel goes to 1 MiB and the vCPU enters at
//! its `startup_64`, 0x200 bytes in, with %rsi pointing at `boot_params`.

pub mod direct;
pub mod e820;
pub mod mptable;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_params, setup_header};
use linux_loader::loader::bzimage::BzImage;
use linux_loader::loader::KernelLoader;
use vm_memory::{Address, ByteValued, GuestAddress, GuestMemoryMmap};

use crate::config::Loader;
use crate::layout::{self, CMDLINE, HIMEM_START, ZERO_PAGE};

const HDRS_MAGIC: u32 = 0x5372_6448; // "HdrS"
const SETUP_HEADER_OFFSET: u64 = 0x1f1;
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// `xloadflags` bit: the kernel has a 64-bit entry point at +0x200.
const XLF_KERNEL_64: u16 = 1;
/// Boot protocol 2.12 added `xloadflags`; Linux 3.8 and later have it.
const MIN_PROTOCOL: u16 = 0x020c;
const STARTUP_64_OFFSET: u64 = 0x200;
const PAGE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot read kernel {path}: {source}")]
    KernelRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Linux bzImage (no \"HdrS\" boot header)")]
    NotBzImage { path: PathBuf },
    #[error(
        "{path}: boot protocol {version:#x} is too old or lacks a 64-bit entry; vigil needs 2.12+"
    )]
    No64BitEntry { path: PathBuf, version: u16 },
    #[error("cannot load kernel into guest memory: {0}")]
    Load(linux_loader::loader::Error),
    #[error("cannot read initramfs {path}: {source}")]
    InitrdRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("initramfs {path} ({size} bytes) does not fit in guest memory below {limit:#x} next to the kernel; give the guest more memory")]
    InitrdTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("command line is {len} bytes; this kernel accepts at most {max}")]
    CmdlineTooLong { len: usize, max: usize },
    #[error("invalid command line: {0}")]
    Cmdline(String),
    #[error("cannot write boot parameters: {0}")]
    Params(String),
    #[error(transparent)]
    E820(#[from] e820::E820Full),
    #[error(transparent)]
    Direct(#[from] direct::DirectBootError),
    #[error(transparent)]
    Payload(#[from] vigil_images::ImageError),
}

/// The parts of a bzImage's setup header vigil checks before loading.
#[derive(Clone, Copy, Debug)]
pub struct KernelHeader {
    pub protocol: u16,
    pub cmdline_max: usize,
    pub initrd_addr_max: u64,
    pub init_size: u64,
    pub alignment: u64,
    /// The raw header, copied into `boot_params` for direct boot.
    pub raw: setup_header,
}

/// Reads and validates the setup header of the bzImage at `path`.
pub fn read_header(path: &Path) -> Result<KernelHeader, BootError> {
    let read_err = |source| BootError::KernelRead {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut hdr = setup_header::default();
    file.seek(SeekFrom::Start(SETUP_HEADER_OFFSET))
        .map_err(read_err)?;
    if file.read_exact(hdr.as_mut_slice()).is_err() || { hdr.header } != HDRS_MAGIC {
        return Err(BootError::NotBzImage {
            path: path.to_owned(),
        });
    }
    let (version, xloadflags) = (hdr.version, hdr.xloadflags);
    if version < MIN_PROTOCOL || xloadflags & XLF_KERNEL_64 == 0 {
        return Err(BootError::No64BitEntry {
            path: path.to_owned(),
            version,
        });
    }
    Ok(KernelHeader {
        protocol: version,
        cmdline_max: hdr.cmdline_size as usize,
        initrd_addr_max: u64::from(hdr.initrd_addr_max),
        init_size: u64::from(hdr.init_size),
        alignment: u64::from(hdr.kernel_alignment),
        raw: hdr,
    })
}

/// What the boot vCPU needs to start the kernel.
#[derive(Clone, Copy, Debug)]
pub struct BootEntry {
    pub rip: u64,
    pub zero_page: u64,
    /// Known when vigil placed the kernel itself.
    pub layout: Option<KernelLayout>,
}

/// A kernel, initramfs and command line to boot.
pub struct BootSpec<'a> {
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub cmdline: &'a str,
    pub loader: Loader,
}

/// Where the kernel ended up, when vigil placed it.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct KernelLayout {
    pub phys_base: u64,
    /// Virtual address of `_text`.
    pub virt_text: u64,
    pub randomized: bool,
}

/// Loads everything into `mem` (of `mem_size` bytes) and writes the zero page.
pub fn load(mem: &GuestMemoryMmap, mem_size: u64, spec: &BootSpec) -> Result<BootEntry, BootError> {
    let header = read_header(spec.kernel)?;
    if spec.cmdline.len() > header.cmdline_max {
        return Err(BootError::CmdlineTooLong {
            len: spec.cmdline.len(),
            max: header.cmdline_max,
        });
    }
    write_cmdline(mem, spec.cmdline, header.cmdline_max)?;
    let mut params = boot_params {
        hdr: header.raw,
        ..Default::default()
    };
    let place_initrd = |floor: u64| match spec.initrd {
        Some(path) => load_initrd(mem, path, &header, mem_size, floor).map(Some),
        None => Ok(None),
    };
    let (rip, kernel_layout, initrd) = match spec.loader {
        Loader::Decompressor => {
            let (rip, top) = load_bzimage(mem, spec.kernel, &header, &mut params)?;
            (rip, None, place_initrd(top)?)
        }
        Loader::Direct => {
            // Initramfs at the top of RAM, the kernel at random below it.
            let initrd = place_initrd(direct::LOAD_PHYSICAL_ADDR + header.init_size)?;
            let payload = vigil_images::vmlinux::extract(spec.kernel)?;
            tracing::info!("kernel payload ready");
            let limit = initrd.map_or(layout::ram_regions(mem_size)[0].1, |(addr, _)| addr);
            let (rip, placed) = load_direct(mem, &payload, &header, limit, spec.cmdline)?;
            if placed.randomized {
                params.hdr.loadflags |= direct::KASLR_FLAG;
            }
            (rip, Some(placed), initrd)
        }
    };
    params.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    params.hdr.cmd_line_ptr = CMDLINE as u32;
    params.hdr.cmdline_size = spec.cmdline.len() as u32 + 1;
    if let Some((addr, size)) = initrd {
        params.hdr.ramdisk_image = addr as u32;
        params.hdr.ramdisk_size = size as u32;
    }
    e820::fill(&mut params, mem_size)?;

    LinuxBootConfigurator::write_bootparams::<GuestMemoryMmap>(
        &BootParams::new(&params, GuestAddress(ZERO_PAGE)),
        mem,
    )
    .map_err(|e| BootError::Params(e.to_string()))?;
    Ok(BootEntry {
        rip,
        zero_page: ZERO_PAGE,
        layout: kernel_layout,
    })
}

/// Loads the bzImage for its own decompressor; returns the 64-bit entry
/// and the top of the region the decompressor works in.
fn load_bzimage(
    mem: &GuestMemoryMmap,
    path: &Path,
    header: &KernelHeader,
    params: &mut boot_params,
) -> Result<(u64, u64), BootError> {
    let mut image = File::open(path).map_err(|source| BootError::KernelRead {
        path: path.to_owned(),
        source,
    })?;
    let loaded = BzImage::load(mem, None, &mut image, Some(GuestAddress(HIMEM_START)))
        .map_err(BootError::Load)?;
    params.hdr = loaded.setup_header.unwrap_or(header.raw);
    let start = loaded.kernel_load.raw_value();
    let top = start + header.init_size.max(loaded.kernel_end - start);
    Ok((start + STARTUP_64_OFFSET, top))
}

/// In-monitor KASLR: place the decompressed kernel below `limit`.
fn load_direct(
    mem: &GuestMemoryMmap,
    payload: &Path,
    header: &KernelHeader,
    limit: u64,
    cmdline: &str,
) -> Result<(u64, KernelLayout), BootError> {
    let randomize = !cmdline.split_whitespace().any(|w| w == "nokaslr");
    let kernel = direct::KernelPayload::open(payload)?;
    let place = direct::choose_placement(header.init_size, header.alignment, limit, randomize)?;
    let rip = kernel.load(mem, place.phys_base, place.virt_base)?;
    Ok((
        rip,
        KernelLayout {
            phys_base: place.phys_base,
            virt_text: direct::START_KERNEL_MAP + place.virt_base,
            randomized: randomize,
        },
    ))
}

fn write_cmdline(mem: &GuestMemoryMmap, text: &str, max: usize) -> Result<(), BootError> {
    let mut cmdline = Cmdline::new(max + 1).map_err(|e| BootError::Cmdline(e.to_string()))?;
    if !text.is_empty() {
        cmdline
            .insert_str(text)
            .map_err(|e| BootError::Cmdline(e.to_string()))?;
    }
    linux_loader::loader::load_cmdline(mem, GuestAddress(CMDLINE), &cmdline)
        .map_err(|e| BootError::Cmdline(e.to_string()))
}

/// Places the initramfs as high as the kernel allows in low RAM, page
/// aligned, and above the region the kernel decompresses into.
fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    header: &KernelHeader,
    mem_size: u64,
    kernel_end: u64,
) -> Result<(u64, u64), BootError> {
    let read_err = |source| BootError::InitrdRead {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    let low_ram_end = layout::ram_regions(mem_size)[0].1;
    let limit = low_ram_end.min(header.initrd_addr_max.saturating_add(1));
    let too_large = || BootError::InitrdTooLarge {
        path: path.to_owned(),
        size,
        limit,
    };
    let addr = limit.checked_sub(size).ok_or_else(too_large)? & !(PAGE - 1);
    if addr < kernel_end {
        return Err(too_large());
    }
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, size as usize)
        .map_err(|e| read_err(std::io::Error::other(e.to_string())))?;
    Ok((addr, size))
}

use vm_memory::Bytes as _;
