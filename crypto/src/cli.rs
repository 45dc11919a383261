//! CLI pieces for `vigil crypto ...` and `vigil luks ...` (wired by the vmm).
//! anyhow lives only here, at the binary's edge.

use crate::bench::{self, BenchConfig};
use crate::luks::volume::{argon2id_kdf, detect_version, pbkdf2_kdf, read_key_file, LuksVersion};
use crate::luks::LuksVolume;
use crate::registry::Registry;
use std::path::PathBuf;
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
        /// Best of this many runs per figure (shared hosts are noisy).
        #[arg(long, default_value_t = 3)]
        repeats: u32,
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
            repeats,
        } => {
            let cfg = BenchConfig {
                duration: Duration::from_secs(seconds.max(1)),
                with_openssl: !no_openssl,
                repeats,
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

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PbkdfChoice {
    Pbkdf2,
    Argon2id,
}

#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// Read the passphrase from this file (verbatim); default: stdin, one line.
    #[arg(long = "key-file")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum LuksCommand {
    /// Create a new container file (aes-xts-plain64, LUKS2 or LUKS1).
    Format {
        image: PathBuf,
        /// luks2 (default) or luks1 (what QEMU reads; pbkdf2 only, 512-byte sectors).
        #[arg(long = "type", default_value = "luks2")]
        luks_type: String,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 64 << 20)]
        size: u64,
        #[arg(long, default_value_t = 512)]
        sector_size: usize,
        #[arg(long, value_enum, default_value_t = PbkdfChoice::Argon2id)]
        pbkdf: PbkdfChoice,
        /// pbkdf2 iterations or argon2id time cost.
        #[arg(long)]
        iterations: Option<u32>,
        /// argon2id memory in KiB.
        #[arg(long, default_value_t = 65536)]
        memory: u32,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Check that a passphrase opens a keyslot.
    TestPassphrase {
        image: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Print header information.
    Dump {
        image: PathBuf,
        /// Also print the volume key (needs the passphrase).
        #[arg(long)]
        dump_volume_key: bool,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Add a keyslot (LUKS2): existing passphrase via --key-file/stdin.
    AddKey {
        image: PathBuf,
        #[arg(long = "new-key-file")]
        new_key_file: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Remove the keyslot the given passphrase opens (LUKS2).
    RemoveKey {
        image: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
}

fn passphrase(k: &KeyArgs) -> anyhow::Result<Vec<u8>> {
    if let Some(p) = &k.key_file {
        return Ok(read_key_file(p)?);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
}

pub fn run_luks(cmd: LuksCommand) -> anyhow::Result<()> {
    match cmd {
        LuksCommand::Format {
            image,
            luks_type,
            size,
            sector_size,
            pbkdf,
            iterations,
            memory,
            key,
        } => {
            let pass = passphrase(&key)?;
            if luks_type == "luks1" {
                let v =
                    LuksVolume::create_luks1(&image, size, &pass, iterations.unwrap_or(600_000))?;
                println!(
                    "formatted {} (LUKS1, aes-xts-plain64, {} sectors)",
                    image.display(),
                    v.sectors()
                );
                return Ok(());
            }
            anyhow::ensure!(
                luks_type == "luks2",
                "unknown --type {luks_type} (luks1 or luks2)"
            );
            let kdf = match pbkdf {
                PbkdfChoice::Pbkdf2 => pbkdf2_kdf(iterations.unwrap_or(600_000))?,
                PbkdfChoice::Argon2id => argon2id_kdf(iterations.unwrap_or(4), memory, 1)?,
            };
            let v = LuksVolume::create_luks2(&image, size, &pass, kdf, sector_size)?;
            println!(
                "formatted {} (LUKS2, aes-xts-plain64, {} sectors of {} bytes)",
                image.display(),
                v.sectors(),
                v.sector_size()
            );
        }
        LuksCommand::TestPassphrase { image, key } => {
            let v = LuksVolume::open(&image, &passphrase(&key)?)?;
            println!("passphrase opens keyslot {}", v.keyslot);
        }
        LuksCommand::Dump {
            image,
            dump_volume_key,
            key,
        } => {
            if dump_volume_key {
                let v = LuksVolume::open(&image, &passphrase(&key)?)?;
                print_dump(&image, &v)?;
                println!("Volume key:\t{}", hex::encode(v.volume_key()));
            } else {
                print_header(&image)?;
            }
        }
        LuksCommand::AddKey {
            image,
            new_key_file,
            key,
        } => {
            let mut v = LuksVolume::open(&image, &passphrase(&key)?)?;
            let new = read_key_file(&new_key_file)?;
            let id = v.add_key(&new, argon2id_kdf(4, 65536, 1)?)?;
            println!("added keyslot {id}");
        }
        LuksCommand::RemoveKey { image, key } => {
            let pass = passphrase(&key)?;
            let mut v = LuksVolume::open(&image, &pass)?;
            let id = v.remove_key(&pass)?;
            println!("removed keyslot {id}");
        }
    }
    Ok(())
}

fn print_header(image: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(image)?;
    let len = f.metadata()?.len();
    match detect_version(&f)? {
        LuksVersion::V1 => {
            let mut b = vec![0u8; crate::luks::luks1::HEADER_LEN];
            f.read_exact_at(&mut b, 0)?;
            let h = crate::luks::luks1::Luks1Header::parse(&b)?;
            println!(
                "Version:\t1\nUUID:\t{}\nCipher:\t{}-{}\nHash:\t{}",
                h.uuid,
                h.cipher_name,
                h.cipher_mode,
                h.hash.name()
            );
            println!("Payload offset:\t{}", h.payload_offset);
            for (i, s) in h.slots.iter().enumerate() {
                println!(
                    "Key Slot {i}: {}",
                    if s.active { "ENABLED" } else { "DISABLED" }
                );
            }
        }
        LuksVersion::V2 => {
            let read = |o: u64, b: &mut [u8]| f.read_exact_at(b, o);
            let h = crate::luks::luks2::Luks2Header::read(&read, len)?;
            println!("Version:\t2\nEpoch:\t{}\nUUID:\t{}", h.seqid, h.uuid);
            println!(
                "Data segment:\toffset {} sector {} iv_tweak {}",
                h.segment.offset, h.segment.sector_size, h.segment.iv_tweak
            );
            for s in &h.keyslots {
                let kdf = match &s.kdf {
                    crate::luks::keyslot::Kdf::Pbkdf2 { iterations, .. } => {
                        format!("pbkdf2 ({iterations} iterations)")
                    }
                    crate::luks::keyslot::Kdf::Argon2id {
                        time, memory_kib, ..
                    } => {
                        format!("argon2id (time {time}, memory {memory_kib} KiB)")
                    }
                };
                println!(
                    "Keyslot {}:\t{} bits, {kdf}, area {}+{}",
                    s.id,
                    s.key_size * 8,
                    s.area_offset,
                    s.area_size
                );
            }
        }
    }
    Ok(())
}

fn print_dump(image: &std::path::Path, v: &LuksVolume) -> anyhow::Result<()> {
    print_header(image)?;
    println!("Sectors:\t{} x {} bytes", v.sectors(), v.sector_size());
    Ok(())
}
