//! Non-kernels, truncated and corrupted images give typed errors, never a panic.

use std::io::Write;
use vigil_monitor::error::ProfileError;
use vigil_monitor::profile::KernelProfile;

fn bzimage(payload: &[u8]) -> Vec<u8> {
    let mut img = vec![0u8; 5 * 512];
    img[0x1f1] = 4;
    img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
    img[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    img.extend_from_slice(payload);
    img
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn clear_errors_for_bad_images() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("text", b"#!/bin/sh\necho not a kernel\n".repeat(100)),
        ("elf-not-bzimage", {
            let mut v = b"\x7fELF".to_vec();
            v.resize(8192, 0);
            v
        }),
        ("bzip2", bzimage(b"BZh91AY&SY")),
        (
            "gzip-garbage",
            bzimage(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6]),
        ),
        ("gzip-not-elf", bzimage(&gz(&[0x55; 4096]))),
        (
            "elf-no-rodata",
            bzimage(&gz(&{
                let mut v = vec![0u8; 64];
                v[..4].copy_from_slice(b"\x7fELF");
                v[4] = 2;
                v[5] = 1;
                v[6] = 1;
                v[16] = 2;
                v[18] = 62;
                v[52] = 64;
                v
            })),
        ),
    ];
    for (name, img) in &cases {
        let e = KernelProfile::from_bzimage(img).expect_err(name);
        let msg = e.to_string();
        assert!(!msg.is_empty());
        eprintln!("{name}: {msg}");
    }
    assert!(matches!(
        KernelProfile::from_bzimage(&cases[0].1),
        Err(ProfileError::Truncated(_))
    ));
    assert!(matches!(
        KernelProfile::from_bzimage(&cases[1].1),
        Err(ProfileError::NotBzImage(_))
    ));
    assert!(matches!(
        KernelProfile::from_bzimage(&cases[3].1),
        Err(ProfileError::UnknownCompression(_))
    ));
    assert!(matches!(
        KernelProfile::from_bzimage(&cases[4].1),
        Err(ProfileError::Decompress { .. })
    ));
}

/// Truncating the real Debian image anywhere yields an error, not a panic.
#[test]
fn truncated_debian_image() {
    let Some(k) = vigil_monitor::test_support::debian_kernel() else {
        eprintln!("SKIPPED: no Debian kernel");
        return;
    };
    let img = std::fs::read(k).unwrap();
    for frac in [1, 100, 500, 980] {
        let cut = img.len() * frac / 1000;
        let r = KernelProfile::from_bzimage(&img[..cut]);
        assert!(matches!(r, Err(ProfileError::Truncated(_))), "cut at {cut}");
    }
    // Shorten payload_length too, so the decompressor sees a cut stream.
    let len = u32::from_le_bytes(img[0x24c..0x250].try_into().unwrap());
    for keep in [64, len / 3, len - 64] {
        let mut v = img.clone();
        v[0x24c..0x250].copy_from_slice(&keep.to_le_bytes());
        let r = KernelProfile::from_bzimage(&v);
        assert!(
            matches!(r, Err(ProfileError::Decompress { .. })),
            "payload cut to {keep}: {r:?}"
        );
    }
}
