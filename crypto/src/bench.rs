//! Throughput benchmark behind `vigil crypto bench`: every implementation of
//! xts(aes) (4 KiB sectors), cbc(aes), gcm(aes) and sha256, on one core and
//! on all cores, next to `openssl speed -evp` measured in the same run.
//! Results are JSON lines; timings live here, never in tests.

use crate::error::Result;
use crate::registry::{AlgImpl, AlgKind, Registry};
use crate::software::aead::authenc_key;
use serde::Serialize;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Step = Box<dyn FnMut(&mut [u8]) -> Result<()>>;

/// One benchmark row.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub algorithm: String,
    /// Driver name, or `openssl:<cipher>` for the peer.
    pub implementation: String,
    pub threads: usize,
    pub request_bytes: usize,
    /// Data unit with its own IV inside a request (disk sectors for XTS).
    pub unit_bytes: usize,
    pub key_bits: usize,
    pub gbytes_per_sec: f64,
    /// "cpu" (bytes per CPU-second) or "wall", the same for the openssl row.
    pub time_basis: &'static str,
    /// This row over openssl's row with the same thread count (vigil rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_openssl: Option<f64>,
}

/// (registry name, openssl -evp name, key bytes, unit bytes). XTS requests
/// carry 16 sectors of 4 KiB, each with its own IV, as a virtio-blk request
/// would; openssl speed encrypts 4 KiB units without changing the IV.
pub const CASES: &[(&str, &str, usize, usize)] = &[
    ("xts(aes)", "aes-256-xts", 64, 4096),
    ("cbc(aes)", "aes-128-cbc", 16, 16384),
    ("gcm(aes)", "aes-256-gcm", 32, 16384),
    ("sha256", "sha256", 0, 16384),
];

/// Units per XTS request.
pub const XTS_UNITS_PER_REQUEST: usize = 16;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub duration: Duration,
    pub threads: Vec<usize>,
    pub with_openssl: bool,
    /// Each figure is the best of this many runs of `duration / repeats`:
    /// the hosts are shared, and the best run is the least disturbed one.
    pub repeats: u32,
    /// Only these algorithm names (empty = all of [`CASES`]).
    pub only: Vec<String>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            duration: Duration::from_secs(1),
            threads: vec![1, host_threads()],
            with_openssl: true,
            repeats: 3,
            only: Vec::new(),
        }
    }
}

pub fn host_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Bytes per CPU-second of `threads` threads each running `imp`.
pub fn measure(
    imp: &AlgImpl,
    key_len: usize,
    unit: usize,
    threads: usize,
    dur: Duration,
) -> Result<f64> {
    let len = if imp.name == "xts(aes)" {
        unit * XTS_UNITS_PER_REQUEST
    } else {
        unit
    };
    let mut handles = Vec::new();
    for _ in 0..threads {
        let kind = imp.kind.clone();
        let is_authenc = imp.name.starts_with("authenc");
        let is_xts = imp.name == "xts(aes)";
        let cpu_basis = time_basis(threads) == "cpu";
        handles.push(std::thread::spawn(move || -> Result<f64> {
            let mut buf = vec![0xa5u8; len];
            let mut step: Step = match &kind {
                AlgKind::Skcipher(p) => {
                    // Distinct key halves: XTS implementations may reject equal ones.
                    let key: Vec<u8> = (0..key_len as u8).collect();
                    let t = p.setkey(&key)?;
                    if is_xts {
                        Box::new(move |b| t.crypt_units(true, 0, (unit / 512) as u64, unit, b))
                    } else {
                        let iv = vec![1u8; p.ivsize()];
                        Box::new(move |b| t.encrypt(&iv, b))
                    }
                }
                AlgKind::Aead(p) => {
                    let key = if is_authenc {
                        authenc_key(&[3u8; 32], &vec![7u8; key_len])
                    } else {
                        vec![7u8; key_len]
                    };
                    let t = p.setkey(&key)?;
                    let iv = vec![1u8; p.ivsize()];
                    let mut tag = [0u8; 16];
                    Box::new(move |b| t.seal(&iv, &[], b, &mut tag))
                }
                AlgKind::Hash(p) => {
                    let p = Arc::clone(p);
                    Box::new(move |b| p.digest(None, b).map(|_| ()))
                }
                AlgKind::Verify(_) => return Ok(0.0),
            };
            let t0 = Instant::now();
            let c0 = thread_cpu_secs();
            let mut n = 0usize;
            while t0.elapsed() < dur {
                for _ in 0..16 {
                    step(&mut buf)?;
                    n += len;
                }
            }
            let secs = if cpu_basis {
                thread_cpu_secs() - c0
            } else {
                t0.elapsed().as_secs_f64()
            };
            Ok(n as f64 / secs.max(1e-9))
        }));
    }
    // Like `openssl speed [-multi]`: each thread's rate, summed.
    let mut total = 0f64;
    for h in handles {
        total += h.join().map_err(|_| crate::CryptoError::EngineClosed)??;
    }
    Ok(total)
}

