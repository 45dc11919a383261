//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ConfigFile;

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version,
    about = "A KVM monitor that keeps a Linux guest kernel intact from outside"
)]
pub struct Cli {
    /// Log filter (tracing syntax), e.g. `info` or `vigil_vmm=debug`.
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Boot a guest and run it until it stops.
    Run(RunArgs),
    /// Build the default Debian guest if needed and boot it (through the
    /// nested test host where this host's KVM cannot boot Linux).
    Demo,
    /// Talk to a running vigil over its control socket.
    Ctl(CtlArgs),
    /// What this host offers: KVM flavour, where Linux guests will run,
    /// QEMU for the nested test host.
    Doctor,
    /// Guest images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Benchmarks against a peer measured in the same run (JSON lines).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The host cipher engine.
    #[command(subcommand)]
    Crypto(vigil_crypto::cli::CryptoCommand),
    /// LUKS containers on plain files, in cryptsetup's spirit.
    #[command(subcommand)]
    Luks(vigil_crypto::cli::LuksCommand),
    /// Kernel images: profiles for introspection.
    #[command(subcommand)]
    Kernel(vigil_monitor::cli::KernelCommand),
    /// Introspect a guest kernel: a running vigil VM (`--api SOCKET`) or a
    /// QEMU memory dump (`--dump CORE --kernel VMLINUZ`).
    Inspect(InspectArgs),
}

/// `vigil inspect`: exactly one source, a live VM or a dump.
#[derive(Args, Debug, Clone)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["api", "dump"]),
))]
pub struct InspectArgs {
    /// Control socket of a running vigil: pause it, read, resume.
    #[arg(long, value_name = "SOCKET")]
    pub api: Option<PathBuf>,
    /// QEMU `dump-guest-memory` ELF core of the guest (needs --kernel).
    #[arg(long, value_name = "CORE", requires = "kernel")]
    pub dump: Option<PathBuf>,
    /// The bzImage the dumped guest booted (only with --dump).
    #[arg(long, value_name = "VMLINUZ", requires = "dump")]
    pub kernel: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where `vigil inspect` reads the guest from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectSource {
    Api(PathBuf),
    Dump { dump: PathBuf, kernel: PathBuf },
}

impl InspectArgs {
    /// The one source given (clap has checked there is exactly one).
    pub fn source(&self) -> Result<InspectSource, String> {
        match (&self.api, &self.dump, &self.kernel) {
            (Some(api), None, None) => Ok(InspectSource::Api(api.clone())),
            (None, Some(dump), Some(kernel)) => Ok(InspectSource::Dump {
                dump: dump.clone(),
                kernel: kernel.clone(),
            }),
            _ => Err("give either --api SOCKET or --dump CORE --kernel VMLINUZ".into()),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build (or reuse) the default Debian guest and print its manifest.
    Build,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Time to the guest agent's ready line and peak RSS, vigil vs QEMU microvm.
    Boot(BootBenchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct BootBenchArgs {
    /// Boots per VMM.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 256)]
    pub memory: u64,
    /// Measure here, with the given files (used inside the test host).
    #[arg(long, hide = true)]
    pub here: bool,
    #[arg(long, hide = true)]
    pub kernel: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub initrd: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub vigil: Option<PathBuf>,
}

#[derive(Args, Debug, Default, Clone)]
pub struct RunArgs {
    /// TOML config file; flags override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Linux bzImage to boot.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Initramfs (cpio, optionally compressed).
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long)]
    pub cmdline: Option<String>,
    /// Who places the kernel: vigil itself (`direct`, in-monitor KASLR) or
    /// the bzImage's decompressor.
    #[arg(long, value_enum)]
    pub loader: Option<crate::config::Loader>,
    /// Number of vCPUs.
    #[arg(long)]
    pub vcpus: Option<u64>,
    /// Guest memory in MiB.
    #[arg(long = "memory", value_name = "MIB")]
    pub memory_mib: Option<u64>,
    /// Console: `stdout`, `off`, or a file path.
    #[arg(long)]
    pub serial: Option<String>,
    /// Control API socket path.
    #[arg(long)]
    pub api_socket: Option<PathBuf>,
    /// Hide AES-NI/VAES from the guest.
    #[arg(long)]
    pub hide_aes: bool,
}

impl RunArgs {
    /// Loads the config file, if any, and lays the flags over it.
    pub fn merged(&self) -> Result<ConfigFile, crate::config::ConfigError> {
        let mut file = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let boot = &mut file.boot;
        boot.kernel = self.kernel.clone().or(boot.kernel.take());
        boot.initrd = self.initrd.clone().or(boot.initrd.take());
        boot.cmdline = self.cmdline.clone().or(boot.cmdline.take());
        boot.loader = self.loader.or(boot.loader);
        let machine = &mut file.machine;
        machine.vcpus = self.vcpus.or(machine.vcpus);
        machine.memory_mib = self.memory_mib.or(machine.memory_mib);
        machine.hide_aes |= self.hide_aes;
        file.serial.output = self.serial.clone().or(file.serial.output.take());
        file.api.socket = self.api_socket.clone().or(file.api.socket.take());
        Ok(file)
    }
}

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The vigil control socket.
    #[arg(long)]
    pub api: PathBuf,
    #[command(subcommand)]
    pub action: CtlAction,
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum CtlAction {
    /// Is vigil answering?
    Ping,
    /// VM state and configuration as JSON.
    Status,
    /// Park every vCPU.
    Pause,
    /// Resume a paused VM.
    Resume,
    /// Stop the VM; vigil exits.
    Shutdown,
}

impl CtlAction {
    /// HTTP method and API action for this command.
    pub fn request(self) -> (&'static str, &'static str) {
        match self {
            CtlAction::Ping => ("GET", "vmm.ping"),
            CtlAction::Status => ("GET", "vm.info"),
            CtlAction::Pause => ("PUT", "vm.pause"),
            CtlAction::Resume => ("PUT", "vm.resume"),
            CtlAction::Shutdown => ("PUT", "vm.shutdown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<InspectSource, String> {
        let cli = Cli::try_parse_from(std::iter::once("vigil").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        match cli.command {
            Command::Inspect(a) => a.source(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inspect_takes_a_socket_or_a_dump_with_its_kernel() {
        assert_eq!(
            parse(&["inspect", "--api", "/s", "--json"]),
            Ok(InspectSource::Api("/s".into()))
        );
        assert_eq!(
            parse(&["inspect", "--dump", "/d", "--kernel", "/k"]),
            Ok(InspectSource::Dump {
                dump: "/d".into(),
                kernel: "/k".into()
            })
        );
        let both = parse(&["inspect", "--api", "/s", "--dump", "/d", "--kernel", "/k"]);
        assert!(both.unwrap_err().contains("cannot be used with"));
        let neither = parse(&["inspect", "--json"]).unwrap_err();
        assert!(
            neither.contains("--api") && neither.contains("--dump"),
            "{neither}"
        );
        assert!(parse(&["inspect", "--dump", "/d"])
            .unwrap_err()
            .contains("--kernel"));
        assert!(parse(&["inspect", "--kernel", "/k"]).is_err());
    }
}
