//! The nested test host: where this machine's KVM cannot boot Linux (a
//! software KVM such as kvm_pvm), guest tests and demos run inside a QEMU
//! TCG machine that emulates an AMD CPU with SVM. Its Debian kernel loads
//! kvm-amd, so /dev/kvm inside is a real KVM; the host's root filesystem is
//! shared over 9p and chrooted into, so binaries built here run there
//! unchanged.

mod image;
mod job;
mod qemu;

pub use image::{build_image, TestHostImage};
pub use job::{Job, FAST};
pub use qemu::{qemu_version, run, Finished, Limits, TestHostError, MIN_QEMU_MAJOR};

use std::path::Path;

/// Set inside the test host, so nothing tries to nest again.
pub const INSIDE_ENV: &str = "VIGIL_IN_TESTHOST";
/// `always` forces the test host, `never` forbids it.
pub const MODE_ENV: &str = "VIGIL_TESTHOST";

/// Whether this host's /dev/kvm can boot a Linux guest directly (after
/// `VIGIL_TESTHOST=always|never` and the inside-the-test-host marker).
pub fn host_kvm_can_boot_linux() -> bool {
    GuestPath::detect() == GuestPath::Direct
}

/// Which way a Linux guest can run here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestPath {
    /// The host's own KVM runs Linux guests.
    Direct,
    /// Only the nested test host can (the reason is for humans).
    Nested(&'static str),
}

impl GuestPath {
    /// Decides from the loaded KVM modules and the environment.
    pub fn detect() -> Self {
        if std::env::var_os(INSIDE_ENV).is_some() {
            return GuestPath::Direct;
        }
        match std::env::var(MODE_ENV).as_deref() {
            Ok("always") => return GuestPath::Nested("VIGIL_TESTHOST=always"),
            Ok("never") => return GuestPath::Direct,
            _ => {}
        }
        let module = |m: &str| Path::new("/sys/module").join(m).exists();
        if !Path::new("/dev/kvm").exists() {
            GuestPath::Nested("no /dev/kvm")
        } else if module("kvm_pvm") {
            GuestPath::Nested("host KVM is kvm_pvm, which cannot boot Linux")
        } else if module("kvm_intel") || module("kvm_amd") {
            GuestPath::Direct
        } else {
            GuestPath::Nested("no hardware KVM module (kvm_intel/kvm_amd) loaded")
        }
    }

    /// The line tests and demos print to say which path ran.
    pub fn describe(self) -> String {
        match self {
            GuestPath::Direct if std::env::var_os(INSIDE_ENV).is_some() => {
                if Path::new("/sys/module/kvm_amd").exists() {
                    "vigil: guest path: inside the nested test host (real KVM: kvm-amd on emulated SVM)"
                        .into()
                } else {
                    "vigil: guest path: inside the nested test host, but kvm_amd is not loaded"
                        .into()
                }
            }
            GuestPath::Direct => "vigil: guest path: directly on this host's KVM".into(),
            GuestPath::Nested(why) => format!(
                "vigil: guest path: nested test host (QEMU TCG, EPYC with SVM), because {why}"
            ),
        }
    }
}

/// Runs test `test` of the current test binary inside the test host and
/// panics unless it passed there. For tests that need what only the test
/// host has (a real KVM, the guest kernel's AF_ALG): they call this when
/// this host lacks it and stop, or run their body when it has it.
pub fn run_test_inside(test: &str) {
    assert!(
        std::env::var_os(INSIDE_ENV).is_none(),
        "{test}: already inside the test host and still lacking what it needs"
    );
    let exe = std::env::current_exe().expect("test binary path");
    let job = Job::new(
        exe,
        vec!["--exact".into(), test.into(), "--nocapture".into()],
    );
    let done = run(&job, Limits::default()).expect("the nested test host runs");
    assert!(
        done.status == 0 && done.console.contains("test result: ok. 1 passed"),
        "{test} failed inside the nested test host (status {})",
        done.status
    );
}