/// CPU time this thread has used. A single `openssl speed` process divides
/// by CPU (user) time, while its `-multi` children were seen to follow wall
/// time (their figures drop with host load, the single process's do not);
/// [`time_basis`] mirrors that so each row compares like with like.
pub fn time_basis(threads: usize) -> &'static str {
    if threads == 1 {
        "cpu"
    } else {
        "wall"
    }
}

pub fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Runs `openssl speed -mr -evp`; returns bytes/s (None if openssl is absent).
pub fn openssl_speed(evp: &str, len: usize, threads: usize, secs: u64) -> Option<f64> {
    let mut cmd = Command::new("openssl");
    cmd.arg("speed").arg("-mr");
    if threads > 1 {
        cmd.arg("-multi").arg(threads.to_string());
    }
    cmd.args([
        "-evp",
        evp,
        "-bytes",
        &len.to_string(),
        "-seconds",
        &secs.max(1).to_string(),
    ]);
    let out = cmd.output().ok()?;
    parse_openssl_mr(&String::from_utf8_lossy(&out.stdout))
}

/// The aggregate `+F:<n>:<alg>:<bytes/s>` line of `openssl speed -mr`
/// (with -multi, per-child lines are prefixed "Got:"; the last one is the sum).
pub fn parse_openssl_mr(out: &str) -> Option<f64> {
    out.lines()
        .filter(|l| l.starts_with("+F:"))
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<f64>().ok())
        .next_back()
}

/// Runs the benchmark, calling `emit` for each row as it is measured.
pub fn run(
    reg: &Registry,
    cfg: &BenchConfig,
    mut emit: impl FnMut(&BenchRow),
) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for &(name, evp, key_len, len) in CASES {
        if !cfg.only.is_empty() && !cfg.only.iter().any(|o| o == name) {
            continue;
        }
        for &threads in &cfg.threads {
            // Rounds interleave the peer and every implementation, so all of
            // them sample the same stretch of a shared, noisy host; each keeps
            // its best round.
            let reps = cfg.repeats.max(1);
            let slice = cfg.duration / reps;
            let impls = reg.implementations(name);
            let mut peer: Option<f64> = None;
            let mut best = vec![0f64; impls.len()];
            for _ in 0..reps {
                if cfg.with_openssl {
                    if let Some(b) = openssl_speed(evp, len, threads, slice.as_secs().max(1)) {
                        peer = Some(peer.map_or(b, |p| p.max(b)));
                    }
                }
                for (k, imp) in impls.iter().enumerate() {
                    best[k] = best[k].max(measure(imp, key_len, len, threads, slice)?);
                }
            }
            if let Some(bps) = peer {
                let row = BenchRow {
                    algorithm: name.into(),
                    implementation: format!("openssl:{evp}"),
                    threads,
                    request_bytes: len,
                    unit_bytes: len,
                    key_bits: key_len * 8,
                    gbytes_per_sec: bps / 1e9,
                    time_basis: time_basis(threads),
                    vs_openssl: None,
                };
                emit(&row);
                rows.push(row);
            }
            for (imp, bps) in impls.iter().zip(best) {
                let row = BenchRow {
                    algorithm: name.into(),
                    implementation: imp.driver.clone(),
                    threads,
                    request_bytes: if name == "xts(aes)" {
                        len * XTS_UNITS_PER_REQUEST
                    } else {
                        len
                    },
                    unit_bytes: len,
                    key_bits: key_len * 8,
                    gbytes_per_sec: bps / 1e9,
                    time_basis: time_basis(threads),
                    vs_openssl: peer.map(|p| bps / p),
                };
                emit(&row);
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_machine_readable_output() {
        let single = "+DT:AES-256-XTS:1:4096\n+R:2141838:AES-256-XTS:0.99\n+H:4096\n+F:25:AES-256-XTS:8861584290.91\n";
        assert_eq!(parse_openssl_mr(single), Some(8861584290.91));
        let multi = "Got: +F:25:sha256:2154283008.00 from 0\nGot: +H:16384 from 1\n+F:25:sha256:4317085696.00\n";
        assert_eq!(parse_openssl_mr(multi), Some(4317085696.0));
        assert_eq!(parse_openssl_mr("garbage\n+F:x"), None);
    }
}
