//! The default guest: Debian's kernel, busybox, the guest agent as init,
//! and the modules vigil's devices and tests need.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::cache::{cache_dir, sha256_cached, sha256_file, write_atomic};
use crate::initramfs::Builder;
use crate::manifest::{Input, Manifest, Output};
use crate::{agent, debian, io_err, modules, progress, ImageError};

/// Bumped whenever the image layout changes, so caches are rebuilt.
const FORMAT: &str = "vigil-guest-2";

/// Modules for the virtio devices (PCI transport, rng, blk, crypto,
/// console, vsock) and for IPsec and AF_ALG tests in the guest.
pub const GUEST_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_rng",
    "virtio_blk",
    "virtio_crypto",
    "virtio_console",
    "vmw_vsock_virtio_transport",
    "esp4",
    "xfrm_user",
    "af_alg",
    "algif_skcipher",
    "algif_aead",
    "algif_hash",
    "algif_rng",
];

/// What to put in a guest beyond the defaults.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// More modules (by name) to load after [`GUEST_MODULES`], with their
    /// dependencies.
    pub extra_modules: Vec<String>,
    /// More files: (path inside the image, file on the host, mode).
    pub extra_files: Vec<(String, PathBuf, u32)>,
    /// Use this agent binary instead of building it.
    pub agent: Option<PathBuf>,
}

/// A built guest: what `vigil run` needs to boot it.
#[derive(Clone, Debug)]
pub struct GuestImage {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub manifest: PathBuf,
    pub kernel_release: String,
    /// The kernel package's module tree, for tests that need more modules.
    pub modules_dir: PathBuf,
}

/// Builds the default guest, or returns the cached build for these inputs.
pub fn default_guest() -> Result<GuestImage, ImageError> {
    build_guest(&BuildOptions::default())
}

/// Builds a guest with extra modules or files, cached like the default.
pub fn build_guest(options: &BuildOptions) -> Result<GuestImage, ImageError> {
    let _lock = crate::cache::lock()?;
    let kernel = debian::kernel()?;
    let busybox = debian::fetch("busybox-static")?;
    let agent = match &options.agent {
        Some(path) => path.clone(),
        None => agent::build()?,
    };
    let agent_sha = sha256_cached(&agent)?;

    let wanted: Vec<&str> = GUEST_MODULES
        .iter()
        .copied()
        .chain(options.extra_modules.iter().map(String::as_str))
        .collect();
    let mut key_parts = vec![
        FORMAT.to_owned(),
        kernel.package.sha256.clone(),
        busybox.sha256.clone(),
        agent_sha.clone(),
        wanted.join(","),
    ];
    for (path, file, mode) in &options.extra_files {
        key_parts.push(format!("{path} {mode:o} {}", sha256_file(file)?));
    }
    let key = hex::encode(Sha256::digest(key_parts.join("\n")));
    let dir = cache_dir().join("images").join(&key[..16]);
    let image = GuestImage {
        kernel: kernel.vmlinuz.clone(),
        initrd: dir.join("initramfs.cpio"),
        manifest: dir.join("manifest.json"),
        kernel_release: kernel.release.clone(),
        modules_dir: kernel.modules_dir.clone(),
    };
    if image.initrd.is_file() && image.manifest.is_file() {
        return Ok(image);
    }

    let _step = progress::step(format!("building initramfs {}", &key[..16]));
    let order = modules::load_order(&kernel.modules_dir, &wanted)?;
    let mut builder = Builder::new();
    builder.busybox(&busybox.root.join("bin/busybox"))?;
    builder.copy("sbin/vigil-agent", 0o755, &agent)?;
    builder.symlink("init", "/sbin/vigil-agent");
    let module_names = builder.modules(&kernel.release, &kernel.modules_dir, &order)?;
    for (path, file, mode) in &options.extra_files {
        builder.copy(path.trim_start_matches('/'), *mode, file)?;
    }
    let archive = builder.finish();
    write_atomic(&image.initrd, &archive)?;

    let manifest = Manifest {
        image: key,
        kernel_release: kernel.release.clone(),
        inputs: vec![
            input(&kernel.package),
            input(&busybox),
            Input {
                name: "vigil-agent".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                file: agent,
                sha256: agent_sha,
            },
        ],
        modules: module_names,
        extra_files: options
            .extra_files
            .iter()
            .map(|(path, file, _)| {
                Ok(Input {
                    name: path.clone(),
                    version: String::new(),
                    file: file.clone(),
                    sha256: sha256_file(file)?,
                })
            })
            .collect::<Result<_, ImageError>>()?,
        outputs: vec![output(&kernel.vmlinuz)?, output(&image.initrd)?],
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ImageError::Invalid(format!("manifest: {e}")))?;
    write_atomic(&image.manifest, &json)?;
    Ok(image)
}

fn input(p: &debian::Package) -> Input {
    Input {
        name: p.name.clone(),
        version: p.version.clone(),
        file: p.deb.clone(),
        sha256: p.sha256.clone(),
    }
}

pub(crate) fn output(path: &std::path::Path) -> Result<Output, ImageError> {
    Ok(Output {
        file: path.to_owned(),
        sha256: sha256_file(path)?,
        bytes: std::fs::metadata(path)
            .map_err(io_err(format!("stat {}", path.display())))?
            .len(),
    })
}

/// The kernel command-line option that makes the guest agent run
/// `command` with /bin/sh, print `vigil-agent: exit <status>` and reboot.
/// Base64 (`vigil.run64=`), because the kernel cannot quote `"`.
pub fn agent_run_option(command: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::from("vigil.run64=");
    for chunk in command.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The agent's ready line prefix and exit line prefix on the console.
pub const AGENT_READY: &str = "vigil-agent: ready ";
pub const AGENT_EXIT: &str = "vigil-agent: exit ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_option_is_base64() {
        assert_eq!(
            agent_run_option("echo \"a b\"; exit 3"),
            "vigil.run64=ZWNobyAiYSBiIjsgZXhpdCAz"
        );
        assert_eq!(agent_run_option("hi"), "vigil.run64=aGk");
        assert_eq!(agent_run_option(""), "vigil.run64=");
    }
}
