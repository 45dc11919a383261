//! Crypto-erase through per-segment keys.

use std::os::unix::fs::FileExt;
use vigil_crypto::luks::luks2::DATA_OFFSET;
use vigil_crypto::luks::volume::pbkdf2_kdf;
use vigil_crypto::luks::LuksVolume;
use vigil_crypto::segmented::SegmentedVolume;
use vigil_crypto::Registry;

const SEG: u64 = 64 * 1024;

fn pat(seg: u8) -> Vec<u8> {
    (0..SEG as usize)
        .map(|i| (i as u8) ^ seg.wrapping_mul(91))
        .collect()
}

/// Decrypts one segment's raw bytes with `key` the way the layout does.
fn decrypt_with(key: &[u8], raw: &[u8]) -> Vec<u8> {
    let t = Registry::with_defaults()
        .lookup("xts(aes)")
        .unwrap()
        .skcipher(key)
        .unwrap();
    let mut b = raw.to_vec();
    for (i, c) in b.chunks_mut(4096).enumerate() {
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&((i * 8) as u64).to_le_bytes());
        t.decrypt(&iv, c).unwrap();
    }
    b
}

#[test]
fn discard_erases_one_segment_and_leaves_others() {
    let p = std::env::temp_dir().join(format!("vigil-seg-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let vol =
        LuksVolume::create_luks2(&p, 1 << 20, b"pw", pbkdf2_kdf(1000).unwrap(), 4096).unwrap();
    let mut s = SegmentedVolume::format(vol, SEG).unwrap();
    assert!(s.segments() >= 3);
    for seg in 0..3u8 {
        s.write(seg as u64 * SEG, &pat(seg)).unwrap();
    }
    let seg1_at = DATA_OFFSET + s.data_offset() + SEG;
    let file = std::fs::File::open(&p).unwrap();
    let mut old_ct = vec![0u8; SEG as usize];
    file.read_exact_at(&mut old_ct, seg1_at).unwrap();
    let old_key = s.segment_key(1).unwrap().to_vec();
    // Sanity: the captured ciphertext does decrypt with the old key.
    assert_eq!(decrypt_with(&old_key, &old_ct), pat(1));
    s.discard(1).unwrap();
    drop(s);

    // Everything the passphrase unlocks now.
    let vol = LuksVolume::open(&p, b"pw").unwrap();
    let mut payload = vec![0u8; (vol.sectors() as usize) * vol.sector_size()];
    vol.read_sectors(0, &mut payload).unwrap();
    let s = SegmentedVolume::open(vol).unwrap();
    let new_key = s.segment_key(1).unwrap().to_vec();
    assert_ne!(new_key, old_key);
    assert_ne!(
        decrypt_with(&new_key, &old_ct),
        pat(1),
        "old ciphertext must not decrypt"
    );
    let whole_file = std::fs::read(&p).unwrap();
    for hay in [&payload, &whole_file] {
        assert!(
            !hay.windows(old_key.len()).any(|w| w == old_key.as_slice()),
            "old segment key must be gone from the container"
        );
    }
    let mut b = vec![0u8; SEG as usize];
    s.read(SEG, &mut b).unwrap();
    assert!(
        b.iter().all(|&x| x == 0),
        "a discarded segment reads as zeros"
    );
    for seg in [0u8, 2] {
        s.read(seg as u64 * SEG, &mut b).unwrap();
        assert_eq!(b, pat(seg), "segment {seg} must be untouched");
    }
    let _ = std::fs::remove_file(p);
}

#[test]
fn reuse_after_discard_and_tampered_table_is_rejected() {
    let p = std::env::temp_dir().join(format!("vigil-seg2-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let vol =
        LuksVolume::create_luks2(&p, 512 * 1024, b"pw", pbkdf2_kdf(1000).unwrap(), 512).unwrap();
    let mut s = SegmentedVolume::format(vol, SEG).unwrap();
    s.write(0, &pat(0)).unwrap();
    s.discard(0).unwrap();
    s.write(4096, &[9u8; 4096]).unwrap();
    let mut b = vec![0u8; 8192];
    s.read(0, &mut b).unwrap();
    assert!(b[..4096].iter().all(|&x| x == 0));
    assert!(b[4096..].iter().all(|&x| x == 9));
    assert!(s.read(SEG * 1000, &mut b).is_err());
    assert!(s.write(100, &b).is_err());
    drop(s);
    // Corrupt the key table: opening the layout fails cleanly.
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(&[0xffu8; 64], DATA_OFFSET + 4096).unwrap();
    let vol = LuksVolume::open(&p, b"pw").unwrap();
    assert!(SegmentedVolume::open(vol).is_err());
    let _ = std::fs::remove_file(p);
}
