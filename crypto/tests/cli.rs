//! The `vigil luks` / `vigil crypto` pieces, driven in-process.

use vigil_crypto::cli::{run_crypto, run_luks, CryptoCommand, KeyArgs, LuksCommand, PbkdfChoice};
use vigil_crypto::luks::LuksVolume;

fn key(p: &std::path::Path) -> KeyArgs {
    KeyArgs {
        key_file: Some(p.to_path_buf()),
    }
}

#[test]
fn luks_format_test_dump_add_remove() {
    let d = std::env::temp_dir().join(format!("vigil-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let img = d.join("c.img");
    let k1 = d.join("k1");
    let k2 = d.join("k2");
    std::fs::write(&k1, b"first\n").unwrap();
    std::fs::write(&k2, b"second").unwrap();
    run_luks(LuksCommand::Format {
        image: img.clone(),
        luks_type: "luks2".into(),
        size: 1 << 20,
        sector_size: 4096,
        pbkdf: PbkdfChoice::Pbkdf2,
        iterations: Some(1000),
        memory: 0,
        key: key(&k1),
    })
    .unwrap();
    run_luks(LuksCommand::TestPassphrase {
        image: img.clone(),
        key: key(&k1),
    })
    .unwrap();
    assert!(run_luks(LuksCommand::TestPassphrase {
        image: img.clone(),
        key: key(&k2)
    })
    .is_err());
    run_luks(LuksCommand::Dump {
        image: img.clone(),
        dump_volume_key: true,
        key: key(&k1),
    })
    .unwrap();
    run_luks(LuksCommand::AddKey {
        image: img.clone(),
        new_key_file: k2.clone(),
        key: key(&k1),
    })
    .unwrap();
    run_luks(LuksCommand::RemoveKey {
        image: img.clone(),
        key: key(&k1),
    })
    .unwrap();
    assert!(LuksVolume::open(&img, b"first\n").is_err());
    assert!(LuksVolume::open(&img, b"second").is_ok());
    run_luks(LuksCommand::Dump {
        image: img.clone(),
        dump_volume_key: false,
        key: KeyArgs { key_file: None },
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn crypto_list_runs() {
    run_crypto(CryptoCommand::List).unwrap();
}

#[test]
fn luks_format_luks1() {
    let d = std::env::temp_dir().join(format!("vigil-cli1-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let k = d.join("k");
    std::fs::write(&k, b"one").unwrap();
    let img = d.join("l1.img");
    run_luks(LuksCommand::Format {
        image: img.clone(),
        luks_type: "luks1".into(),
        size: 1 << 20,
        sector_size: 512,
        pbkdf: PbkdfChoice::Pbkdf2,
        iterations: Some(1000),
        memory: 0,
        key: key(&k),
    })
    .unwrap();
    run_luks(LuksCommand::Dump {
        image: img.clone(),
        dump_volume_key: false,
        key: key(&k),
    })
    .unwrap();
    assert_eq!(
        LuksVolume::open(&img, b"one").unwrap().version(),
        vigil_crypto::luks::volume::LuksVersion::V1
    );
    assert!(run_luks(LuksCommand::Format {
        image: d.join("x.img"),
        luks_type: "luks3".into(),
        size: 1 << 20,
        sector_size: 512,
        pbkdf: PbkdfChoice::Pbkdf2,
        iterations: Some(1000),
        memory: 0,
        key: key(&k),
    })
    .is_err());
    let _ = std::fs::remove_dir_all(d);
}
