//! Assembling an initramfs: a directory tree kept sorted by path, so the
//! same inputs always give the same archive bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio::{self, Entry};
use crate::{io_err, run, ImageError};

/// Name of the module list the guest agent loads, under lib/modules/<rel>/.
pub const LOAD_ORDER: &str = "vigil-load-order";

pub struct Builder {
    entries: BTreeMap<String, Entry>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// The skeleton every guest needs, with /dev/console so init has stdio.
    pub fn new() -> Self {
        let mut b = Builder {
            entries: BTreeMap::new(),
        };
        for dir in ["dev", "proc", "sys", "run", "tmp", "root", "etc", "mnt"] {
            b.dir(dir);
        }
        b.insert(Entry::CharDev {
            path: "dev/console".into(),
            mode: 0o600,
            major: 5,
            minor: 1,
        });
        b
    }

    fn insert(&mut self, entry: Entry) {
        let path = entry.path().to_owned();
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entries.insert(path, entry);
    }

    /// Adds a directory and its parents.
    pub fn dir(&mut self, path: &str) {
        if self.entries.contains_key(path) {
            return;
        }
        self.insert(Entry::Dir {
            path: path.to_owned(),
            mode: 0o755,
        });
    }

    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.insert(Entry::File {
            path: path.to_owned(),
            mode,
            data,
        });
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.insert(Entry::Symlink {
            path: path.to_owned(),
            target: target.to_owned(),
        });
    }

    /// Copies a host file into the image.
    pub fn copy(&mut self, path: &str, mode: u32, from: &Path) -> Result<(), ImageError> {
        let data = std::fs::read(from).map_err(io_err(format!("read {}", from.display())))?;
        self.file(path, mode, data);
        Ok(())
    }

    /// Adds busybox at bin/busybox and a link for each of its applets.
    pub fn busybox(&mut self, binary: &Path) -> Result<(), ImageError> {
        self.copy("bin/busybox", 0o755, binary)?;
        let list = run(Command::new(binary).arg("--list-full"))?;
        for applet in String::from_utf8_lossy(&list).lines().map(str::trim) {
            if !applet.is_empty() && applet != "bin/busybox" && !applet.contains("..") {
                self.symlink(applet, "/bin/busybox");
            }
        }
        Ok(())
    }

    /// Adds module files under lib/modules/<release>/ (same relative paths
    /// as in `modules_dir`) and the load-order list naming them.
    pub fn modules(
        &mut self,
        release: &str,
        modules_dir: &Path,
        files: &[PathBuf],
    ) -> Result<Vec<String>, ImageError> {
        let base = format!("lib/modules/{release}");
        let mut order = String::new();
        let mut names = Vec::new();
        for file in files {
            let rel = file.strip_prefix(modules_dir).map_err(|_| {
                ImageError::Invalid(format!(
                    "{} is outside {}",
                    file.display(),
                    modules_dir.display()
                ))
            })?;
            let path = format!("{base}/{}", rel.display());
            self.copy(&path, 0o644, file)?;
            order.push_str(&format!("/{path}\n"));
            names.push(rel.display().to_string());
        }
        self.file(&format!("{base}/{LOAD_ORDER}"), 0o644, order.into_bytes());
        Ok(names)
    }

    /// The archive, entries in path order.
    pub fn finish(self) -> Vec<u8> {
        let entries: Vec<Entry> = self.entries.into_values().collect();
        cpio::write(&entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_first_and_output_is_deterministic() {
        let build = || {
            let mut b = Builder::new();
            b.file("usr/share/x/y", 0o644, b"y".to_vec());
            b.symlink("init", "/sbin/agent");
            b.file("sbin/agent", 0o755, b"agent".to_vec());
            b
        };
        let entries: Vec<String> = build().entries.keys().cloned().collect();
        let pos = |p: &str| entries.iter().position(|e| e == p).unwrap();
        assert!(pos("usr") < pos("usr/share") && pos("usr/share/x") < pos("usr/share/x/y"));
        assert_eq!(build().finish(), build().finish());
    }
}
