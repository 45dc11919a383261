//! Profiles cached on disk by image SHA-256, so a restart costs a file
//! read instead of a decompression and table scan.

use super::{KernelProfile, PROFILE_VERSION};
use crate::error::ProfileError;
use bincode::Options as _;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// `$VIGIL_CACHE/profiles` if set, else `~/.cache/vigil/profiles`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VIGIL_CACHE") {
        return PathBuf::from(d).join("profiles");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/vigil/profiles")
}

/// Size-limited so a damaged cache file cannot demand a huge allocation.
fn codec() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new().with_limit(256 << 20)
}

/// Whether a profile came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Built,
}

fn io(path: &Path, source: std::io::Error) -> ProfileError {
    ProfileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Load the profile for the image at `path`, building and caching it if needed.
pub fn load_or_build(path: &Path) -> Result<(KernelProfile, Source), ProfileError> {
    load_or_build_in(path, &cache_dir())
}

pub fn load_or_build_in(path: &Path, dir: &Path) -> Result<(KernelProfile, Source), ProfileError> {
    let img = std::fs::read(path).map_err(|e| io(path, e))?;
    let sha = hex::encode(Sha256::digest(&img));
    // bincode, not JSON: the cached load is on the VM start path (JSON of
    // ~94k symbols parsed in ~20 ms; bincode in a few).
    let file = dir.join(format!("{sha}.v{PROFILE_VERSION}.bin"));
    if let Ok(bytes) = std::fs::read(&file) {
        match codec().deserialize::<KernelProfile>(&bytes) {
            Ok(p) if p.version == PROFILE_VERSION && p.measurements.image_sha256 == sha => {
                return Ok((p, Source::Cache))
            }
            // A stale or damaged cache entry is rebuilt, not trusted.
            _ => tracing::warn!(file = %file.display(), "ignoring unusable cached profile"),
        }
    }
    let p = KernelProfile::from_bzimage(&img)?;
    store(&p, dir, &file)?;
    Ok((p, Source::Built))
}

fn store(p: &KernelProfile, dir: &Path, file: &Path) -> Result<(), ProfileError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let bin = codec()
        .serialize(p)
        .map_err(|e| ProfileError::Cache(e.to_string()))?;
    // Write then rename so concurrent readers never see a partial file.
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bin).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, file).map_err(|e| io(file, e))
}
