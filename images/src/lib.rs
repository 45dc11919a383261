//! Guest images for vigil, built from Debian packages.
//!
//! [`default_guest`] fetches Debian's current `linux-image-amd64` kernel and
//! `busybox-static` ([`debian`]), picks the kernel modules the guest needs
//! in dependency order ([`modules`]), builds the guest agent ([`agent`]),
//! and packs them into a reproducible initramfs ([`cpio`], [`initramfs`]),
//! cached by the hash of its inputs ([`cache`]) with a [`manifest`] of every
//! input's SHA-256. [`testhost`] builds and runs the nested test host used
//! where the host's KVM cannot boot Linux.

pub mod agent;
pub mod cache;
pub mod cpio;
pub mod debian;
pub mod guest;
pub mod initramfs;
pub mod manifest;
pub mod modules;
pub mod progress;
pub mod testhost;
pub mod vmlinux;

pub use cache::cache_dir;
pub use debian::{kernel as kernel_package, Kernel};
pub use guest::{build_guest, default_guest, BuildOptions, GuestImage};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("Debian package {0} not found by apt (is `apt-get update` possible here?)")]
    PackageNotFound(String),
    #[error("kernel module {name} is neither in {dir} nor built in")]
    ModuleMissing { name: String, dir: PathBuf },
    #[error("kernel module {path} is malformed: {reason}")]
    BadModule { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.into();
    move |source| ImageError::Io { what, source }
}

/// Runs a command, failing with its stderr if it exits non-zero.
pub(crate) fn run(cmd: &mut std::process::Command) -> Result<Vec<u8>, ImageError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| ImageError::Command {
        command: shown.clone(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(ImageError::Command {
            command: shown,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}
