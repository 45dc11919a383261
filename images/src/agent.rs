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

/// Names a prebuilt agent binary to use instead of building one.
pub const AGENT_ENV: &str = "VIGIL_AGENT";

/// Builds `vigil-agent` (release, static, stripped) and returns its path.
/// A separate target directory keeps this build from waiting on (or
/// invalidating) the caller's own. `$VIGIL_AGENT` names a prebuilt one;
/// inside the test host an existing build is used as is (cargo under TCG
/// is slow).
pub fn build() -> Result<PathBuf, ImageError> {
    if let Some(path) = std::env::var_os(AGENT_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(ImageError::Invalid(format!(
                "{AGENT_ENV}={} is not a file",
                path.display()
            )));
        }
        return Ok(path);
    }
    let workspace = workspace_dir();
    let target_dir = workspace.join("target").join("agent");
    let binary = target_dir.join(TARGET).join("release").join("vigil-agent");
    if std::env::var_os(crate::testhost::INSIDE_ENV).is_some() && binary.is_file() {
        return Ok(binary);
    }
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
    Ok(binary)
}
