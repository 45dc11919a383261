//! Debian packages: resolve, download with apt-get, extract with dpkg-deb.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cache::{cache_dir, sha256_cached};
use crate::{io_err, progress, run, ImageError};

/// An extracted package.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub deb: PathBuf,
    pub sha256: String,
    /// Where its files were extracted.
    pub root: PathBuf,
}

/// The concrete kernel package `linux-image-amd64` currently depends on.
pub fn current_kernel_package() -> Result<String, ImageError> {
    let find = || -> Result<Option<String>, ImageError> {
        let out = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
            .map(str::to_owned))
    };
    if let Some(name) = find().ok().flatten() {
        return Ok(name);
    }
    // A fresh machine may have no package lists yet.
    let _step = progress::step("apt-get update");
    run(Command::new("apt-get").args(["update", "-q"]))?;
    find()?.ok_or_else(|| ImageError::PackageNotFound("linux-image-amd64".into()))
}

fn field(deb: &Path, name: &str) -> Result<String, ImageError> {
    let out = run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// Downloads `name` (unless a .deb of it is cached) and extracts it.
pub fn fetch(name: &str) -> Result<Package, ImageError> {
    let debs = cache_dir().join("debs");
    std::fs::create_dir_all(&debs).map_err(io_err(format!("create {}", debs.display())))?;
    let deb = match cached_deb(&debs, name)? {
        Some(deb) => deb,
        None => {
            let _step = progress::step(format!("downloading {name}"));
            let tmp = tempfile::tempdir_in(&debs).map_err(io_err("temporary directory"))?;
            run(Command::new("apt-get")
                .arg("download")
                .arg(name)
                .current_dir(tmp.path()))?;
            let got = cached_deb(tmp.path(), name)?
                .ok_or_else(|| ImageError::PackageNotFound(name.to_owned()))?;
            let dest = debs.join(got.file_name().unwrap_or_default());
            std::fs::rename(&got, &dest).map_err(io_err(format!("move {}", dest.display())))?;
            dest
        }
    };
    let sha256 = sha256_cached(&deb)?;
    let root = cache_dir().join("pkgs").join(&sha256[..16]);
    if !root.join(".extracted").exists() {
        let _step = progress::step(format!("extracting {name}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(io_err(format!("create {}", root.display())))?;
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        std::fs::write(root.join(".extracted"), b"").map_err(io_err("mark extraction"))?;
    }
    Ok(Package {
        name: name.to_owned(),
        version: field(&deb, "Version")?,
        deb,
        sha256,
        root,
    })
}

fn cached_deb(dir: &Path, name: &str) -> Result<Option<PathBuf>, ImageError> {
    let prefix = format!("{name}_");
    let entries = std::fs::read_dir(dir).map_err(io_err(format!("list {}", dir.display())))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    found.sort();
    Ok(found.pop())
}

/// The kernel package's files: image, release and module tree.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub package: Package,
    pub release: String,
    pub vmlinuz: PathBuf,
    pub modules_dir: PathBuf,
}

/// Fetches Debian's current generic amd64 kernel.
pub fn kernel() -> Result<Kernel, ImageError> {
    let package = fetch(&current_kernel_package()?)?;
    let release = package
        .name
        .strip_prefix("linux-image-")
        .unwrap_or(&package.name)
        .to_owned();
    let vmlinuz = package.root.join(format!("boot/vmlinuz-{release}"));
    let modules_dir = package.root.join(format!("lib/modules/{release}"));
    if !vmlinuz.is_file() || !modules_dir.is_dir() {
        return Err(ImageError::Invalid(format!(
            "{} lacks boot/vmlinuz-{release} or its modules",
            package.name
        )));
    }
    Ok(Kernel {
        package,
        release,
        vmlinuz,
        modules_dir,
    })
}
