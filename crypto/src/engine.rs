//! Asynchronous request path the virtio devices call: batches of requests
//! with scatter-gather buffer lists (processed in place or into a separate
//! output list) run on a worker pool sized to the host, and each completes
//! through a channel or a callback.

use crate::algorithms::{Aead, HashProvider, Skcipher};
use crate::error::{CryptoError, Result};
use crate::registry::Registry;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A keyed transform requests run on (create through the registry).
#[derive(Clone)]
pub enum Transform {
    Skcipher(Arc<dyn Skcipher>),
    Aead(Arc<dyn Aead>),
    Hash {
        provider: Arc<dyn HashProvider>,
        key: Option<Vec<u8>>,
    },
}

impl Transform {
    /// Keyed skcipher for `name` (algorithm or driver name) from `reg`.
    pub fn skcipher(reg: &Registry, name: &str, key: &[u8]) -> Result<Self> {
        Ok(Transform::Skcipher(Arc::from(
            reg.lookup(name)?.skcipher(key)?,
        )))
    }
    pub fn aead(reg: &Registry, name: &str, key: &[u8]) -> Result<Self> {
        Ok(Transform::Aead(Arc::from(reg.lookup(name)?.aead(key)?)))
    }
    pub fn hash(reg: &Registry, name: &str, key: Option<&[u8]>) -> Result<Self> {
        let provider = reg.lookup(name)?.hash()?.clone();
        if provider.keyed() != key.is_some() {
            return Err(CryptoError::BadKey(format!(
                "{name}: key presence mismatch"
            )));
        }
        Ok(Transform::Hash {
            provider,
            key: key.map(<[u8]>::to_vec),
        })
    }
}

#[derive(Debug, Clone)]
pub enum Op {
    Encrypt,
    Decrypt,
    /// AEAD encrypt; produces a tag of `tag_len` bytes.
    Seal {
        aad: Vec<u8>,
        tag_len: usize,
    },
    /// AEAD decrypt and verify `tag`.
    Open {
        aad: Vec<u8>,
        tag: Vec<u8>,
    },
    /// Hash/MAC of the source; result in `Completion::digest`.
    Digest,
}

/// Where results go: back into the source segments, or into a separate
/// destination list whose segment lengths must add up to the source's.
#[derive(Debug, Clone)]
pub enum Output {
    InPlace,
    Separate(Vec<usize>),
}

pub struct Request {
    /// Caller's tag, echoed in the completion (e.g. a descriptor index).
    pub id: u64,
    pub transform: Transform,
    pub op: Op,
    pub iv: Vec<u8>,
    pub src: Vec<Vec<u8>>,
    pub output: Output,
}

#[derive(Debug)]
pub struct Completion {
    pub id: u64,
    /// Output segments (the source list when in place).
    pub data: Vec<Vec<u8>>,
    /// AEAD tag (Seal) or digest (Digest).
    pub digest: Vec<u8>,
    pub result: Result<()>,
}

pub enum Completer {
    Channel(Sender<Completion>),
    Callback(Box<dyn FnOnce(Completion) + Send>),
}

impl Completer {
    fn complete(self, c: Completion) {
        match self {
            // A caller that dropped its receiver no longer wants the result.
            Completer::Channel(tx) => {
                let _ = tx.send(c);
            }
            Completer::Callback(f) => f(c),
        }
    }
}

type Job = (Request, Completer);

