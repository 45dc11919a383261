//! Stand-alone `vigil kernel ...` for use before the vmm binary wires it:
//! `cargo run -p vigil-monitor --example vigil_kernel -- profile <vmlinuz> [--json]`.

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: vigil_monitor::cli::KernelCommand,
}

fn main() -> anyhow::Result<()> {
    vigil_monitor::cli::run_kernel(Args::parse().cmd)
}
