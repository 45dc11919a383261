//! The default guest image from real Debian packages: reproducible bytes,
//! a truthful manifest, modules in dependency order.

use std::collections::HashSet;
use std::path::Path;

use vigil_images::cache::sha256_file;
use vigil_images::{default_guest, modules};

#[test]
fn default_guest_is_reproducible_with_a_true_manifest() {
    let image = default_guest().expect("build the default guest");
    let first = sha256_file(&image.initrd).unwrap();

    // Same inputs, rebuilt from scratch: same bytes.
    std::fs::remove_file(&image.initrd).unwrap();
    std::fs::remove_file(&image.manifest).unwrap();
    let again = default_guest().unwrap();
    assert_eq!(again.initrd, image.initrd);
    assert_eq!(sha256_file(&again.initrd).unwrap(), first);

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&again.manifest).unwrap()).unwrap();
    let files = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(manifest["outputs"].as_array().unwrap());
    let mut checked = 0;
    for entry in files {
        let file = Path::new(entry["file"].as_str().unwrap());
        assert_eq!(
            sha256_file(file).unwrap(),
            entry["sha256"].as_str().unwrap(),
            "{}",
            file.display()
        );
        checked += 1;
    }
    assert_eq!(
        checked, 5,
        "kernel, busybox and agent in; vmlinuz and initramfs out"
    );
    let names: Vec<&str> = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        names[0].starts_with("linux-image-6.1") && names[0].ends_with("-amd64"),
        "{names:?}"
    );
    assert_eq!(names[1], "busybox-static");
}

#[test]
fn modules_come_after_their_dependencies() {
    let image = default_guest().unwrap();
    let order =
        modules::load_order(&image.modules_dir, vigil_images::guest::GUEST_MODULES).unwrap();
    let name = |p: &Path| modules::normalize(p.file_stem().unwrap().to_str().unwrap());
    let mut loaded = HashSet::new();
    let builtin = modules::builtin(&image.modules_dir);
    for path in &order {
        for dep in modules::depends(path).unwrap() {
            assert!(
                loaded.contains(&dep) || builtin.contains(&dep),
                "{} before its dependency {dep}",
                name(path)
            );
        }
        loaded.insert(name(path));
    }
    for wanted in [
        "virtio_pci",
        "virtio_rng",
        "virtio_blk",
        "virtio_crypto",
        "vmw_vsock_virtio_transport",
        "af_alg",
    ] {
        assert!(loaded.contains(wanted), "{wanted} missing from {loaded:?}");
    }
    assert!(
        loaded.contains("crypto_engine"),
        "virtio_crypto's dependency"
    );
}

/// depmod's own modules.dep for the package's tree, built in a scratch
/// directory (the package ships none): module path -> all its dependencies.
fn depmod_deps(
    modules_dir: &Path,
    release: &str,
) -> std::collections::HashMap<String, Vec<String>> {
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("lib/modules").join(release);
    std::fs::create_dir_all(&tree).unwrap();
    std::os::unix::fs::symlink(modules_dir.join("kernel"), tree.join("kernel")).unwrap();
    for f in [
        "modules.builtin",
        "modules.order",
        "modules.builtin.modinfo",
    ] {
        if modules_dir.join(f).exists() {
            std::fs::copy(modules_dir.join(f), tree.join(f)).unwrap();
        }
    }
    let depmod = ["/usr/sbin/depmod", "/sbin/depmod", "depmod"]
        .into_iter()
        .find(|d| !d.starts_with('/') || Path::new(d).exists())
        .unwrap();
    let status = std::process::Command::new(depmod)
        .arg("-b")
        .arg(scratch.path())
        .arg(release)
        .status()
        .expect("depmod (kmod) is installed");
    assert!(status.success());
    std::fs::read_to_string(tree.join("modules.dep"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, deps)| {
            (
                m.to_owned(),
                deps.split_whitespace().map(str::to_owned).collect(),
            )
        })
        .collect()
}

#[test]
fn module_order_agrees_with_depmod() {
    let image = default_guest().unwrap();
    let deps = depmod_deps(&image.modules_dir, &image.kernel_release);
    let test_host_modules: &[&str] = &["kvm_amd", "virtio_pci", "9pnet_virtio", "9p"];
    for wanted in [vigil_images::guest::GUEST_MODULES, test_host_modules] {
        let order: Vec<String> = modules::load_order(&image.modules_dir, wanted)
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(&image.modules_dir)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        for (i, module) in order.iter().enumerate() {
            let needed = deps
                .get(module)
                .unwrap_or_else(|| panic!("{module} not in modules.dep"));
            for dep in needed {
                assert!(
                    order[..i].contains(dep),
                    "{module} is loaded before {dep}: {order:#?}"
                );
            }
        }
        // Nothing depmod would not ask for, beyond what was wanted.
        for module in &order {
            let name = modules::normalize(Path::new(module).file_stem().unwrap().to_str().unwrap());
            assert!(
                wanted.contains(&name.as_str()) || order.iter().any(|m| deps[m].contains(module)),
                "{module} is not needed"
            );
        }
    }
}