pub struct Engine {
    tx: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Engine {
    /// A pool of `threads` workers (0 = one per host CPU).
    pub fn new(threads: usize) -> Self {
        let n = if threads == 0 {
            crate::bench::host_threads()
        } else {
            threads
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..n)
            .map(|i| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("vigil-crypto-{i}"))
                    .spawn(move || worker(rx))
            })
            .filter_map(|h| h.ok())
            .collect();
        Engine {
            tx: Some(tx),
            workers,
        }
    }

    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Queues a batch; each request completes on its own through `tx`.
    pub fn submit_batch(&self, batch: Vec<Request>, tx: &Sender<Completion>) -> Result<()> {
        for r in batch {
            self.submit(r, Completer::Channel(tx.clone()))?;
        }
        Ok(())
    }

    pub fn submit(&self, req: Request, done: Completer) -> Result<()> {
        let tx = self.tx.as_ref().ok_or(CryptoError::EngineClosed)?;
        tx.send((req, done)).map_err(|_| CryptoError::EngineClosed)
    }

    /// Convenience for synchronous callers: run a batch and wait for all of it,
    /// returning completions in submission order.
    pub fn run_batch(&self, batch: Vec<Request>) -> Result<Vec<Completion>> {
        let n = batch.len();
        let ids: Vec<u64> = batch.iter().map(|r| r.id).collect();
        let (tx, rx) = mpsc::channel();
        self.submit_batch(batch, &tx)?;
        drop(tx);
        let mut got: Vec<Completion> = rx.iter().take(n).collect();
        if got.len() != n {
            return Err(CryptoError::EngineClosed);
        }
        got.sort_by_key(|c| ids.iter().position(|i| *i == c.id).unwrap_or(usize::MAX));
        Ok(got)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.tx.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok((req, done)) = job else { return };
        done.complete(process(req));
    }
}

fn gather(segs: &[Vec<u8>]) -> Vec<u8> {
    segs.concat()
}

fn scatter(flat: &[u8], lens: impl Iterator<Item = usize>) -> Vec<Vec<u8>> {
    let mut off = 0;
    lens.map(|l| {
        let end = (off + l).min(flat.len());
        let v = flat[off..end].to_vec();
        off = end;
        v
    })
    .collect()
}

/// Runs one request; errors are reported in the completion, never panics.
pub fn process(req: Request) -> Completion {
    let Request {
        id,
        transform,
        op,
        iv,
        src,
        output,
    } = req;
    let total: usize = src.iter().map(Vec::len).sum();
    let out_lens: Vec<usize> = match &output {
        Output::InPlace => src.iter().map(Vec::len).collect(),
        Output::Separate(l) => l.clone(),
    };
    let mut digest = Vec::new();
    let fail = |src, e| Completion {
        id,
        data: src,
        digest: Vec::new(),
        result: Err(e),
    };
    if !matches!(op, Op::Digest) && out_lens.iter().sum::<usize>() != total {
        return fail(
            src,
            CryptoError::InvalidLength {
                alg: "engine",
                len: total,
                why: "destination length differs from source",
            },
        );
    }
    // One segment runs without copying; several are gathered first.
    let mut flat = if src.len() == 1 {
        src.into_iter().next().unwrap_or_default()
    } else {
        gather(&src)
    };
    let result = match (&transform, op) {
        (Transform::Skcipher(t), Op::Encrypt) => t.encrypt(&iv, &mut flat),
        (Transform::Skcipher(t), Op::Decrypt) => t.decrypt(&iv, &mut flat),
        (Transform::Aead(t), Op::Seal { aad, tag_len }) => {
            digest = vec![0u8; tag_len];
            t.seal(&iv, &aad, &mut flat, &mut digest)
        }
        (Transform::Aead(t), Op::Open { aad, tag }) => t.open(&iv, &aad, &mut flat, &tag),
        (Transform::Hash { provider, key }, Op::Digest) => {
            provider.digest(key.as_deref(), &flat).map(|d| digest = d)
        }
        _ => Err(CryptoError::WrongType(
            "request".into(),
            "operation for this transform",
        )),
    };
    let data = if result.is_ok() || matches!(transform, Transform::Hash { .. }) {
        if out_lens.len() == 1 && out_lens[0] == flat.len() {
            vec![flat]
        } else {
            scatter(&flat, out_lens.into_iter())
        }
    } else {
        // Never hand back half-processed data on failure.
        Vec::new()
    };
    Completion {
        id,
        data,
        digest,
        result,
    }
}
