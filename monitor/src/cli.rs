//! `vigil kernel ...` subcommands (wired into the vigil binary by vmm).

use crate::profile::{cache, KernelProfile};
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum KernelCommand {
    /// Build (or load from cache) the profile of a kernel image and print it.
    Profile {
        /// bzImage (vmlinuz) to profile.
        image: PathBuf,
        /// Print the whole profile as JSON (symbols included).
        #[arg(long)]
        json: bool,
    },
}

/// `vigil inspect --dump <file> --kernel <vmlinuz> [--json]`. (The live
/// `--api <socket>` form belongs to the vmm, which owns the VM.)
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// QEMU `dump-guest-memory` ELF core of the guest.
    #[arg(long)]
    pub dump: PathBuf,
    /// The bzImage the guest booted.
    #[arg(long)]
    pub kernel: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run_inspect(args: InspectArgs) -> anyhow::Result<()> {
    let (profile, _) = cache::load_or_build(&args.kernel)
        .with_context(|| format!("profiling {}", args.kernel.display()))?;
    let dump = crate::guest::coredump::CoreDump::open(&args.dump)
        .with_context(|| format!("opening {}", args.dump.display()))?;
    let report = crate::inspect::inspect(&dump, &profile).context("inspecting the dump")?;
    if args.json {
        serde_json::to_writer(std::io::stdout().lock(), &report)?;
        println!();
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

pub fn run_kernel(cmd: KernelCommand) -> anyhow::Result<()> {
    match cmd {
        KernelCommand::Profile { image, json } => {
            let t = std::time::Instant::now();
            let (p, src) = cache::load_or_build(&image)
                .with_context(|| format!("profiling {}", image.display()))?;
            let elapsed = t.elapsed();
            if json {
                serde_json::to_writer(std::io::stdout().lock(), &p)?;
                println!();
            } else {
                print!("{}", summary(&p));
                println!(
                    "profile: {:?} in {:.1} ms",
                    src,
                    elapsed.as_secs_f64() * 1e3
                );
            }
            Ok(())
        }
    }
}

/// Human-readable profile summary.
pub fn summary(p: &KernelProfile) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let m = &p.measurements;
    let _ = writeln!(s, "banner: {}", p.banner.as_deref().unwrap_or("?"));
    let _ = writeln!(
        s,
        "boot protocol: {:#x}, compression: {:?}",
        p.setup.boot_protocol, p.compression
    );
    let _ = writeln!(
        s,
        "image: {} bytes sha256 {} sha384 {}",
        m.image_size, m.image_sha256, m.image_sha384
    );
    let _ = writeln!(
        s,
        "kernel: {} bytes sha256 {} sha384 {}",
        m.kernel_size, m.kernel_sha256, m.kernel_sha384
    );
    let _ = writeln!(
        s,
        "symbols: {} (kallsyms relative_base {:#x})",
        p.symbols.len(),
        p.kallsyms.relative_base
    );
    let sec = &p.sections;
    for (n, r) in [
        ("image", sec.image),
        ("text", sec.text),
        ("rodata", sec.rodata),
        ("ro_after_init", sec.ro_after_init),
        ("init", sec.init),
    ] {
        let _ = writeln!(
            s,
            "section {n:<14} {:#x}..{:#x} ({} bytes)",
            r.start,
            r.end,
            r.len()
        );
    }
    let _ = writeln!(s, "BTF: {} types", p.btf_types);
    for (name, l) in &p.structs {
        let _ = writeln!(
            s,
            "struct {name}: {} bytes, {} fields",
            l.size,
            l.fields.len()
        );
    }
    for c in &p.certificates {
        let _ = writeln!(s, "certificate: {} (sha256 {})", c.subject, c.sha256);
    }
    s
}
