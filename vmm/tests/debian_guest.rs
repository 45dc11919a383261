//! End to end: the real Debian guest under vigil, on this host's KVM or,
//! where that cannot boot Linux, inside the nested test host (the path is
//! printed). Images come from `vigil_images::default_guest`.

use std::path::Path;
use std::sync::OnceLock;

use vigil_vmm::demo::{prepare, PreparedGuest};

fn guest() -> &'static PreparedGuest {
    static GUEST: OnceLock<PreparedGuest> = OnceLock::new();
    GUEST.get_or_init(|| prepare().expect("build the default guest"))
}

fn vigil() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vigil"))
}

#[test]
fn boots_with_two_vcpus_to_the_agent_and_exits_cleanly() {
    let run = guest()
        .command(
            vigil(),
            2,
            256,
            "vigil.run=\"echo cpus=$(nproc) lockdown=$(cat /sys/kernel/security/lockdown)\"",
        )
        .run()
        .unwrap();
    let out = &run.output;
    assert!(out.contains("vigil-agent: ready"), "no ready line:\n{out}");
    assert!(out.contains("cpus=2 "), "guest did not see 2 vCPUs:\n{out}");
    assert!(out.contains("vigil-agent: exit 0"), "{out}");
    assert!(
        out.contains("vigil: guest stopped: Reset") || run.status == 0,
        "{out}"
    );
    assert_eq!(run.status, 0, "vigil's exit status after a guest reboot");
}

#[test]
fn a_guest_kernel_panic_is_reported_as_such() {
    let run = guest()
        .command(
            vigil(),
            1,
            256,
            "vigil.run=\"echo c > /proc/sysrq-trigger\"",
        )
        .run()
        .unwrap();
    assert!(
        run.output.contains("Kernel panic - not syncing"),
        "{}",
        run.output
    );
    assert_eq!(
        run.status,
        vigil_vmm::runner::EXIT_GUEST_PANIC,
        "{}",
        run.output
    );
}
