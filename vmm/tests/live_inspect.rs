//! The monitor's readers on a live guest under vigil, compared with what
//! the guest says about itself (issue 4, point 2).
//!
//! The Debian guest boots under `vigil run` with a control socket; its
//! command loads two modules, starts tasks with distinct credentials and
//! prints /proc/modules, /proc/iomem's kernel code, the lockdown level,
//! each task's ids and capability sets and a sample of /proc/kallsyms (the
//! format monitor's fixture uses), then a marker, and sleeps. Meanwhile the
//! test asks `GET /api/v1/vm.inspect` and compares. On a host whose KVM
//! cannot boot Linux the test runs inside the nested test host.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vigil_monitor::kaslr::SlideMethod;
use vigil_monitor::profile::{cache, KernelProfile};
use vigil_monitor::test_support::{parse_console, GuestReport};
use vigil_vmm::api::client::call;
use vigil_vmm::introspect::LiveReport;

/// Printed by the guest once everything it reports is on the console.
const MARKER: &str = "LIVE-INSPECT-WAITING";

/// The guest's command (run by the agent with /bin/sh). /etc/passwd and
/// /etc/group come with the test's image, for `su nobody`.
const GUEST_SCRIPT: &str = r#"
insmod /crc7.ko && insmod /crc-itu-t.ko || echo insmod failed
echo 0 > /proc/sys/kernel/kptr_restrict
setpriv --inh-caps +net_raw,+sys_time --ambient-caps +net_raw sleep 3601 &
su -s /bin/sh nobody -c 'sleep 3602' &
sleep 1
echo "=== MODULES"
cat /proc/modules
echo "=== IOMEM"
awk '/Kernel code/ {print "I|" $1}' /proc/iomem
echo "=== LOCKDOWN"
cat /sys/kernel/security/lockdown
echo "=== TASKS"
for d in /proc/[0-9]*; do
  [ -f "$d/status" ] || continue
  awk -v pid="${d#/proc/}" -F'\t' '
    $1=="Name:"{n=$2} $1=="Uid:"{u=$2" "$3" "$4" "$5}
    $1=="CapInh:"{ci=$2} $1=="CapPrm:"{cp=$2} $1=="CapEff:"{ce=$2}
    $1=="CapBnd:"{cb=$2} $1=="CapAmb:"{ca=$2}
    END{print "T|" pid "|" n "|" u "|" ci "|" cp "|" ce "|" cb "|" ca}' "$d/status"
done
echo "=== KALLSYMS"
awk 'NR % 64 == 1 && $4 == "" {print "K|" $1 "|" $2 "|" $3}' /proc/kallsyms
echo "=== END"
echo LIVE-INSPECT-WAITING
sleep 900
"#;

/// The files a run needs. Prepared on this host, before any nesting, and
/// handed to the test host's run of the same test through the
/// environment (which the test host job copies).
struct Guest {
    kernel: PathBuf,
    initrd: PathBuf,
    payload: PathBuf,
    profile_file: PathBuf,
}

const ENV: [&str; 4] = [
    "VIGIL_LIVE_KERNEL",
    "VIGIL_LIVE_INITRD",
    "VIGIL_LIVE_PAYLOAD",
    "VIGIL_LIVE_PROFILE",
];

/// The default guest plus crc7.ko and crc-itu-t.ko at / (not loaded at
/// boot: the guest's command loads them), its kernel payload and profile.
fn guest() -> Guest {
    if std::env::var_os(vigil_images::testhost::INSIDE_ENV).is_some() {
        let var = |k: &str| PathBuf::from(std::env::var_os(k).unwrap_or_else(|| panic!("{k}")));
        return Guest {
            kernel: var(ENV[0]),
            initrd: var(ENV[1]),
            payload: var(ENV[2]),
            profile_file: var(ENV[3]),
        };
    }
    let base = vigil_images::default_guest().expect("default guest");
    let module = |name: &str| {
        let found = walk(&base.modules_dir, name);
        found.unwrap_or_else(|| panic!("{name} not in {}", base.modules_dir.display()))
    };
    let etc = vigil_images::cache_dir().join("live-inspect");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let image = vigil_images::build_guest(&vigil_images::BuildOptions {
        extra_files: vec![
            ("/crc7.ko".into(), module("crc7.ko"), 0o644),
            ("/crc-itu-t.ko".into(), module("crc-itu-t.ko"), 0o644),
            ("/etc/passwd".into(), etc.join("passwd"), 0o644),
            ("/etc/group".into(), etc.join("group"), 0o644),
        ],
        ..Default::default()
    })
    .expect("guest with the two modules");
    let payload = vigil_images::vmlinux::extract(&image.kernel).expect("kernel payload");
    let (profile, _) = cache::load_or_build(&image.kernel).expect("kernel profile");
    let profile_file = cache::cache_dir().join(format!(
        "{}.v{}.bin",
        profile.measurements.image_sha256,
        vigil_monitor::profile::PROFILE_VERSION
    ));
    let g = Guest {
        kernel: image.kernel,
        initrd: image.initrd,
        payload,
        profile_file,
    };
    for (k, v) in ENV
        .iter()
        .zip([&g.kernel, &g.initrd, &g.payload, &g.profile_file])
    {
        std::env::set_var(k, v);
    }
    g
}

