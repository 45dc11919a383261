//! Stand-alone `vigil kernel ...` for use before the vmm binary wires it:
//! `cargo run -p vigil-monitor --example vigil_kernel -- kernel profile <vmlinuz> [--json]`
//! and `... -- inspect --dump <core> --kernel <vmlinuz> [--json]`.

use clap::Parser;

#[derive(Parser)]
enum Args {
    #[command(subcommand)]
    Kernel(vigil_monitor::cli::KernelCommand),
    Inspect(vigil_monitor::cli::InspectArgs),
}

fn main() -> anyhow::Result<()> {
    match Args::parse() {
        Args::Kernel(c) => vigil_monitor::cli::run_kernel(c),
        Args::Inspect(a) => vigil_monitor::cli::run_inspect(a),
    }
}
