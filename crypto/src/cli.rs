//! CLI pieces for `vigil crypto ...` and `vigil luks ...` (wired by the vmm).
//! anyhow lives only here, at the binary's edge.

use crate::bench::{self, BenchConfig};
use crate::registry::Registry;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum CryptoCommand {
    /// Print the algorithm registry the way /proc/crypto does.
    List,
    /// Throughput of every implementation next to `openssl speed -evp` (JSON lines).
    Bench {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 1)]
        seconds: u64,
        /// Only this algorithm (repeatable): xts(aes), cbc(aes), gcm(aes), sha256.
        #[arg(long = "alg")]
        algs: Vec<String>,
        /// Skip the openssl peer.
        #[arg(long)]
        no_openssl: bool,
    },
}

pub fn run_crypto(cmd: CryptoCommand) -> anyhow::Result<()> {
    let reg = Registry::with_defaults();
    match cmd {
        CryptoCommand::List => {
            print!("{}", reg.proc_crypto());
            if !crate::afalg::available() {
                eprintln!("note: AF_ALG backend absent (host kernel has no AF_ALG)");
            }
        }
        CryptoCommand::Bench {
            seconds,
            algs,
            no_openssl,
        } => {
            let cfg = BenchConfig {
                duration: Duration::from_secs(seconds.max(1)),
                with_openssl: !no_openssl,
                only: algs,
                ..BenchConfig::default()
            };
            bench::run(&reg, &cfg, |row| {
                if let Ok(s) = serde_json::to_string(row) {
                    println!("{s}");
                }
            })?;
        }
    }
    Ok(())
}
