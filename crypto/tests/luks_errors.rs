//! Hostile or broken containers give distinct errors, never panics.

use std::os::unix::fs::FileExt;
use vigil_crypto::luks::volume::pbkdf2_kdf;
use vigil_crypto::luks::{LuksError, LuksVolume};

fn fresh(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("vigil-lerr-{tag}-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&p);
    LuksVolume::create_luks2(&p, 64 * 1024, b"pw", pbkdf2_kdf(1000).unwrap(), 4096).unwrap();
    p
}

#[test]
fn vigil_luks2_roundtrip_4096_sectors() {
    let p = fresh("rt");
    let v = LuksVolume::open(&p, b"pw").unwrap();
    assert_eq!(v.sector_size(), 4096);
    assert_eq!(v.sectors(), 16);
    let d = vec![0x33u8; 8192];
    v.write_sectors(14, &d).unwrap();
    let mut b = vec![0u8; 8192];
    v.read_sectors(14, &mut b).unwrap();
    assert_eq!(b, d);
    assert!(matches!(
        v.read_sectors(15, &mut b),
        Err(LuksError::OutOfRange(_))
    ));
    assert!(v.read_sectors(u64::MAX, &mut b).is_err());
    let _ = std::fs::remove_file(p);
}

#[test]
fn distinct_errors() {
    let p = fresh("err");
    assert!(matches!(
        LuksVolume::open(&p, b"nope"),
        Err(LuksError::WrongPassphrase)
    ));

    // One damaged copy is survivable; both damaged is a corrupt header.
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(b"garbage", 4200).unwrap();
    assert!(
        LuksVolume::open(&p, b"pw").is_ok(),
        "secondary copy must rescue"
    );
    f.write_all_at(b"garbage", 16384 + 4200).unwrap();
    assert!(matches!(
        LuksVolume::open(&p, b"pw"),
        Err(LuksError::CorruptHeader(_))
    ));

    // Truncated.
    let t = std::env::temp_dir().join(format!("vigil-lerr-trunc-{}.img", std::process::id()));
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&t, &bytes[..3000]).unwrap();
    assert!(matches!(
        LuksVolume::open(&t, b"pw"),
        Err(LuksError::TruncatedHeader(_))
    ));
    std::fs::write(&t, &bytes[..6]).unwrap();
    assert!(matches!(
        LuksVolume::open(&t, b"pw"),
        Err(LuksError::TruncatedHeader(_))
    ));

    // Unsupported cipher (LUKS1 header naming serpent).
    let mut h = vec![0u8; 4096];
    h[0..6].copy_from_slice(b"LUKS\xba\xbe");
    h[7] = 1;
    h[8..15].copy_from_slice(b"serpent");
    h[40..51].copy_from_slice(b"xts-plain64");
    h[72..78].copy_from_slice(b"sha256");
    std::fs::write(&t, &h).unwrap();
    assert!(matches!(
        LuksVolume::open(&t, b"pw"),
        Err(LuksError::UnsupportedCipher(_))
    ));
    std::fs::write(&t, b"not luks at all, just bytes").unwrap();
    assert!(matches!(
        LuksVolume::open(&t, b"pw"),
        Err(LuksError::NotLuks)
    ));
    let _ = std::fs::remove_file(t);
    let _ = std::fs::remove_file(p);
}

#[test]
fn random_header_mutations_never_panic() {
    let p = fresh("fuzz");
    let orig = std::fs::read(&p).unwrap();
    let mut seed = 0x1234_5678_9abc_def0u64;
    for _ in 0..200 {
        let mut b = orig.clone();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % 36000) as usize;
            b[i] = (seed >> 32) as u8;
        }
        std::fs::write(&p, &b).unwrap();
        let _ = LuksVolume::open(&p, b"pw");
    }
    let _ = std::fs::remove_file(p);
}

#[test]
fn hostile_json_with_valid_checksums_is_rejected() {
    use std::os::unix::fs::FileExt;
    use vigil_crypto::luks::luks2::Luks2Header;
    let p = fresh("json");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    let len = f.metadata().unwrap().len();
    let read = |o: u64, b: &mut [u8]| f.read_exact_at(b, o);
    let orig = Luks2Header::read(&read, len).unwrap();
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("/keyslots/0/area/key_size", serde_json::json!(1u64 << 40)),
        ("/keyslots/0/af/stripes", serde_json::json!(0)),
        (
            "/keyslots/0/kdf",
            serde_json::json!({"type": "argon2id", "time": 1, "memory": u64::MAX, "cpus": 1, "salt": "AAAA"}),
        ),
        (
            "/keyslots/0/kdf",
            serde_json::json!({"type": "argon2id", "time": 1, "memory": 1u64 << 31, "cpus": 1, "salt": "AAAA"}),
        ),
        (
            "/segments/0/encryption",
            serde_json::json!("serpent-cbc-essiv:sha256"),
        ),
        ("/segments/0/sector_size", serde_json::json!(3)),
        ("/segments/0/offset", serde_json::json!("not a number")),
        ("/digests/0/digest", serde_json::json!("!!!")),
    ];
    for (ptr, val) in cases {
        let mut h = orig.clone();
        *h.json.pointer_mut(ptr).unwrap() = val;
        h.seqid += 10;
        f.write_all_at(&h.serialize_copy(false).unwrap(), 0)
            .unwrap();
        f.write_all_at(&h.serialize_copy(true).unwrap(), h.hdr_size)
            .unwrap();
        let r = LuksVolume::open(&p, b"pw");
        assert!(
            matches!(
                r,
                Err(LuksError::CorruptHeader(_)) | Err(LuksError::UnsupportedCipher(_))
            ),
            "{ptr}: {:?}",
            r.err()
        );
    }
    let _ = std::fs::remove_file(p);
}
