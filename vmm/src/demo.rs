//! `vigil demo`: build the default Debian guest if needed, boot it, show
//! its console, and succeed once it has reached its agent and shut down.

use anyhow::{bail, Context};

use crate::bench::boot::READY_MARKER;
use crate::config::DEFAULT_CMDLINE;
use crate::guest_path::GuestCommand;

/// The default guest, prepared on this host (decompressing the kernel
/// here is much faster than inside an emulated test host).
pub struct PreparedGuest {
    pub image: vigil_images::GuestImage,
    pub payload: std::path::PathBuf,
}

pub fn prepare() -> anyhow::Result<PreparedGuest> {
    let image = vigil_images::default_guest().context("building the default guest")?;
    let payload = vigil_images::vmlinux::extract(&image.kernel)
        .context("decompressing the kernel payload")?;
    Ok(PreparedGuest { image, payload })
}

impl PreparedGuest {
    /// A `vigil run` of this guest with `cmdline_extra`, staged for either path.
    pub fn command(
        &self,
        vigil: &std::path::Path,
        vcpus: u8,
        memory_mib: u64,
        cmdline_extra: &str,
    ) -> GuestCommand {
        let mut cmd = GuestCommand::new(vigil);
        let kernel = cmd.file(&self.image.kernel, "vmlinuz");
        let initrd = cmd.file(&self.image.initrd, "initramfs.cpio");
        let name = self
            .payload
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("payload");
        cmd.file(&self.payload, &format!("cache/vmlinux/{name}"));
        cmd.staged_cache();
        cmd.args(["run", "--kernel", &kernel, "--initrd", &initrd])
            .args([
                "--cmdline",
                &format!("{DEFAULT_CMDLINE} quiet {cmdline_extra}"),
            ])
            .args([
                "--vcpus",
                &vcpus.to_string(),
                "--memory",
                &memory_mib.to_string(),
            ]);
        cmd
    }
}

pub fn run() -> anyhow::Result<i32> {
    let guest = prepare()?;
    let vigil = std::env::current_exe().context("locating the vigil binary")?;
    let outcome = guest.command(&vigil, 2, 256, "vigil.reboot=1").run()?;
    if !outcome.output.contains(READY_MARKER) {
        bail!("the guest never printed {READY_MARKER:?}");
    }
    if outcome.status != 0 {
        bail!(
            "vigil exited with status {} after the guest was ready",
            outcome.status
        );
    }
    eprintln!("vigil demo: the Debian guest booted to its agent and shut down cleanly");
    Ok(0)
}
