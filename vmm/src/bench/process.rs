//! Measuring a VMM process from the outside: time from spawn to a marker
//! line on its console, its guest-memory RSS at that moment, and its peak
//! RSS from the kernel's rusage when it exits.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("cannot start {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("{0} did not print {1:?} within {2:?}")]
    Timeout(String, String, Duration),
    #[error("{0} exited with {1} before printing the marker")]
    Exited(String, String),
}

/// One boot measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub to_marker: Duration,
    /// Peak resident set of the whole process (KiB).
    pub peak_rss_kib: u64,
    /// Resident guest RAM (KiB), sampled with the process's high-water
    /// mark until it exits: guest RAM only grows, so the last sample is the
    /// guest's share of the peak.
    pub guest_rss_kib: u64,
}

/// Resident KiB of anonymous mappings at least `min_size` bytes large in
/// `/proc/<pid>/smaps`: that is the guest's RAM for a VMM.
pub fn guest_rss_kib(pid: u32, min_size: u64) -> u64 {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return 0;
    };
    let mut total = 0;
    let mut current_is_guest = false;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            let size = u64::from_str_radix(end, 16)
                .unwrap_or(0)
                .saturating_sub(u64::from_str_radix(start, 16).unwrap_or(0));
            // Anonymous (no path) or a memfd/hugetlbfs backing of guest RAM.
            let path = line.split_whitespace().nth(5).unwrap_or("");
            current_is_guest = size >= min_size
                && (path.is_empty() || path.starts_with("/memfd:") || path.contains("hugepages"));
        } else if first == "Rss:" && current_is_guest {
            total += fields
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// Waits for `child` and returns its peak RSS (KiB) from wait4's rusage.
fn wait_peak_rss(child: &mut Child) -> u64 {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    usage.ru_maxrss.max(0) as u64
}

/// Spawns `cmd`, times it to the first stdout line containing `marker`,
/// samples guest RSS there, then lets it finish (killing it after `grace`).
pub fn measure(
    name: &str,
    mut cmd: Command,
    marker: &str,
    guest_mem: u64,
    timeout: Duration,
    grace: Duration,
) -> Result<Sample, MeasureError> {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| MeasureError::Spawn(name.into(), e))?;
    let stdout = child.stdout.take().expect("stdout was piped");
    let (tx, rx) = mpsc::channel();
    let marker_owned = marker.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains(&marker_owned) {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let seen = rx.recv_timeout(timeout);
    let guest = guest_rss_kib(child.id(), guest_mem / 2);
    let at = match seen {
        Ok(at) => at,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(MeasureError::Exited(name.into(), status));
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(MeasureError::Timeout(name.into(), marker.into(), timeout));
        }
    };
    let mut guest = guest;
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait_nonreaping() {
            break;
        }
        // A zombie has no mappings left; keep the last live sample.
        guest = guest.max(guest_rss_kib(child.id(), guest_mem / 2));
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    Ok(Sample {
        to_marker: at - start,
        peak_rss_kib: wait_peak_rss(&mut child),
        guest_rss_kib: guest,
    })
}

/// `try_wait` without reaping, so rusage can still be collected by wait4.
trait TryWaitNonReaping {
    fn try_wait_nonreaping(&mut self) -> std::io::Result<Option<()>>;
}

impl TryWaitNonReaping for Child {
    fn try_wait_nonreaping(&mut self) -> std::io::Result<Option<()>> {
        // SAFETY: siginfo is plain data; WNOWAIT leaves the child waitable.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: waitid filled `info` (si_pid is 0 if nothing exited).
        Ok((unsafe { info.si_pid() } != 0).then_some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_a_marker_and_reports_rss() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo booting; sleep 0.1; echo READY-LINE; sleep 0.1"]);
        let s = measure(
            "sh",
            cmd,
            "READY-LINE",
            1 << 20,
            Duration::from_secs(10),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(s.to_marker >= Duration::from_millis(100), "{s:?}");
        assert!(s.peak_rss_kib > 0);
    }

    #[test]
    fn missing_marker_is_an_error() {
        let mut cmd = Command::new("true");
        cmd.arg("x");
        let err = measure(
            "true",
            cmd,
            "never",
            1,
            Duration::from_secs(5),
            Duration::ZERO,
        );
        assert!(matches!(err, Err(MeasureError::Exited(..))), "{err:?}");
    }
}