fn walk(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(p) = walk(&path, name) {
                return Some(p);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// Copies what vigil reads into a tmpfs (the test host's, where 9p is
/// slow) with a cache holding the payload and the profile.
fn stage(g: &Guest) -> (tempfile::TempDir, PathBuf, PathBuf, KernelProfile) {
    let root = std::env::var_os("VIGIL_TESTHOST_FAST").map(PathBuf::from);
    let dir = match root {
        Some(r) => tempfile::tempdir_in(r),
        None => tempfile::tempdir(),
    }
    .expect("staging directory");
    let cache = dir.path().join("cache");
    for sub in ["vmlinux", "profiles"] {
        std::fs::create_dir_all(cache.join(sub)).unwrap();
    }
    let copy = |src: &Path, dest: PathBuf| {
        std::fs::copy(src, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        dest
    };
    let kernel = copy(&g.kernel, dir.path().join("vmlinuz"));
    let initrd = copy(&g.initrd, dir.path().join("initramfs.cpio"));
    copy(
        &g.payload,
        cache.join("vmlinux").join(g.payload.file_name().unwrap()),
    );
    copy(
        &g.profile_file,
        cache
            .join("profiles")
            .join(g.profile_file.file_name().unwrap()),
    );
    // The profile the comparisons use: from the staged cache, as vigil's.
    let (profile, source) =
        cache::load_or_build_in(&kernel, &cache.join("profiles")).expect("staged profile");
    assert_eq!(source, cache::Source::Cache, "the profile was staged");
    (dir, kernel, initrd, profile)
}

/// A running `vigil run` whose console lines arrive on a channel.
struct Vigil {
    child: Child,
    lines: mpsc::Receiver<String>,
    console: String,
    socket: PathBuf,
}

impl Vigil {
    fn start(dir: &Path, kernel: &Path, initrd: &Path, lockdown: &str) -> Vigil {
        let socket = dir.join("api.sock");
        let cmdline = format!(
            "{} quiet lockdown={lockdown} {}",
            vigil_vmm::config::DEFAULT_CMDLINE,
            vigil_images::guest::agent_run_option(GUEST_SCRIPT)
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args([
                "--log",
                "warn,vigil_vmm::vm=info,vigil_vmm::introspect=info",
            ])
            .args(["run", "--vcpus", "2", "--memory", "256"])
            .args(["--serial", "stdout", "--cmdline", &cmdline])
            .arg("--kernel")
            .arg(kernel)
            .arg("--initrd")
            .arg(initrd)
            .arg("--api-socket")
            .arg(&socket)
            .env("VIGIL_CACHE", dir.join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start vigil");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Vigil {
            child,
            lines,
            console: String::new(),
            socket,
        }
    }

    /// Console text up to the marker line.
    fn wait_for_marker(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.trim_end_matches('\r') == MARKER;
                    if !line.starts_with("K|") {
                        println!("guest| {line}");
                    }
                    self.console.push_str(&line);
                    self.console.push('\n');
                    if done {
                        return self.console.clone();
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("no {MARKER} ({e:?}); console:\n{}", self.console);
                }
            }
        }
    }

    fn inspect(&self) -> LiveReport {
        let body = call(&self.socket, "GET", "vm.inspect", None).expect("vm.inspect");
        serde_json::from_str(&body).expect("a LiveReport")
    }

    /// Shuts the VM down over the API; vigil must exit 0.
    fn shutdown(mut self) {
        call(&self.socket, "PUT", "vm.shutdown", None).expect("vm.shutdown");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait vigil") {
                assert_eq!(status.code(), Some(0), "vigil after vm.shutdown");
                return;
            }
            assert!(Instant::now() < deadline, "vigil did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Everything the guest printed agrees with what the monitor read.
fn compare(live: &LiveReport, guest: &GuestReport, profile: &KernelProfile, lockdown: &str) {
    let r = &live.report;
    assert_eq!(r.kernel_sha256, profile.measurements.image_sha256);

    // Slide: from LSTAR (a live VM has MSRs), equal to vigil's own layout.
    assert_eq!(r.kaslr.method, SlideMethod::Lstar);
    let b = live.boot_layout.expect("the direct loader's layout");
    assert!(b.randomized, "vigil randomized the placement");
    assert!(
        b.slide_agrees && b.phys_agrees,
        "monitor {:?} vs vigil {b:?}",
        r.kaslr
    );
    assert_eq!(
        profile.sections.image.start.wrapping_add(r.kaslr.slide),
        b.virt_text
    );
    assert_eq!(r.kaslr.text_phys, b.phys_base);
    if let Some(pa) = guest.kernel_code_phys {
        assert_eq!(r.kaslr.text_phys, pa, "_text physical vs /proc/iomem");
    }

    // Symbols: >= 99.9% of the printed kallsyms are profile + slide.
    let mut by_name: HashMap<&str, Vec<u64>> = HashMap::new();
    for s in &profile.symbols {
        by_name
            .entry(s.name.as_str())
            .or_default()
            .push(s.runtime_addr(r.kaslr.slide));
    }
    let total = guest.kallsyms.len();
    assert!(total > 500, "only {total} kallsyms lines printed");
    let ok = guest
        .kallsyms
        .iter()
        .filter(|(a, _, n)| by_name.get(n.as_str()).is_some_and(|v| v.contains(a)))
        .count();
    assert!(ok * 1000 >= total * 999, "{ok}/{total} kallsyms match");

    // Registers: every vCPU, with the MSRs the snapshot took.
    assert_eq!(r.registers.len(), 2);
    for regs in &r.registers {
        assert!(regs.wp && regs.cr3 != 0, "{regs:?}");
        assert!(regs.efer.is_some() && regs.lstar.is_some(), "{regs:?}");
    }
    assert_eq!(r.text.text_sha256.len(), 64);

    // Lockdown.
    assert_eq!(guest.lockdown, lockdown, "the guest's own lockdown file");
    assert_eq!(r.lockdown.level.as_str(), lockdown);

    // Modules: the same set, states and addresses.
    let mut want: Vec<_> = guest.modules.iter().map(|m| m.0.as_str()).collect();
    let mut have: Vec<_> = r.modules.iter().map(|m| m.name.as_str()).collect();
    want.sort_unstable();
    have.sort_unstable();
    assert_eq!(have, want, "module sets");
    assert!(
        want.contains(&"crc7") && want.contains(&"crc_itu_t"),
        "{want:?}"
    );
    for (name, state, addr) in &guest.modules {
        let m = r.modules.iter().find(|m| &m.name == name).unwrap();
        assert_eq!(&m.state_name, state, "{name}");
        assert_eq!(m.text_start, *addr, "{name}");
    }

    // Tasks: every task present in both has the same comm, ids and
    // capability sets (the awk helpers that printed the list are gone).
    let mut compared = 0;
    for (pid, name, ids, caps) in &guest.tasks {
        let Some(t) = r.tasks.iter().find(|t| t.pid == *pid) else {
            assert!(name == "awk", "pid {pid} ({name}) missing from the report");
            continue;
        };
        // /proc shows kworkers as "kworker/0:1-events": comm is the prefix.
        assert!(name.starts_with(&t.comm), "pid {pid}: {name} vs {}", t.comm);
        assert_eq!([t.uid, t.euid, t.suid, t.fsuid], *ids, "pid {pid} ids");
        let c = t.caps;
        assert_eq!(
            [
                c.inheritable,
                c.permitted,
                c.effective,
                c.bounding,
                c.ambient
            ],
            *caps,
            "pid {pid} ({name}) capabilities"
        );
        compared += 1;
    }
    assert!(compared > 20, "only {compared} tasks compared");
    assert!(
        r.tasks
            .iter()
            .any(|t| t.uid == 65534 && t.caps.effective == 0),
        "no unprivileged task"
    );
    assert!(
        r.tasks
            .iter()
            .any(|t| t.caps.ambient != 0 && t.caps.inheritable != 0),
        "no task with ambient caps"
    );
    println!(
        "live inspect agrees: lockdown {lockdown}, slide {:#x}, {} modules, {compared} tasks, {ok}/{total} kallsyms",
        r.kaslr.slide,
        r.modules.len()
    );
}

/// Inspect latency over the API next to a bare pause+resume, JSON lines.
fn bench(vigil: &Vigil, runs: usize) {
    fn stats(what: &str, mut v: Vec<u64>, extra: serde_json::Value) {
        v.sort_unstable();
        let mut line = serde_json::json!({
            "bench": "live_inspect",
            "what": what,
            "runs": v.len(),
            "min_us": v.first(),
            "median_us": v.get(v.len() / 2),
            "max_us": v.last(),
        });
        if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
            obj.extend(more);
        }
        println!("{line}");
    }
    let mut rt = Vec::new();
    let mut paused = Vec::new();
    let mut parking = Vec::new();
    let mut reading = Vec::new();
    let mut tasks = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let live = vigil.inspect();
        rt.push(t.elapsed().as_micros() as u64);
        paused.push(live.timing.paused_total_us);
        parking.push(live.timing.pause_us);
        reading.push(live.timing.read_us);
        tasks = live.report.tasks.len();
    }
    let mut pr = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        call(&vigil.socket, "PUT", "vm.pause", None).expect("pause");
        call(&vigil.socket, "PUT", "vm.resume", None).expect("resume");
        pr.push(t.elapsed().as_micros() as u64);
    }
    let ctx = serde_json::json!({ "vcpus": 2, "tasks": tasks, "path": path() });
    stats("inspect_round_trip", rt, ctx.clone());
    stats("inspect_guest_paused", paused, ctx.clone());
    stats("inspect_parking", parking, ctx.clone());
    stats("inspect_reading", reading, ctx.clone());
    stats("peer_pause_resume_round_trip", pr, ctx);
}

fn path() -> &'static str {
    if std::env::var_os(vigil_images::testhost::INSIDE_ENV).is_some() {
        "nested test host (kvm-amd on TCG)"
    } else {
        "direct"
    }
}

