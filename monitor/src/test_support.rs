//! Locating the real Debian kernel for tests: `$VIGIL_KERNEL`, else a copy
//! fetched with apt into the cache directory (once).

use std::path::PathBuf;
use std::process::Command;

/// Path to Debian's linux-image-amd64 vmlinuz, or None (with a reason on
/// stderr) when it cannot be had here.
pub fn debian_kernel() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIGIL_KERNEL") {
        return Some(PathBuf::from(p));
    }
    // Tests in one binary run in parallel: fetch once.
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = crate::profile::cache::cache_dir()
        .parent()
        .map(|p| p.join("kernel"))
        .unwrap_or_else(|| PathBuf::from("/tmp/vigil-kernel"));
    if let Some(found) = find_vmlinuz(&dir) {
        return Some(found);
    }
    if let Err(e) = fetch(&dir) {
        eprintln!("debian kernel unavailable: {e}");
        return None;
    }
    find_vmlinuz(&dir)
}

fn find_vmlinuz(dir: &std::path::Path) -> Option<PathBuf> {
    let boot = dir.join("boot");
    std::fs::read_dir(boot)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
}

fn sh(cmd: &str, dir: &std::path::Path) -> Result<String, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn fetch(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let pkg = sh(
        "apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}'",
        dir,
    )?;
    let pkg = pkg.trim();
    if pkg.is_empty() {
        return Err("apt-cache knows no linux-image-amd64 (run apt-get update)".into());
    }
    sh(
        &format!("apt-get download {pkg} && dpkg-deb -x {pkg}_*.deb . && rm -f {pkg}_*.deb"),
        dir,
    )?;
    Ok(())
}

/// Directory of a memory-dump fixture made by `fixtures/build.sh`
/// (`$VIGIL_FIXTURES/<name>`, default `~/.cache/vigil/fixtures/<name>`),
/// if it holds both `dump.elf` and `console.log`.
pub fn fixture_dir(name: &str) -> Option<PathBuf> {
    let root = std::env::var_os("VIGIL_FIXTURES")
        .map(PathBuf::from)
        .or_else(|| {
            crate::profile::cache::cache_dir()
                .parent()
                .map(|p| p.join("fixtures"))
        })?;
    let d = root.join(name);
    (d.join("dump.elf").is_file() && d.join("console.log").is_file()).then_some(d)
}

/// What the fixture guest printed about itself.
#[derive(Debug, Default)]
pub struct GuestReport {
    /// (name, state, address) from /proc/modules.
    pub modules: Vec<(String, String, u64)>,
    /// The bracketed word of /sys/kernel/security/lockdown.
    pub lockdown: String,
    /// pid, name, uid fields (real, effective, saved, fs), caps (inh, prm, eff, bnd, amb).
    pub tasks: Vec<(i32, String, [u32; 4], [u64; 5])>,
    /// Physical start of "Kernel code" in /proc/iomem.
    pub kernel_code_phys: Option<u64>,
    /// (address, type, name) sampled from /proc/kallsyms.
    pub kallsyms: Vec<(u64, char, String)>,
}

pub fn parse_console(text: &str) -> GuestReport {
    let mut r = GuestReport::default();
    let mut section = "";
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(pos) = line.find("=== ") {
            section = match &line[pos + 4..] {
                "MODULES" => "m",
                "LOCKDOWN" => "l",
                "IOMEM" => "i",
                "TASKS" => "t",
                "KALLSYMS" => "k",
                _ => "",
            };
            continue;
        }
        match section {
            "m" => {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() >= 6 {
                    let addr = u64::from_str_radix(f[5].trim_start_matches("0x"), 16).unwrap_or(0);
                    r.modules.push((f[0].to_string(), f[4].to_string(), addr));
                }
            }
            "i" => {
                if let Some(range) = line.strip_prefix("I|") {
                    let start = range.split('-').next().unwrap_or("");
                    r.kernel_code_phys = u64::from_str_radix(start, 16).ok();
                }
            }
            "l" => {
                if let (Some(a), Some(b)) = (line.find('['), line.find(']')) {
                    r.lockdown = line[a + 1..b].to_string();
                }
            }
            "t" => {
                let f: Vec<&str> = line.split('|').collect();
                if f.len() == 9 && f[0] == "T" {
                    let ids: Vec<u32> = f[3]
                        .split_whitespace()
                        .filter_map(|v| v.parse().ok())
                        .collect();
                    let caps: Vec<u64> = f[4..9]
                        .iter()
                        .filter_map(|v| u64::from_str_radix(v, 16).ok())
                        .collect();
                    if let (Ok(pid), Ok(ids), Ok(caps)) =
                        (f[1].parse(), ids.try_into(), caps.try_into())
                    {
                        r.tasks.push((pid, f[2].to_string(), ids, caps));
                    }
                }
            }
            "k" => {
                let f: Vec<&str> = line.split('|').collect();
                if f.len() == 4 && f[0] == "K" {
                    if let (Ok(a), Some(t)) = (u64::from_str_radix(f[1], 16), f[2].chars().next()) {
                        r.kallsyms.push((a, t, f[3].to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    r
}

/// The fixture `name`, building it with `fixtures/build.sh` (QEMU TCG,
/// about a minute) when it is missing and QEMU plus the Debian kernel and
/// its modules are at hand. None, with the reason on stderr, otherwise.
pub fn ensure_fixture(name: &str, lockdown: &str, extra_cmdline: &str) -> Option<PathBuf> {
    ensure_fixture_cpu(name, lockdown, extra_cmdline, "max")
}

/// [`ensure_fixture`] with a QEMU CPU model (e.g. `max,la57=off` for a
/// guest on 4-level paging).
pub fn ensure_fixture_cpu(
    name: &str,
    lockdown: &str,
    extra_cmdline: &str,
    cpu: &str,
) -> Option<PathBuf> {
    let kernel = debian_kernel()?;
    if let Some(d) = fixture_dir(name) {
        // Rebuild a fixture made from another kernel (e.g. after a Debian update).
        let want = std::fs::read(&kernel).ok().map(|b| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(b))
        });
        let have = std::fs::read_to_string(d.join("kernel.sha256")).ok();
        if want.is_some() && have.as_deref().map(str::trim) == want.as_deref() {
            return Some(d);
        }
        eprintln!("fixture {name} was made from another kernel: rebuilding");
    }
    let modules = kernel.parent()?.parent()?.join("lib/modules");
    if !modules.is_dir() {
        eprintln!("cannot build fixture {name}: no {}", modules.display());
        return None;
    }
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("cannot build fixture {name}: qemu-system-x86_64 not installed");
        return None;
    }
    let root = std::env::var_os("VIGIL_FIXTURES")
        .map(PathBuf::from)
        .or_else(|| {
            crate::profile::cache::cache_dir()
                .parent()
                .map(|p| p.join("fixtures"))
        })?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/build.sh");
    eprintln!("building fixture {name} under QEMU TCG (about a minute)");
    let out = Command::new("sh")
        .env("QEMU_CPU", cpu)
        .arg(script)
        .arg(&kernel)
        .arg(&modules)
        .arg(root.join(name))
        .arg(lockdown)
        .arg(extra_cmdline)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "fixture build failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    fixture_dir(name)
}
