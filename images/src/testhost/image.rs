//! The test host's initramfs: busybox, the kvm-amd and 9p module chains,
//! and an init that mounts the host root, runs the job and powers off.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::cache::{cache_dir, write_atomic};
use crate::initramfs::{Builder, LOAD_ORDER};
use crate::{debian, modules, progress, ImageError};

const FORMAT: &str = "vigil-testhost-6";

/// kvm-amd for a real /dev/kvm; virtio-pci and 9p to reach the host.
const MODULES: &[&str] = &[
    "kvm_amd",
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    // The kernel Crypto API from userspace, with the x86 drivers behind
    // it, so AF_ALG backends are tested against a real kernel here.
    "af_alg",
    "algif_skcipher",
    "algif_aead",
    "algif_hash",
    "algif_rng",
    "drbg",
    "aesni_intel",
    "authenc",
    "gcm",
    "xts",
    "ctr",
    "sha256_ssse3",
    "ghash_clmulni_intel",
];

/// Marker line carrying the job's exit status out on the console, followed
/// by the status and the run's token (so a job printing the same words
/// cannot fake it).
pub const EXIT_MARKER: &str = "vigil-testhost: exit ";
/// Marker line printed just before the job runs: token, then guest uptime.
pub const START_MARKER: &str = "vigil-testhost: job starts ";

/// The init script. The job directory (on the shared host filesystem)
/// comes in as `vigil_th=<dir>` on the kernel command line.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/*/vigil-load-order); do
    /bin/busybox insmod "$m" || echo "vigil-testhost: insmod $m failed"
done
/bin/busybox grep -q '^kvm_amd ' /proc/modules && [ -c /dev/kvm ] \
    || echo "vigil-testhost: kvm_amd is not loaded: /dev/kvm here is no real KVM"
/bin/busybox mkdir -p /host
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose host /host \
    || echo "vigil-testhost: cannot mount the host root"
job=$(/bin/busybox sed -n 's/.*vigil_th=\([^ ]*\).*/\1/p' /proc/cmdline)
tok=$(/bin/busybox sed -n 's/.*vigil_tok=\([^ ]*\).*/\1/p' /proc/cmdline)
/bin/busybox mount -t proc proc /host/proc
/bin/busybox mount -t sysfs sys /host/sys
/bin/busybox mount -t devtmpfs dev /host/dev
/bin/busybox mkdir -p /host/dev/shm
/bin/busybox mkdir -p /host/dev/shm && /bin/busybox mount -t tmpfs shm /host/dev/shm
/bin/busybox mount -t tmpfs fast "/host$job/fast"
echo "vigil-testhost: job starts $tok $(/bin/busybox cut -d' ' -f1 /proc/uptime)"
/bin/busybox chroot /host /bin/sh "$job/run.sh"
echo "vigil-testhost: exit $? $tok"
/bin/busybox sync
/bin/busybox poweroff -f
"#;

#[derive(Clone, Debug)]
pub struct TestHostImage {
    /// The uncompressed vmlinux (booted through PVH), or the bzImage if
    /// it could not be extracted.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// Builds (or reuses) the test host's kernel and initramfs.
pub fn build_image() -> Result<TestHostImage, ImageError> {
    let _lock = crate::cache::lock()?;
    let kernel = debian::kernel()?;
    let busybox = debian::fetch("busybox-static")?;
    let key = hex::encode(Sha256::digest(
        [FORMAT, &kernel.package.sha256, &busybox.sha256, INIT].join("\n"),
    ));
    let initrd = cache_dir()
        .join("testhost")
        .join(format!("{}.cpio", &key[..16]));
    let kernel_file = match crate::vmlinux::extract(&kernel.vmlinuz) {
        Ok(elf) => elf,
        Err(e) => {
            eprintln!("vigil images: booting the test host from the bzImage (slower): {e}");
            kernel.vmlinuz.clone()
        }
    };
    let image = TestHostImage {
        kernel: kernel_file,
        initrd,
    };
    if image.initrd.is_file() {
        return Ok(image);
    }
    let _step = progress::step("building the test host initramfs");
    let order = modules::load_order(&kernel.modules_dir, MODULES)?;
    let mut b = Builder::new();
    b.copy("bin/busybox", 0o755, &busybox.root.join("bin/busybox"))?;
    b.symlink("bin/sh", "/bin/busybox");
    b.file("init", 0o755, INIT.as_bytes().to_vec());
    b.modules(&kernel.release, &kernel.modules_dir, &order)?;
    debug_assert!(LOAD_ORDER == "vigil-load-order");
    write_atomic(&image.initrd, &b.finish())?;
    Ok(image)
}
