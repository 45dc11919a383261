//! Introspection benchmarks, one JSON line each:
//! `bench_introspect <vmlinuz> [<dump.elf>]`.
//! Profile build cold vs cached; with a dump: task walk and translated vs
//! raw physical reads per second (the peer measured in the same run).

use std::time::{Duration, Instant};
use vigil_monitor::guest::coredump::CoreDump;
use vigil_monitor::guest::view::GuestMemory;
use vigil_monitor::kaslr::Kernel;
use vigil_monitor::profile::cache;
use vigil_monitor::readers::tasks;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let kernel = std::path::PathBuf::from(
        args.get(1)
            .ok_or_else(|| anyhow::anyhow!("usage: <vmlinuz> [dump]"))?,
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-{}", std::process::id()));
    let t = Instant::now();
    let (profile, src) = cache::load_or_build_in(&kernel, &dir)?;
    anyhow::ensure!(src == cache::Source::Built);
    let cold = t.elapsed().as_secs_f64() * 1e3;
    let cached: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let _ = cache::load_or_build_in(&kernel, &dir);
            t.elapsed()
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{{\"bench\":\"profile\",\"symbols\":{},\"cold_ms\":{cold:.1},\"cached_ms\":{:.2}}}",
        profile.symbols.len(),
        median(cached)
    );
    let Some(dump) = args.get(2) else {
        return Ok(());
    };
    let dump = CoreDump::open(std::path::Path::new(dump))?;
    let k = Kernel::new(&dump, &profile)?;
    let mut n = 0;
    let walks: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            n = tasks::read(&k).map(|v| v.len()).unwrap_or(0);
            t.elapsed()
        })
        .collect();
    let walk = median(walks);
    println!(
        "{{\"bench\":\"task_walk\",\"tasks\":{n},\"ms\":{walk:.3},\"us_per_task\":{:.2}}}",
        walk * 1e3 / n.max(1) as f64
    );
    // Translated 8-byte reads spread over kernel text vs raw physical reads
    // of the same frames.
    let text = profile.sections.text;
    let reads = 200_000u64;
    let mut sum = 0u64;
    let t = Instant::now();
    for i in 0..reads {
        let va = text.start + k.kaslr.slide + (i * 4099 * 8) % text.len() / 8 * 8;
        sum = sum.wrapping_add(k.u64(va)?);
    }
    let virt = reads as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..reads {
        let pa = k.kaslr.text_phys + (i * 4099 * 8) % text.len() / 8 * 8;
        sum = sum.wrapping_add(dump.read_phys_u64(pa)?);
    }
    let phys = reads as f64 / t.elapsed().as_secs_f64();
    println!("{{\"bench\":\"reads\",\"translated_per_s\":{virt:.0},\"physical_per_s\":{phys:.0},\"checksum\":{}}}", sum % 1000);
    Ok(())
}
