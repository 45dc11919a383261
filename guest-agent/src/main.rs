//! vigil-agent: the guest's init (PID 1).
//!
//! It mounts the usual filesystems, loads the modules listed in
//! `/lib/modules/<release>/vigil-load-order` (dependency order, one path
//! per line), prints `vigil-agent: ready <uptime>` on the console, and then
//! does what the kernel command line asks:
//!
//! - `vigil.run="<shell command>"`: run it with /bin/sh and print
//!   `vigil-agent: exit <status>`, then reboot; `vigil.run64=<base64>`
//!   does the same for commands containing `"` (which the kernel command
//!   line cannot quote);
//! - `vigil.reboot=1`: sync and reboot, which ends vigil (`reboot=k`);
//! - otherwise: a shell on the console, and a reboot when it exits.
//!
//! It is the initramfs's `/init` itself (a symlink to /sbin/vigil-agent),
//! with busybox and its applet links beside it for shells and commands.
//!
//! It is a convenience for tests and demos, never a source of truth for
//! the monitor. As PID 1 it must never panic: that would panic the kernel.

mod cmdline;
mod console;
mod modules;
mod mounts;

use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use console::say;

const LOAD_ORDER: &str = "vigil-load-order";

fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn release() -> String {
    // SAFETY: utsname is plain data filled by uname.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return String::new();
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn run_shell_command(command: &str) -> i32 {
    match Command::new("/bin/sh").arg("-c").arg(command).status() {
        // Like a shell: 128 + signal for a command killed by a signal.
        Ok(status) => status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(255),
        Err(e) => {
            say(&format!("cannot run /bin/sh: {e}"));
            127
        }
    }
}

fn interactive_shell() {
    // A new session with the console as controlling terminal, so job
    // control and ^C work in the shell.
    let status = unsafe {
        Command::new("/bin/sh")
            .pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 1);
                Ok(())
            })
            .status()
    };
    if let Err(e) = status {
        say(&format!("cannot start a shell: {e}"));
    }
}

fn reboot() -> ! {
    // SAFETY: sync and reboot take no pointers; as PID 1 we may reboot.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    // reboot(2) only returns on error; park rather than exit (which panics).
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn main() {
    for err in mounts::mount_all() {
        say(&err);
    }
    // After devtmpfs: a kernel that found no /dev/console left us without stdio.
    console::ensure_stdio();
    let release = release();
    let order = format!("/lib/modules/{release}/{LOAD_ORDER}");
    for err in modules::load_listed(std::path::Path::new(&order)) {
        say(&err);
    }
    say(&format!("ready {}", uptime()));

    let args = cmdline::Args::from_proc();
    if let Some(command) = &args.run {
        let code = run_shell_command(command);
        say(&format!("exit {code}"));
    } else if !args.reboot {
        interactive_shell();
    }
    reboot();
}