fn run(test: &str, lockdown: &str, bench_runs: usize) {
    // Built on this host, before any nesting: image, payload and profile.
    let g = guest();
    if !vigil_vmm::guest_path::run_test_on_real_kvm(test) {
        return;
    }
    let (dir, kernel, initrd, profile) = stage(&g);
    let mut vigil = Vigil::start(dir.path(), &kernel, &initrd, lockdown);
    let console = vigil.wait_for_marker(Duration::from_secs(600));
    let guest_report = parse_console(&console);
    let t = Instant::now();
    let live = vigil.inspect();
    println!(
        "first vm.inspect: {:.1} ms round trip ({:?})",
        t.elapsed().as_secs_f64() * 1e3,
        live.timing
    );
    compare(&live, &guest_report, &profile, lockdown);
    // Still running after the inspection: the API answers, not paused.
    let info: serde_json::Value =
        serde_json::from_str(&call(&vigil.socket, "GET", "vm.info", None).unwrap()).unwrap();
    assert_eq!(info["state"], "Running", "{info}");
    assert_eq!(
        info["kernel_layout"]["virt_text"].as_u64(),
        live.boot_layout.map(|b| b.virt_text)
    );
    // A VM the user paused is inspected from the snapshots it parked
    // with, and stays paused.
    call(&vigil.socket, "PUT", "vm.pause", None).expect("pause");
    let paused = vigil.inspect();
    assert!(paused.timing.was_paused);
    assert_eq!(paused.report.kaslr, live.report.kaslr);
    assert_eq!(paused.report.lockdown, live.report.lockdown);
    let info: serde_json::Value =
        serde_json::from_str(&call(&vigil.socket, "GET", "vm.info", None).unwrap()).unwrap();
    assert_eq!(info["state"], "Paused", "{info}");
    call(&vigil.socket, "PUT", "vm.resume", None).expect("resume");
    // The CLI's live form prints the same report.
    let cli = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["inspect", "--api"])
        .arg(&vigil.socket)
        .output()
        .expect("vigil inspect --api");
    let text = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{text}");
    assert!(text.contains(&format!("lockdown: {lockdown}")), "{text}");
    assert!(
        text.contains("crc_itu_t") && text.contains("slide agrees"),
        "{text}"
    );
    if bench_runs > 0 {
        bench(&vigil, bench_runs);
    }
    vigil.shutdown();
}

