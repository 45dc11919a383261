//! The asynchronous request path: batches, scatter-gather, completions.

use std::sync::mpsc;
use std::sync::Arc;
use vigil_crypto::engine::{Completer, Engine, Op, Output, Request, Transform};
use vigil_crypto::Registry;

fn xts() -> Transform {
    let reg = Registry::with_defaults();
    let t = reg
        .lookup("xts(aes)")
        .unwrap()
        .skcipher(&(0..64u8).collect::<Vec<u8>>())
        .unwrap();
    Transform::Skcipher(Arc::from(t))
}

fn sector(n: u64) -> Vec<u8> {
    let mut iv = vec![0u8; 16];
    iv[..8].copy_from_slice(&n.to_le_bytes());
    iv
}

#[test]
fn batch_of_sg_requests_matches_synchronous_results() {
    let eng = Engine::new(0);
    assert!(eng.threads() >= 1);
    let tfm = xts();
    let Transform::Skcipher(sync) = &tfm else {
        unreachable!()
    };
    let mut batch = Vec::new();
    let mut expect = Vec::new();
    for i in 0..64u64 {
        let plain: Vec<u8> = (0..4096).map(|j| (j as u64 * 31 + i) as u8).collect();
        let mut e = plain.clone();
        sync.encrypt(&sector(i), &mut e).unwrap();
        expect.push(e);
        // Odd requests: 3 source segments in place; even: one segment into 2 outputs.
        let (src, output) = if i % 2 == 1 {
            (
                vec![
                    plain[..100].to_vec(),
                    plain[100..4000].to_vec(),
                    plain[4000..].to_vec(),
                ],
                Output::InPlace,
            )
        } else {
            (vec![plain], Output::Separate(vec![2048, 2048]))
        };
        batch.push(Request {
            id: i,
            transform: tfm.clone(),
            op: Op::Encrypt,
            iv: sector(i),
            src,
            output,
        });
    }
    let done = eng.run_batch(batch).unwrap();
    assert_eq!(done.len(), 64);
    for (i, c) in done.iter().enumerate() {
        assert_eq!(c.id, i as u64);
        c.result.as_ref().unwrap();
        let lens: Vec<usize> = c.data.iter().map(Vec::len).collect();
        if i % 2 == 1 {
            assert_eq!(lens, vec![100, 3900, 96]);
        } else {
            assert_eq!(lens, vec![2048, 2048]);
        }
        assert_eq!(c.data.concat(), expect[i]);
    }
}

#[test]
fn callback_completion_and_errors_are_reported() {
    let eng = Engine::new(2);
    let reg = Registry::with_defaults();
    let gcm: Arc<dyn vigil_crypto::algorithms::Aead> =
        Arc::from(reg.lookup("gcm(aes)").unwrap().aead(&[1u8; 32]).unwrap());
    let (tx, rx) = mpsc::channel();
    eng.submit(
        Request {
            id: 7,
            transform: Transform::Aead(gcm),
            op: Op::Open {
                aad: vec![],
                tag: vec![0u8; 16],
            },
            iv: vec![0u8; 12],
            src: vec![vec![0u8; 64]],
            output: Output::InPlace,
        },
        Completer::Callback(Box::new(move |c| {
            let _ = tx.send((c.id, c.result.is_err(), c.data.is_empty()));
        })),
    )
    .unwrap();
    assert_eq!(rx.recv().unwrap(), (7, true, true));

    // Mismatched destination length is an error completion, not a panic.
    let bad = eng
        .run_batch(vec![Request {
            id: 1,
            transform: xts(),
            op: Op::Encrypt,
            iv: sector(0),
            src: vec![vec![0u8; 512]],
            output: Output::Separate(vec![100]),
        }])
        .unwrap();
    assert!(bad[0].result.is_err());
}

#[test]
fn digest_requests_gather_segments() {
    let eng = Engine::new(1);
    let reg = Registry::with_defaults();
    let p = reg.lookup("sha256").unwrap().hash().unwrap().clone();
    let done = eng
        .run_batch(vec![Request {
            id: 0,
            transform: Transform::Hash {
                provider: p,
                key: None,
            },
            op: Op::Digest,
            iv: vec![],
            src: vec![b"a".to_vec(), b"bc".to_vec()],
            output: Output::InPlace,
        }])
        .unwrap();
    assert_eq!(
        hex::encode(&done[0].digest),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn transforms_from_registry_names() {
    let reg = Registry::with_defaults();
    assert!(Transform::skcipher(&reg, "cbc(aes)", &[0u8; 16]).is_ok());
    assert!(Transform::skcipher(&reg, "cbc(aes)", &[0u8; 15]).is_err());
    assert!(Transform::aead(&reg, "gcm(aes)", &[0u8; 32]).is_ok());
    assert!(Transform::hash(&reg, "hmac(sha256)", Some(b"k")).is_ok());
    assert!(Transform::hash(&reg, "hmac(sha256)", None).is_err());
    assert!(Transform::skcipher(&reg, "no-such-alg", &[0u8; 16]).is_err());
}
