//! Bad input gets one clear error line and a non-zero exit, never a panic.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil")
}

/// Asserts a clean failure whose one-line message contains `needle`.
fn assert_fails_with(out: Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "one line: {stderr}");
    assert!(line.starts_with("vigil: error: "), "{line}");
    assert!(line.contains(needle), "expected {needle:?} in {line:?}");
}

/// A minimal bzImage: a valid 64-bit boot header and a small payload. It
/// never runs; it lets checks that need a real header be reached.
fn fake_bzimage(dir: &Path) -> PathBuf {
    let mut img = vec![0u8; 0x1000 + 0x10000];
    img[0x1f1] = 7; // setup_sects
    img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    img[0x211] = 1; // loadflags: LOADED_HIGH
    img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    img[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    img[0x236..0x238].copy_from_slice(&1u16.to_le_bytes()); // XLF_KERNEL_64
    img[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
    img[0x260..0x264].copy_from_slice(&0x100_0000u32.to_le_bytes());
    let path = dir.join("bzImage");
    std::fs::write(&path, img).unwrap();
    path
}

#[test]
fn missing_kernel() {
    assert_fails_with(
        vigil(&["run", "--kernel", "/nonexistent/vmlinuz"]),
        "kernel image not found: /nonexistent/vmlinuz",
    );
    assert_fails_with(vigil(&["run"]), "no kernel given");
}

#[test]
fn kernel_that_is_not_a_bzimage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vmlinux");
    std::fs::write(&path, b"\x7fELF not a bzImage at all").unwrap();
    assert_fails_with(
        vigil(&["run", "--kernel", path.to_str().unwrap()]),
        "is not a Linux bzImage",
    );
}

#[test]
fn initramfs_larger_than_memory() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = fake_bzimage(dir.path());
    let initrd = dir.path().join("initrd");
    std::fs::write(&initrd, vec![0u8; 20 << 20]).unwrap();
    assert_fails_with(
        vigil(&[
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--initrd",
            initrd.to_str().unwrap(),
            "--memory",
            "16",
        ]),
        "does not fit in guest memory",
    );
}

#[test]
fn zero_and_absurd_memory() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = fake_bzimage(dir.path());
    let k = kernel.to_str().unwrap();
    assert_fails_with(
        vigil(&["run", "--kernel", k, "--memory", "0"]),
        "at least 16 MiB",
    );
    assert_fails_with(
        vigil(&["run", "--kernel", k, "--memory", "1099511627776"]),
        "more than this host has",
    );
}

#[test]
fn too_many_vcpus() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = fake_bzimage(dir.path());
    let k = kernel.to_str().unwrap();
    assert_fails_with(vigil(&["run", "--kernel", k, "--vcpus", "0"]), "vCPU count");
    assert_fails_with(
        vigil(&["run", "--kernel", k, "--vcpus", "4096"]),
        "vCPU count",
    );
}

#[test]
fn over_long_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = fake_bzimage(dir.path());
    let cmdline = "a".repeat(3000);
    assert_fails_with(
        vigil(&[
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--cmdline",
            &cmdline,
        ]),
        "command line is 3000 bytes; this kernel accepts at most 2047",
    );
}

#[test]
fn unreadable_or_invalid_config() {
    let out = vigil(&["run", "--config", "/nonexistent/guest.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "cause said once: {stderr}"
    );
    assert_fails_with(out, "cannot read config /nonexistent/guest.toml");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("guest.toml");
    std::fs::write(&config, "[machine]\nmemroy_mib = 64\n").unwrap();
    assert_fails_with(
        vigil(&["run", "--config", config.to_str().unwrap()]),
        "invalid config",
    );
}

#[test]
fn api_socket_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = fake_bzimage(dir.path());
    let socket = dir.path().join("api.sock");
    let _live = UnixListener::bind(&socket).unwrap();
    assert_fails_with(
        vigil(&[
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--api-socket",
            socket.to_str().unwrap(),
        ]),
        "is in use by a running process",
    );
}