#[test]
fn live_inspect_lockdown_integrity() {
    run("live_inspect_lockdown_integrity", "integrity", 0);
}

/// Also prints the latency bench (JSON lines); `VIGIL_LIVE_BENCH_RUNS`
/// sets its rounds (default 5; README's numbers use 20 with --release).
#[test]
fn live_inspect_lockdown_none_with_latency_bench() {
    let runs = std::env::var("VIGIL_LIVE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    run(
        "live_inspect_lockdown_none_with_latency_bench",
        "none",
        runs,
    );
}

/// On this host's /dev/kvm (any flavour): a real-mode loop doing port
/// I/O, run by a vCPU thread; pausing parks it with a snapshot taken by
/// that thread, which the live view serves, and resuming lets it go on.
#[test]
fn a_parked_vcpu_leaves_a_snapshot_the_live_view_serves() {
    use std::sync::Arc;
    use vigil_monitor::guest::view::{msr, GuestMemory, VcpuState};
    use vigil_vmm::bus::Bus;
    use vigil_vmm::control::{VmControl, VmExit};
    use vigil_vmm::introspect::LiveView;
    use vigil_vmm::vcpu::{self, Buses, Vcpu};
    use vm_memory::{Bytes, GuestAddress};

    const CODE: u64 = 0x1000;
    // 1: inc ax; out 0x80, al; jmp 1b
    let code = [0x40, 0xe6, 0x80, 0xeb, 0xfb];
    let kvm = kvm_ioctls::Kvm::new().expect("this test needs /dev/kvm");
    let vm = kvm.create_vm().unwrap();
    let ram = vigil_vmm::memory::GuestRam::with_regions(&[(0, 0x10000)]).unwrap();
    ram.register(&vm, 0).unwrap();
    ram.mem.write_slice(&code, GuestAddress(CODE)).unwrap();
    let fd = vm.create_vcpu(0).unwrap();
    let mut sregs = fd.get_sregs().unwrap();
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    fd.set_sregs(&sregs).unwrap();
    let mut regs = fd.get_regs().unwrap();
    regs.rip = CODE;
    regs.rflags = 2;
    fd.set_regs(&regs).unwrap();
    let buses = Arc::new(Buses {
        pio: Bus::new(),
        mmio: Bus::new(),
    });

    vcpu::install_kick_handler().unwrap();
    let control = Arc::new(VmControl::new().unwrap());
    let thread = vcpu::spawn(Vcpu::new(0, fd, buses), control.clone()).unwrap();
    let threads = [thread];
    let pause = || {
        assert!(control.pause());
        vcpu::kick_until(&threads, || {
            control.wait_parked(1, Duration::from_millis(2))
        });
    };
    std::thread::sleep(Duration::from_millis(50));
    pause();
    let view = LiveView {
        memory: &ram.mem,
        vcpus: control.snapshots(1),
    };
    let first = view.regs(0).expect("a snapshot");
    assert!(
        (CODE..CODE + 5).contains(&first.rip),
        "rip {:#x}",
        first.rip
    );
    assert!(first.rax & 0xffff != 0, "the loop ran");
    assert_eq!(view.sregs(0).unwrap().cs.selector, 0);
    assert!(view.msr(0, msr::EFER).is_ok(), "{:?}", view.vcpus);
    let mut buf = [0u8; 5];
    view.read_phys(CODE, &mut buf).unwrap();
    assert_eq!(buf, code);
    // Parked means stopped: the snapshot is the state, twice over.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(control.snapshots(1)[0].as_ref().unwrap().regs, first);

    assert!(control.resume());
    assert!(control.snapshots(1)[0].is_err(), "no stale snapshot");
    std::thread::sleep(Duration::from_millis(50));
    pause();
    let second = control.snapshots(1)[0].clone().expect("a new snapshot");
    assert_ne!(second.regs.rax, first.rax, "the guest ran between pauses");

    control.request_exit(VmExit::Shutdown);
    vcpu::kick_until(&threads, || threads.iter().all(|t| t.is_finished()));
    let [thread] = threads;
    thread.join().unwrap();
}
