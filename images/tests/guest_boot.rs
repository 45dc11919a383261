//! The default guest boots to its agent and runs a command, checked under
//! plain QEMU TCG (no KVM needed): the image alone, before any VMM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_images::guest::{agent_run_option, AGENT_EXIT, AGENT_READY};
use vigil_images::{default_guest, vmlinux};

#[test]
fn default_guest_reaches_the_agent_loads_its_modules_and_runs_a_command() {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("qemu-system-x86_64 is needed for this test");
    }
    let image = default_guest().expect("build the default guest");
    // PVH boot of the extracted vmlinux: same kernel, no decompression.
    let kernel = vmlinux::extract(&image.kernel).expect("extract vmlinux");
    let command = "for m in virtio_pci virtio_crypto virtio_rng virtio_blk \
                   vmw_vsock_virtio_transport esp4 xfrm_user af_alg algif_skcipher; do \
                   grep -q \"^$m \" /proc/modules || { echo \"missing $m\"; exit 1; }; done; \
                   test -c /dev/hwrng && echo \"modules ok\"; exit 3";
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg,thread=multi", "-M", "q35", "-cpu", "max"])
        .args(["-smp", "2", "-m", "512", "-nodefaults", "-display", "none"])
        .args(["-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&image.initrd)
        .arg("-append")
        .arg(format!(
            "console=ttyS0 quiet reboot=k panic=-1 {}",
            agent_run_option(command)
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start QEMU");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let console = reader.join().unwrap();
    eprintln!("{console}");
    eprintln!(
        "guest booted, ran and rebooted in {:.1} s under QEMU TCG",
        started.elapsed().as_secs_f64()
    );
    assert!(console.contains(AGENT_READY), "no ready line");
    assert!(
        !console.contains("vigil-agent: load"),
        "a module failed to load"
    );
    assert!(console.contains("modules ok"), "modules or hwrng missing");
    assert!(
        console.contains(&format!("{AGENT_EXIT}3")),
        "exit status not reported"
    );
    assert!(console.contains("reboot: Restarting system"), "no reboot");
}
