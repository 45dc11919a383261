//! Booting the test host under QEMU TCG and collecting the job's status.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::image::{build_image, EXIT_MARKER, START_MARKER};
use super::Job;
use crate::ImageError;

/// QEMU 7.2 never fires hardware breakpoints for the nested guest; 10 does.
pub const MIN_QEMU_MAJOR: u32 = 10;
const QEMU: &str = "qemu-system-x86_64";

#[derive(Debug, thiserror::Error)]
pub enum TestHostError {
    #[error("{QEMU} not found; install QEMU {MIN_QEMU_MAJOR} (bookworm-backports)")]
    NoQemu,
    #[error("{QEMU} {0} is too old: the test host needs QEMU {MIN_QEMU_MAJOR} or later")]
    OldQemu(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("cannot start the test host: {0}")]
    Spawn(std::io::Error),
    #[error("the test host did not finish within {0:?}")]
    Timeout(Duration),
    #[error("the test host stopped without reporting the job's exit status")]
    NoStatus,
}

/// QEMU's version as "major.minor.patch".
pub fn qemu_version() -> Result<String, TestHostError> {
    let out = Command::new(QEMU)
        .arg("--version")
        .output()
        .map_err(|_| TestHostError::NoQemu)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .map(str::to_owned)
        .ok_or(TestHostError::NoQemu)?;
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < MIN_QEMU_MAJOR {
        return Err(TestHostError::OldQemu(version));
    }
    Ok(version)
}

/// Memory and CPUs of the test host, and how long a job may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub memory_mib: u64,
    pub cpus: u32,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 3072,
            cpus: 2,
            timeout: Duration::from_secs(1800),
        }
    }
}

/// What a job left behind.
#[derive(Clone, Debug)]
pub struct Finished {
    pub status: i32,
    /// Everything the test host printed, as streamed to stdout.
    pub console: String,
    /// Wall time from starting QEMU to the job starting, if seen.
    pub boot_to_job: Option<Duration>,
}

/// CPU model: EPYC with SVM and nested paging, minus the features TCG
/// cannot emulate (QEMU drops them anyway, with a warning for each).
const CPU: &str = "EPYC,+svm,+npt,-fxsr-opt,-misalignsse,-osvw,-topoext,-nrip-save,-xsavec";

enum Event {
    Started(Duration),
    Exit(i32),
}

/// Reads `<marker><token> <rest>` from a console line.
fn marked<'a>(line: &'a str, marker: &str, token: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    match marker {
        EXIT_MARKER => {
            // "<status> <token>"
            let (status, tok) = rest.trim().split_once(' ')?;
            (tok == token).then_some(status)
        }
        _ => rest.trim().strip_prefix(token).map(str::trim),
    }
}

/// Runs `job` inside the test host, streaming its console to stdout, and
/// returns the job's exit status and console.
pub fn run(job: &Job, limits: Limits) -> Result<Finished, TestHostError> {
    let version = qemu_version()?;
    let image = build_image()?;
    let dir = job_dir();
    job.write(&dir)?;
    eprintln!(
        "vigil: running inside the nested test host (QEMU {version} TCG, EPYC+svm, {} vCPUs)",
        limits.cpus
    );
    let result = boot(&image.kernel, &image.initrd, &dir, limits);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn job_dir() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("vigil-th-{}-{n}", std::process::id()))
}

fn boot(
    kernel: &std::path::Path,
    initrd: &std::path::Path,
    dir: &std::path::Path,
    limits: Limits,
) -> Result<Finished, TestHostError> {
    let token = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let started = Instant::now();
    let mut child = Command::new(QEMU)
        .args(["-accel", "tcg,thread=multi", "-M", "q35", "-cpu", CPU])
        .arg("-smp")
        .arg(limits.cpus.to_string())
        .arg("-m")
        .arg(limits.memory_mib.to_string())
        // No VGA, NIC or other default devices: their option ROMs cost
        // seconds under TCG. The console is the first serial port.
        .args([
            "-nodefaults",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(format!(
            "console=ttyS0 quiet panic=-1 vigil_th={} vigil_tok={token}",
            dir.display()
        ))
        .args([
            "-virtfs",
            "local,path=/,mount_tag=host,security_model=passthrough,id=host",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(TestHostError::Spawn)?;
    let stdout = child.stdout.take().ok_or(TestHostError::NoStatus)?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut console = String::new();
        let mut out = std::io::stdout();
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\r');
            if let Some(status) = marked(text, EXIT_MARKER, &token) {
                let _ = tx.send(Event::Exit(status.parse().unwrap_or(-1)));
                continue;
            }
            if marked(text, START_MARKER, &token).is_some() {
                let _ = tx.send(Event::Started(started.elapsed()));
                let _ = writeln!(
                    out,
                    "vigil: test host reached the job after {:.1} s (guest uptime {} s)",
                    started.elapsed().as_secs_f64(),
                    marked(text, START_MARKER, &token).unwrap_or("?")
                );
                continue;
            }
            let _ = writeln!(out, "{text}");
            console.push_str(text);
            console.push('\n');
        }
        console
    });
    let deadline = Instant::now() + limits.timeout;
    let mut boot_to_job = None;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Exit(code)) => break Some(code),
            Ok(Event::Started(after)) => boot_to_job = Some(after),
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestHostError::Timeout(limits.timeout));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    };
    // The init powers off right after the marker; give it a moment.
    let grace = Instant::now() + Duration::from_secs(30);
    while Instant::now() < grace && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let console = reader.join().unwrap_or_default();
    Ok(Finished {
        status: status.ok_or(TestHostError::NoStatus)?,
        console,
        boot_to_job,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_need_this_runs_token() {
        assert_eq!(
            marked("vigil-testhost: exit 7 abc", EXIT_MARKER, "abc"),
            Some("7")
        );
        assert_eq!(
            marked("vigil-testhost: exit 0 forged", EXIT_MARKER, "abc"),
            None
        );
        assert_eq!(marked("vigil-testhost: exit 0", EXIT_MARKER, "abc"), None);
        assert_eq!(
            marked("vigil-testhost: job starts abc 4.52", START_MARKER, "abc"),
            Some("4.52")
        );
        assert_eq!(marked("unrelated", START_MARKER, "abc"), None);
    }
}
