//! The real Debian kernel re-packed with each other payload compression
//! gives the same profile as the original xz image.

use std::io::Write;
use vigil_monitor::profile::{bzimage, decompress, KernelProfile};

fn repack(img: &[u8], payload: &[u8]) -> Vec<u8> {
    let hdr = bzimage::parse_setup_header(img).unwrap();
    let start = hdr.pm_offset + hdr.payload_offset as usize;
    let mut v = img[..start].to_vec();
    v[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn same_profile_for_every_compression() {
    let Some(k) = vigil_monitor::test_support::debian_kernel() else {
        eprintln!("SKIPPED: no Debian kernel");
        return;
    };
    let img = std::fs::read(k).unwrap();
    let orig = KernelProfile::from_bzimage(&img).unwrap();
    assert_eq!(orig.compression, decompress::Compression::Xz);
    let hdr = bzimage::parse_setup_header(&img).unwrap();
    let (_, vmlinux) = decompress::decompress(bzimage::payload(&img, &hdr).unwrap()).unwrap();

    let zst = zstd::encode_all(&vmlinux[..], 1).unwrap();
    // System gzip: flate2's encoder is slow in unoptimised test builds.
    let mut child = std::process::Command::new("gzip")
        .arg("-1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = vmlinux.clone();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let gz = child.wait_with_output().unwrap().stdout;
    feeder.join().unwrap().unwrap();
    // Kernel-style legacy LZ4: 8 MiB blocks.
    let mut lz = 0x184c_2102u32.to_le_bytes().to_vec();
    for chunk in vmlinux.chunks(8 << 20) {
        let b = lz4_flex::block::compress(chunk);
        lz.extend_from_slice(&(b.len() as u32).to_le_bytes());
        lz.extend_from_slice(&b);
    }
    lz.extend_from_slice(&(vmlinux.len() as u32).to_le_bytes());

    for (want, payload) in [
        (decompress::Compression::Zstd, zst),
        (decompress::Compression::Gzip, gz),
        (decompress::Compression::Lz4, lz),
    ] {
        let p = KernelProfile::from_bzimage(&repack(&img, &payload)).unwrap();
        assert_eq!(p.compression, want);
        assert_eq!(
            p.measurements.kernel_sha256, orig.measurements.kernel_sha256,
            "{want:?}"
        );
        assert_eq!(p.symbols, orig.symbols, "{want:?}");
        assert_eq!(p.structs, orig.structs, "{want:?}");
        assert_eq!(p.sections, orig.sections, "{want:?}");
    }
}
