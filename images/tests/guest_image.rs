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
