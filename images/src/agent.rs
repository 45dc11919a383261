//! Building the guest agent as a static binary from this workspace.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{progress, run, ImageError};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The workspace this crate was built from.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// Builds `vigil-agent` (release, static, stripped) and returns its path.
/// A separate target directory keeps this build from waiting on (or
/// invalidating) the caller's own.
pub fn build() -> Result<PathBuf, ImageError> {
    let workspace = workspace_dir();
    let target_dir = workspace.join("target").join("agent");
    let _step = progress::step("building the guest agent (static)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "vigil-guest-agent",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "-C target-feature=+crt-static",
        )
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false"))?;
    Ok(target_dir.join(TARGET).join("release").join("vigil-agent"))
}
