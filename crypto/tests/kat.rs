//! Known-answer tests against every implementation present in the registry.

use vigil_crypto::registry::{SelfTest, ALGORITHMS};
use vigil_crypto::{kat, Registry};

#[test]
fn every_implementation_passes_its_known_answers() {
    let reg = Registry::with_defaults();
    let mut ran = 0;
    for imp in reg.all() {
        let n = kat::run(imp).unwrap_or_else(|e| panic!("{}: {e}", imp.driver));
        assert!(n > 0, "{} has no vectors", imp.driver);
        assert_eq!(imp.selftest, SelfTest::Passed, "{}", imp.driver);
        eprintln!("{:<55} {n} vectors ok", imp.driver);
        ran += 1;
    }
    if !vigil_crypto::afalg::available() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "KATs for AF_ALG implementations: SKIPPED (no AF_ALG on this host kernel)"
        );
    }
    assert!(ran >= ALGORITHMS.len());
}

#[test]
fn every_algorithm_name_resolves() {
    let reg = Registry::with_defaults();
    for name in ALGORITHMS {
        let imp = reg.lookup(name).unwrap();
        assert_eq!(&imp.name, name);
    }
}

#[test]
fn lookup_by_name_driver_and_fastest() {
    let reg = Registry::with_defaults();
    // By name: the highest priority; by driver name: exactly that driver.
    let best = reg.implementations("xts(aes)")[0].clone();
    assert!(reg
        .implementations("xts(aes)")
        .iter()
        .all(|i| i.priority <= best.priority));
    assert_eq!(reg.lookup("xts(aes)").unwrap().driver, best.driver);
    assert_eq!(reg.lookup("xts-aes-vigil-batched").unwrap().priority, 401);
    assert_eq!(reg.lookup("xts(aes-generic)").unwrap().priority, 100);
    assert!(reg.lookup("xts(des)").is_err());
    let f = reg.fastest("xts(aes)").unwrap();
    assert_eq!(f.name, "xts(aes)");
    // Cached: a second call returns the same driver.
    assert_eq!(reg.fastest("xts(aes)").unwrap().driver, f.driver);
}

#[test]
fn proc_crypto_listing_has_kernel_fields() {
    let reg = Registry::with_defaults();
    let s = reg.proc_crypto();
    assert!(s.contains("name         : xts(aes)"));
    assert!(s.contains("driver       : xts-aes-vigil-batched"));
    assert!(s.contains("type         : skcipher"));
    assert!(s.contains("max keysize  : 64"));
    assert!(s.contains("digestsize   : 48"));
    assert!(s.contains("selftest     : passed"));
    assert!(!s.contains("selftest     : failed"));
}

#[test]
fn xts_rejects_bad_input_without_panicking() {
    let reg = Registry::with_defaults();
    let imp = reg.lookup("xts(aes)").unwrap();
    assert!(imp.skcipher(&[0u8; 33]).is_err());
    let key: Vec<u8> = (0..64u8).collect();
    let t = imp.skcipher(&key).unwrap();
    assert!(t.encrypt(&[0u8; 16], &mut [0u8; 15]).is_err());
    assert!(t.encrypt(&[0u8; 8], &mut [0u8; 32]).is_err());
    assert!(reg
        .lookup("gcm(aes)")
        .unwrap()
        .aead(&[0u8; 16])
        .unwrap()
        .open(&[0u8; 12], &[], &mut [0u8; 16], &[0u8; 16])
        .is_err());
}

#[test]
fn every_xts_driver_agrees_with_the_blockwise_one_on_odd_lengths() {
    let reg = Registry::with_defaults();
    let reference = reg.lookup_driver("xts(aes-generic)").unwrap();
    for key_len in [32usize, 64] {
        let key: Vec<u8> = (0..key_len).map(|i| (i * 13 + 1) as u8).collect();
        let r = reference.skcipher(&key).unwrap();
        for imp in reg.implementations("xts(aes)") {
            let t = imp.skcipher(&key).unwrap();
            for len in [
                16usize, 17, 31, 32, 255, 256, 257, 272, 511, 512, 4096, 4100, 4111, 8240,
            ] {
                let pt: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
                let iv: Vec<u8> = (0..16u8).map(|i| i ^ len as u8).collect();
                let (mut a, mut b) = (pt.clone(), pt.clone());
                r.encrypt(&iv, &mut a).unwrap();
                t.encrypt(&iv, &mut b).unwrap();
                assert_eq!(a, b, "{} encrypt, key {key_len}, len {len}", imp.driver);
                t.decrypt(&iv, &mut b).unwrap();
                assert_eq!(b, pt, "{} decrypt, key {key_len}, len {len}", imp.driver);
            }
        }
    }
}
