//! `vigil bench boot`: wall time from process start to the guest agent's
//! ready line, and peak RSS split into guest memory and the rest, for vigil
//! and for QEMU's microvm booting the same kernel, initramfs and command
//! line, alternating runs so drift hits both alike.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use super::process::{measure, MeasureError, Sample};
use super::stats::min_median;

pub const READY_MARKER: &str = "vigil-agent: ready";
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const EXIT_GRACE: Duration = Duration::from_secs(30);

/// What to boot and how often.
#[derive(Clone, Debug)]
pub struct BootBench {
    pub vigil: PathBuf,
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub memory_mib: u64,
    pub runs: usize,
}

/// One JSON line of results.
#[derive(Debug, Serialize)]
pub struct BootResult {
    pub bench: &'static str,
    pub vmm: &'static str,
    pub runs: usize,
    pub min_s: f64,
    pub median_s: f64,
    pub peak_rss_mib: f64,
    pub guest_rss_mib: f64,
    pub non_guest_rss_mib: f64,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub boot: &'static str,
}

impl BootBench {
    fn vigil_command(&self) -> Command {
        let mut cmd = Command::new(&self.vigil);
        cmd.arg("run")
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--initrd")
            .arg(&self.initrd)
            .arg("--cmdline")
            .arg(&self.cmdline)
            .arg("--memory")
            .arg(self.memory_mib.to_string())
            .args(["--vcpus", "1", "--serial", "stdout"]);
        cmd
    }

    /// QEMU microvm with its defaults (firmware included), KVM and the
    /// host CPU model, console on stdio.
    fn qemu_command(&self) -> Command {
        let mut cmd = Command::new(&self.qemu);
        cmd.args([
            "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-smp", "1",
        ])
        .arg("-m")
        .arg(self.memory_mib.to_string())
        .args(["-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&self.kernel)
        .arg("-initrd")
        .arg(&self.initrd)
        .arg("-append")
        .arg(&self.cmdline);
        cmd
    }

    /// Runs both VMMs `runs` times each, alternating, and summarises.
    pub fn run(&self) -> Result<Vec<BootResult>, MeasureError> {
        let guest_mem = self.memory_mib << 20;
        let mut vigil = Vec::with_capacity(self.runs);
        let mut qemu = Vec::with_capacity(self.runs);
        for i in 0..self.runs {
            let v = measure(
                "vigil",
                self.vigil_command(),
                READY_MARKER,
                guest_mem,
                BOOT_TIMEOUT,
                EXIT_GRACE,
            )?;
            eprintln!(
                "bench boot: run {}/{} vigil {:.2} s",
                i + 1,
                self.runs,
                v.to_marker.as_secs_f64()
            );
            vigil.push(v);
            let q = measure(
                "qemu",
                self.qemu_command(),
                READY_MARKER,
                guest_mem,
                BOOT_TIMEOUT,
                EXIT_GRACE,
            )?;
            eprintln!(
                "bench boot: run {}/{} qemu {:.2} s",
                i + 1,
                self.runs,
                q.to_marker.as_secs_f64()
            );
            qemu.push(q);
        }
        Ok(vec![
            self.summarise("vigil", "bzImage", &vigil),
            self.summarise("qemu-microvm", "bzImage+firmware", &qemu),
        ])
    }

    fn summarise(&self, vmm: &'static str, boot: &'static str, samples: &[Sample]) -> BootResult {
        let secs: Vec<f64> = samples.iter().map(|s| s.to_marker.as_secs_f64()).collect();
        let (min_s, median_s) = min_median(&secs).unwrap_or((f64::NAN, f64::NAN));
        let peak = samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0);
        // Guest RSS of the run that peaked highest, so the split adds up.
        let guest = samples
            .iter()
            .max_by_key(|s| s.peak_rss_kib)
            .map_or(0, |s| s.guest_rss_kib);
        let mib = |kib: u64| kib as f64 / 1024.0;
        BootResult {
            bench: "boot",
            vmm,
            runs: samples.len(),
            min_s,
            median_s,
            peak_rss_mib: mib(peak),
            guest_rss_mib: mib(guest),
            non_guest_rss_mib: mib(peak.saturating_sub(guest)),
            vcpus: 1,
            memory_mib: self.memory_mib,
            boot,
        }
    }
}

/// `vigil bench boot`: prepares the default guest here, then runs the
/// comparison wherever a Linux guest can run (see [`crate::guest_path`]).
pub fn run_cli(args: &crate::cli::BootBenchArgs) -> anyhow::Result<i32> {
    use anyhow::Context;
    let cmdline = format!("{} quiet vigil.reboot=1", crate::config::DEFAULT_CMDLINE);
    if let (true, Some(kernel), Some(initrd)) = (args.here, &args.kernel, &args.initrd) {
        let bench = BootBench {
            vigil: args.vigil.clone().unwrap_or(std::env::current_exe()?),
            qemu: "qemu-system-x86_64".into(),
            kernel: kernel.clone(),
            initrd: initrd.clone(),
            cmdline,
            memory_mib: args.memory,
            runs: args.runs,
        };
        for result in bench.run()? {
            println!("{}", serde_json::to_string(&result)?);
        }
        return Ok(0);
    }
    let guest = crate::demo::prepare()?;
    let vigil = std::env::current_exe().context("locating the vigil binary")?;
    let mut cmd = crate::guest_path::GuestCommand::new(&vigil);
    let kernel = cmd.file(&guest.image.kernel, "vmlinuz");
    let initrd = cmd.file(&guest.image.initrd, "initramfs.cpio");
    let staged_vigil = cmd.file(&vigil, "vigil");
    let name = guest
        .payload
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("payload");
    cmd.file(&guest.payload, &format!("cache/vmlinux/{name}"));
    cmd.staged_cache();
    cmd.args(["bench", "boot", "--here", "--runs", &args.runs.to_string()])
        .args(["--memory", &args.memory.to_string()])
        .args([
            "--kernel",
            &kernel,
            "--initrd",
            &initrd,
            "--vigil",
            &staged_vigil,
        ]);
    Ok(cmd.run()?.status)
}
