//! Kernel modules and their load order, read from each module's own
//! `.modinfo` section (`depends=`): Debian's package ships no modules.dep
//! (its postinst runs depmod), and this needs no depmod on the host. The
//! tests check the result against depmod's modules.dep.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use goblin::elf::Elf;

use crate::{io_err, ImageError};

/// Module file suffixes: plain, and compressed (read with `modinfo`).
const SUFFIXES: &[&str] = &[".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// Module names use `_` where file names may use `-`.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Every `.ko` under `modules_dir/kernel`, by module name.
pub fn index(modules_dir: &Path) -> Result<BTreeMap<String, PathBuf>, ImageError> {
    let mut found = BTreeMap::new();
    let mut stack = vec![modules_dir.join("kernel")];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io_err(format!("list {}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| SUFFIXES.iter().find_map(|s| n.strip_suffix(s)))
            {
                found.insert(normalize(stem), path);
            }
        }
    }
    Ok(found)
}

/// Names listed in `modules.builtin` (built into the kernel image).
pub fn builtin(modules_dir: &Path) -> HashSet<String> {
    std::fs::read_to_string(modules_dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter_map(|f| f.strip_suffix(".ko"))
        .map(normalize)
        .collect()
}

/// The `depends=` entry of a module's `.modinfo`.
pub fn depends(path: &Path) -> Result<Vec<String>, ImageError> {
    let bad = |reason: String| ImageError::BadModule {
        path: path.to_owned(),
        reason,
    };
    if !path.to_string_lossy().ends_with(".ko") {
        // Compressed: let kmod decompress it.
        let out = crate::run(
            std::process::Command::new("modinfo")
                .args(["-F", "depends"])
                .arg(path),
        )?;
        return Ok(String::from_utf8_lossy(&out)
            .trim()
            .split(',')
            .map(normalize)
            .filter(|d| !d.is_empty())
            .collect());
    }
    let bytes = std::fs::read(path).map_err(io_err(format!("read {}", path.display())))?;
    let elf = Elf::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    let section = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".modinfo"))
        .ok_or_else(|| bad("no .modinfo section".into()))?;
    let start = section.sh_offset as usize;
    let data = start
        .checked_add(section.sh_size as usize)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| bad(".modinfo runs past the end of the file".into()))?;
    Ok(data
        .split(|b| *b == 0)
        .filter_map(|kv| kv.strip_prefix(b"depends="))
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(normalize)
                .collect::<Vec<_>>()
        })
        .filter(|d| !d.is_empty())
        .collect())
}

/// Module files to load, dependencies before dependents. Wanted modules
/// that are built into the kernel are skipped.
pub fn load_order(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>, ImageError> {
    let index = index(modules_dir)?;
    let builtin = builtin(modules_dir);
    let mut order = Vec::new();
    let mut done = HashSet::new();
    for name in wanted {
        visit(
            &normalize(name),
            &index,
            &builtin,
            &mut done,
            &mut Vec::new(),
            &mut order,
            modules_dir,
        )?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    index: &BTreeMap<String, PathBuf>,
    builtin: &HashSet<String>,
    done: &mut HashSet<String>,
    path: &mut Vec<String>,
    order: &mut Vec<PathBuf>,
    dir: &Path,
) -> Result<(), ImageError> {
    if done.contains(name) {
        return Ok(());
    }
    if path.iter().any(|p| p == name) {
        return Err(ImageError::Invalid(format!(
            "module dependency cycle through {name}"
        )));
    }
    let Some(file) = index.get(name) else {
        if builtin.contains(name) {
            done.insert(name.to_owned());
            return Ok(());
        }
        return Err(ImageError::ModuleMissing {
            name: name.to_owned(),
            dir: dir.to_owned(),
        });
    };
    path.push(name.to_owned());
    for dep in depends(file)? {
        visit(&dep, index, builtin, done, path, order, dir)?;
    }
    path.pop();
    done.insert(name.to_owned());
    order.push(file.clone());
    Ok(())
}
