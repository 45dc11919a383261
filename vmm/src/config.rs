//! VM configuration: a TOML file, overridden by command-line flags, checked
//! against the host before anything is built.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::console::ConsoleOutput;

/// The console on COM1, reboot through the i8042 (vigil exits), no waiting
/// on a panic, and no probing for PS/2 devices vigil does not have.
pub const DEFAULT_CMDLINE: &str =
    "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";
pub const DEFAULT_MEMORY_MIB: u64 = 256;
pub const MIN_MEMORY_MIB: u64 = 16;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no kernel given (use --kernel or [boot] kernel in the config)")]
    NoKernel,
    #[error("kernel image not found: {0}")]
    KernelMissing(PathBuf),
    #[error("initramfs not found: {0}")]
    InitrdMissing(PathBuf),
    #[error("memory must be at least {MIN_MEMORY_MIB} MiB, not {0} MiB")]
    MemoryTooSmall(u64),
    #[error("{requested} MiB of guest memory is more than this host has ({host} MiB)")]
    MemoryTooLarge { requested: u64, host: u64 },
    #[error("vCPU count must be between 1 and {max}, not {requested}")]
    VcpuCount { requested: u64, max: u64 },
}

/// `[boot]`: what to boot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootConfig {
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// `direct` (default): vigil decompresses, places and relocates the
    /// kernel itself (KASLR kept); `decompressor`: the bzImage's own stub.
    pub loader: Option<Loader>,
}

/// Who places the kernel in guest memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Loader {
    #[default]
    Direct,
    Decompressor,
}

/// `[machine]`: the virtual hardware.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    pub vcpus: Option<u64>,
    pub memory_mib: Option<u64>,
    /// Hide AES-NI/VAES from the guest's CPUID.
    #[serde(default)]
    pub hide_aes: bool,
}

/// `[serial]`: where the console goes: "stdout", "off" or a file path.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialConfig {
    pub output: Option<String>,
}

/// `[api]`: the control socket.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub socket: Option<PathBuf>,
}

/// The config file as written; every field optional so flags can fill in.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub boot: BootConfig,
    #[serde(default)]
    pub machine: MachineConfig,
    #[serde(default)]
    pub serial: SerialConfig,
    #[serde(default)]
    pub api: ApiConfig,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }
}

/// A checked configuration, ready to build a VM from.
#[derive(Clone, Debug, Serialize)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub loader: Loader,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub vcpus: u8,
    pub memory_mib: u64,
    pub hide_aes: bool,
    pub console: ConsoleOutput,
    pub api_socket: Option<PathBuf>,
}

/// Limits the host imposes, measured once.
#[derive(Clone, Copy, Debug)]
pub struct HostLimits {
    pub max_vcpus: u64,
    pub memory_mib: u64,
}

impl HostLimits {
    /// Host RAM from sysconf; vCPUs from KVM and the MP table.
    pub fn probe(kvm_max_vcpus: usize) -> Self {
        // SAFETY: sysconf has no preconditions.
        let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) }.max(0) as u64;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
        HostLimits {
            max_vcpus: (kvm_max_vcpus as u64).min(u64::from(crate::boot::mptable::MAX_CPUS)),
            memory_mib: (pages * page) >> 20,
        }
    }
}

pub fn parse_console(text: &str) -> ConsoleOutput {
    match text {
        "stdout" | "" => ConsoleOutput::Stdout,
        "off" | "none" => ConsoleOutput::Off,
        path => ConsoleOutput::File(PathBuf::from(path)),
    }
}

impl ConfigFile {
    /// Fills defaults and checks everything against `limits`.
    pub fn resolve(self, limits: HostLimits) -> Result<VmConfig, ConfigError> {
        let kernel = self.boot.kernel.ok_or(ConfigError::NoKernel)?;
        if !kernel.is_file() {
            return Err(ConfigError::KernelMissing(kernel));
        }
        if let Some(initrd) = &self.boot.initrd {
            if !initrd.is_file() {
                return Err(ConfigError::InitrdMissing(initrd.clone()));
            }
        }
        let memory_mib = self.machine.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB);
        if memory_mib < MIN_MEMORY_MIB {
            return Err(ConfigError::MemoryTooSmall(memory_mib));
        }
        if memory_mib > limits.memory_mib {
            return Err(ConfigError::MemoryTooLarge {
                requested: memory_mib,
                host: limits.memory_mib,
            });
        }
        let vcpus = self.machine.vcpus.unwrap_or(1);
        if vcpus == 0 || vcpus > limits.max_vcpus {
            return Err(ConfigError::VcpuCount {
                requested: vcpus,
                max: limits.max_vcpus,
            });
        }
        Ok(VmConfig {
            kernel,
            loader: self.boot.loader.unwrap_or_default(),
            initrd: self.boot.initrd,
            cmdline: self
                .boot
                .cmdline
                .unwrap_or_else(|| DEFAULT_CMDLINE.to_owned()),
            vcpus: vcpus as u8,
            memory_mib,
            hide_aes: self.machine.hide_aes,
            console: parse_console(self.serial.output.as_deref().unwrap_or("stdout")),
            api_socket: self.api.socket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HostLimits = HostLimits {
        max_vcpus: 32,
        memory_mib: 4096,
    };

    fn with_kernel(f: impl FnOnce(&mut ConfigFile)) -> Result<VmConfig, ConfigError> {
        let kernel = tempfile::NamedTempFile::new().unwrap();
        let mut file = ConfigFile::default();
        file.boot.kernel = Some(kernel.path().to_owned());
        f(&mut file);
        file.resolve(LIMITS)
    }

    #[test]
    fn parses_a_full_file() {
        let text = r#"
            [boot]
            kernel = "/boot/vmlinuz"
            cmdline = "console=ttyS0"
            [machine]
            vcpus = 2
            memory_mib = 512
            [serial]
            output = "/tmp/console.log"
            [api]
            socket = "/tmp/vigil.sock"
        "#;
        let file: ConfigFile = toml::from_str(text).unwrap();
        assert_eq!(file.machine.vcpus, Some(2));
        assert_eq!(
            parse_console(file.serial.output.as_deref().unwrap()),
            ConsoleOutput::File("/tmp/console.log".into())
        );
    }

    #[test]
    fn rejects_unknown_keys() {
        assert!(toml::from_str::<ConfigFile>("[machine]\nmemroy_mib = 3\n").is_err());
    }

    #[test]
    fn checks_limits() {
        assert!(with_kernel(|_| {}).is_ok());
        assert!(matches!(
            with_kernel(|f| f.machine.memory_mib = Some(0)),
            Err(ConfigError::MemoryTooSmall(0))
        ));
        assert!(matches!(
            with_kernel(|f| f.machine.memory_mib = Some(1 << 40)),
            Err(ConfigError::MemoryTooLarge { .. })
        ));
        assert!(matches!(
            with_kernel(|f| f.machine.vcpus = Some(0)),
            Err(ConfigError::VcpuCount { .. })
        ));
        assert!(matches!(
            with_kernel(|f| f.machine.vcpus = Some(33)),
            Err(ConfigError::VcpuCount { .. })
        ));
        assert!(matches!(
            ConfigFile::default().resolve(LIMITS),
            Err(ConfigError::NoKernel)
        ));
    }
}
