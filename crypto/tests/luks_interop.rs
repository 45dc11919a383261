//! LUKS interop with the real tools on plain files. A missing tool fails
//! the test (CI installs cryptsetup-bin and qemu-utils).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vigil_crypto::luks::volume::{argon2id_kdf, pbkdf2_kdf, LuksVersion};
use vigil_crypto::luks::{LuksError, LuksVolume};

fn tool(name: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .expect("sh");
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !p.is_empty(),
        "{name} is required for this test but is not installed"
    );
    p
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-luks-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_stdin(cmd: &mut Command, stdin: &[u8]) -> std::process::Output {
    let mut c = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    c.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The volume key as `cryptsetup luksDump --dump-volume-key` prints it.
fn cryptsetup_volume_key(img: &Path, pass: &[u8]) -> Vec<u8> {
    let out = run_stdin(
        Command::new(tool("cryptsetup"))
            .args([
                "luksDump",
                "--dump-volume-key",
                "--batch-mode",
                "--key-file",
                "-",
            ])
            .arg(img),
        pass,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut hexs = String::new();
    let mut on = false;
    for line in text.lines() {
        if line.starts_with("MK dump:") || line.starts_with("Volume key:") {
            on = true;
            hexs.push_str(line.split_once(':').unwrap().1);
        } else if on && line.starts_with('\t') {
            hexs.push_str(line);
        } else if on {
            break;
        }
    }
    hex::decode(hexs.split_whitespace().collect::<String>()).expect("key hex")
}

fn cryptsetup_format(img: &Path, pass: &[u8], extra: &[&str]) {
    let f = std::fs::File::create(img).unwrap();
    f.set_len(20 << 20).unwrap();
    run_stdin(
        Command::new(tool("cryptsetup"))
            .args(["luksFormat", "--batch-mode", "--type", "luks2"])
            .args(extra)
            .args(["--key-file", "-"])
            .arg(img),
        pass,
    );
}

#[test]
fn cryptsetup_luks2_pbkdf2_opens_with_same_volume_key() {
    let d = tmpdir("cs-pbkdf2");
    let img = d.join("a.img");
    cryptsetup_format(
        &img,
        b"correct horse",
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let vol = LuksVolume::open(&img, b"correct horse").unwrap();
    assert_eq!(vol.version(), LuksVersion::V2);
    assert_eq!(
        vol.volume_key(),
        cryptsetup_volume_key(&img, b"correct horse")
    );
    assert!(matches!(
        LuksVolume::open(&img, b"wrong").err().unwrap(),
        LuksError::WrongPassphrase
    ));
    // Round trip of data through the 4096-byte sector layout cryptsetup chose.
    let ss = vol.sector_size();
    let data: Vec<u8> = (0..ss * 3).map(|i| (i % 253) as u8).collect();
    vol.write_sectors(2, &data).unwrap();
    let mut back = vec![0u8; ss * 3];
    vol.read_sectors(2, &mut back).unwrap();
    assert_eq!(back, data);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn cryptsetup_luks2_argon2id_and_512_sectors() {
    let d = tmpdir("cs-argon");
    let img = d.join("a.img");
    cryptsetup_format(
        &img,
        b"pw",
        &[
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "32768",
            "--pbkdf-parallel",
            "1",
            "--sector-size",
            "512",
        ],
    );
    let vol = LuksVolume::open(&img, b"pw").unwrap();
    assert_eq!(vol.sector_size(), 512);
    assert_eq!(vol.volume_key(), cryptsetup_volume_key(&img, b"pw"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn vigil_luks2_passes_cryptsetup_dump_and_test_passphrase() {
    let d = tmpdir("vigil-l2");
    let img = d.join("v.img");
    let mut vol =
        LuksVolume::create_luks2(&img, 1 << 20, b"vigil pw", pbkdf2_kdf(1000).unwrap(), 512)
            .unwrap();
    let dump = Command::new(tool("cryptsetup"))
        .arg("luksDump")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(String::from_utf8_lossy(&dump.stdout).contains("aes-xts-plain64"));
    run_stdin(
        Command::new(tool("cryptsetup"))
            .args([
                "open",
                "--test-passphrase",
                "--batch-mode",
                "--key-file",
                "-",
            ])
            .arg(&img),
        b"vigil pw",
    );
    assert_eq!(vol.volume_key(), cryptsetup_volume_key(&img, b"vigil pw"));
    // add-key with argon2id, then remove the first key.
    vol.add_key(b"second", argon2id_kdf(1, 8192, 1).unwrap())
        .unwrap();
    run_stdin(
        Command::new(tool("cryptsetup"))
            .args([
                "open",
                "--test-passphrase",
                "--batch-mode",
                "--key-file",
                "-",
            ])
            .arg(&img),
        b"second",
    );
    vol.remove_key(b"vigil pw").unwrap();
    assert!(matches!(
        LuksVolume::open(&img, b"vigil pw").err().unwrap(),
        LuksError::WrongPassphrase
    ));
    assert!(LuksVolume::open(&img, b"second").is_ok());
    let _ = std::fs::remove_dir_all(d);
}

fn qemu_secret_args(pass: &str) -> Vec<String> {
    vec!["--object".into(), format!("secret,id=sec0,data={pass}")]
}

#[test]
fn qemu_img_luks1_reads_back_and_vigil_writes_decrypt_in_qemu() {
    let qemu = tool("qemu-img");
    let d = tmpdir("qemu");
    let raw = d.join("plain.raw");
    let plain: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&raw, &plain).unwrap();
    let img = d.join("l1.luks");
    let st = Command::new(&qemu)
        .arg("convert")
        .args(qemu_secret_args("qpass"))
        .args([
            "-f",
            "raw",
            "-O",
            "luks",
            "-o",
            "key-secret=sec0,iter-time=10",
        ])
        .arg(&raw)
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let vol = LuksVolume::open(&img, b"qpass").unwrap();
    assert_eq!(vol.version(), LuksVersion::V1);
    let mut back = vec![0u8; plain.len()];
    vol.read_sectors(0, &mut back).unwrap();
    assert!(
        back == plain,
        "LUKS1 payload differs from what qemu-img wrote"
    );

    // vigil writes; qemu-img decrypts to raw.
    let mine: Vec<u8> = (0..64 * 512).map(|i| (i % 199) as u8 ^ 0x5a).collect();
    vol.write_sectors(100, &mine).unwrap();
    vol.flush().unwrap();
    let out = d.join("out.raw");
    let st = Command::new(&qemu)
        .arg("convert")
        .args(qemu_secret_args("qpass"))
        .arg("--image-opts")
        .arg(format!(
            "driver=luks,key-secret=sec0,file.filename={}",
            img.display()
        ))
        .args(["-O", "raw"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let dec = std::fs::read(&out).unwrap();
    let mut want = plain.clone();
    want[100 * 512..100 * 512 + mine.len()].copy_from_slice(&mine);
    assert!(dec == want, "qemu-img sees different data than vigil wrote");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn vigil_luks1_opens_in_cryptsetup_and_qemu() {
    let qemu = tool("qemu-img");
    let d = tmpdir("vigil-l1");
    let img = d.join("v1.luks");
    let vol =
        vigil_crypto::luks::LuksVolume::create_luks1(&img, 256 * 1024, b"l1pass", 1000).unwrap();
    assert_eq!(vol.version(), LuksVersion::V1);
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 241) as u8).collect();
    vol.write_sectors(0, &data).unwrap();
    vol.flush().unwrap();
    let dump = Command::new(tool("cryptsetup"))
        .arg("luksDump")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    run_stdin(
        Command::new(tool("cryptsetup"))
            .args([
                "open",
                "--test-passphrase",
                "--batch-mode",
                "--key-file",
                "-",
            ])
            .arg(&img),
        b"l1pass",
    );
    assert_eq!(vol.volume_key(), cryptsetup_volume_key(&img, b"l1pass"));
    let out = d.join("out.raw");
    let st = Command::new(&qemu)
        .arg("convert")
        .args(qemu_secret_args("l1pass"))
        .arg("--image-opts")
        .arg(format!(
            "driver=luks,key-secret=sec0,file.filename={}",
            img.display()
        ))
        .args(["-O", "raw"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(
        std::fs::read(&out).unwrap() == data,
        "qemu-img decrypts vigil's LUKS1 differently"
    );
    let _ = std::fs::remove_dir_all(d);
}
