//! Stand-alone front end for the CLI pieces until the vmm wires them in:
//! `cargo run --release -p vigil-crypto --example crypto_cli -- bench`.

use clap::Parser;

#[derive(Parser)]
enum Cli {
    #[command(subcommand)]
    Crypto(vigil_crypto::cli::CryptoCommand),
    #[command(subcommand)]
    Luks(vigil_crypto::cli::LuksCommand),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Crypto(c) => vigil_crypto::cli::run_crypto(c),
        Cli::Luks(c) => vigil_crypto::cli::run_luks(c),
    }
}
