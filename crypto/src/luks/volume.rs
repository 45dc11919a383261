//! An unlocked LUKS volume on a plain file: the sector API virtio-blk uses.
//! Sectors are `sector_size` bytes (512 for LUKS1, 512..4096 for LUKS2);
//! aes-xts-plain64 IVs count 512-byte units from the segment start plus
//! `iv_tweak`, as dm-crypt does without `iv_large_sectors`.

use super::keyslot::Kdf;
use super::luks1::Luks1Header;
use super::luks2::{self, Luks2Header};
use super::{xts, xts_sectors, HashSpec, LuksError, LuksResult};
use crate::algorithms::Skcipher;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LuksVersion {
    V1,
    V2,
}

pub struct LuksVolume {
    file: File,
    version: LuksVersion,
    volume_key: Vec<u8>,
    data_offset: u64,
    data_len: u64,
    sector_size: usize,
    iv_tweak: u64,
    cipher: Box<dyn Skcipher>,
    luks2: Option<Luks2Header>,
    pub keyslot: String,
}

/// Passphrase bytes from a key file (used verbatim, as cryptsetup --key-file).
pub fn read_key_file(path: &Path) -> LuksResult<Vec<u8>> {
    Ok(std::fs::read(path)?)
}

fn reader(file: &File) -> impl Fn(u64, &mut [u8]) -> std::io::Result<()> + '_ {
    move |off, buf| file.read_exact_at(buf, off)
}

pub fn detect_version(file: &File) -> LuksResult<LuksVersion> {
    let mut b = [0u8; 8];
    file.read_exact_at(&mut b, 0)
        .map_err(|_| LuksError::TruncatedHeader("shorter than the magic".into()))?;
    if &b[0..6] != luks2::MAGIC1 {
        return Err(LuksError::NotLuks);
    }
    match u16::from_be_bytes([b[6], b[7]]) {
        1 => Ok(LuksVersion::V1),
        2 => Ok(LuksVersion::V2),
        v => Err(LuksError::CorruptHeader(format!("version {v}"))),
    }
}

impl LuksVolume {
    /// Opens and unlocks `path` with `pass` (LUKS1 or LUKS2, auto-detected).
    pub fn open(path: &Path, pass: &[u8]) -> LuksResult<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        let version = detect_version(&file)?;
        let read = reader(&file);
        let (vk, data_offset, sector_size, iv_tweak, size, l2, slot) = match version {
            LuksVersion::V1 => {
                let mut b = vec![0u8; super::luks1::HEADER_LEN];
                file.read_exact_at(&mut b, 0)
                    .map_err(|_| LuksError::TruncatedHeader("LUKS1 header".into()))?;
                let h = Luks1Header::parse(&b)?;
                let vk = h.unlock(pass, &read)?;
                (
                    vk,
                    h.payload_offset as u64 * 512,
                    512,
                    0,
                    None,
                    None,
                    String::new(),
                )
            }
            LuksVersion::V2 => {
                let h = Luks2Header::read(&read, len)?;
                let (slot, vk) = h.unlock(pass, &read)?;
                let s = h.segment.clone();
                (
                    vk,
                    s.offset,
                    s.sector_size,
                    s.iv_tweak,
                    s.size,
                    Some(h),
                    slot,
                )
            }
        };
        let data_len = match size {
            Some(s) => s,
            None => len.saturating_sub(data_offset),
        };
        if data_offset > len {
            return Err(LuksError::TruncatedHeader(
                "data offset beyond end of file".into(),
            ));
        }
        let cipher = xts(&vk)?;
        drop(read);
        Ok(LuksVolume {
            file,
            version,
            volume_key: vk,
            data_offset,
            data_len: data_len / sector_size as u64 * sector_size as u64,
            sector_size,
            iv_tweak,
            cipher,
            luks2: l2,
            keyslot: slot,
        })
    }

    /// Creates a LUKS2 container of `data_bytes` payload on a new file.
    pub fn create_luks2(
        path: &Path,
        data_bytes: u64,
        pass: &[u8],
        kdf: Kdf,
        sector_size: usize,
    ) -> LuksResult<Self> {
        let mut vk = vec![0u8; 64];
        super::random(&mut vk)?;
        let mut h = Luks2Header::new(&vk, sector_size, 1000)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        file.set_len(luks2::DATA_OFFSET + data_bytes)?;
        let (_, off, material) = h.add_keyslot(&vk, pass, kdf)?;
        file.write_all_at(&material, off)?;
        write_luks2_headers(&file, &h)?;
        drop(file);
        Self::open(path, pass)
    }

    /// Creates a LUKS1 container (what QEMU reads): aes-xts-plain64 with a
    /// 512-bit key, sha256, pbkdf2 `iterations` for keyslot 0, keyslot
    /// material 4 KiB aligned, payload at 2 MiB, as cryptsetup lays it out.
    pub fn create_luks1(
        path: &Path,
        data_bytes: u64,
        pass: &[u8],
        iterations: u32,
    ) -> LuksResult<Self> {
        use super::luks1::Slot;
        const STRIPES: u32 = 4000;
        const KEY: usize = 64;
        const PAYLOAD_SECTORS: u32 = 4096;
        let mut vk = vec![0u8; KEY];
        super::random(&mut vk)?;
        let mut mk_salt = [0u8; 32];
        super::random(&mut mk_salt)?;
        let mk_iterations = 1000;
        let mut mk_digest = [0u8; 20];
        HashSpec::Sha256.pbkdf2(&vk, &mk_salt, mk_iterations, &mut mk_digest);
        let material_sectors = ((KEY * STRIPES as usize).div_ceil(512) as u32).div_ceil(8) * 8;
        let mut slots = Vec::new();
        for i in 0..8u32 {
            slots.push(Slot {
                active: false,
                iterations: 0,
                salt: [0u8; 32],
                material_offset: 8 + i * material_sectors,
                stripes: STRIPES,
            });
        }
        let mut salt = [0u8; 32];
        super::random(&mut salt)?;
        slots[0].active = true;
        slots[0].iterations = iterations.max(1);
        slots[0].salt = salt;
        let kdf = Kdf::Pbkdf2 {
            hash: HashSpec::Sha256,
            iterations: slots[0].iterations,
            salt: salt.to_vec(),
        };
        let slot_key = kdf.derive(pass, KEY)?;
        let material =
            super::keyslot::lock_material(&vk, &slot_key, STRIPES as usize, HashSpec::Sha256)?;
        let mut u = [0u8; 16];
        super::random(&mut u)?;
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        let hx = hex::encode(u);
        let h = Luks1Header {
            cipher_name: "aes".into(),
            cipher_mode: "xts-plain64".into(),
            hash: HashSpec::Sha256,
            payload_offset: PAYLOAD_SECTORS,
            key_bytes: KEY as u32,
            mk_digest,
            mk_salt,
            mk_iterations,
            uuid: format!(
                "{}-{}-{}-{}-{}",
                &hx[0..8],
                &hx[8..12],
                &hx[12..16],
                &hx[16..20],
                &hx[20..32]
            ),
            slots,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        file.set_len(PAYLOAD_SECTORS as u64 * 512 + data_bytes)?;
        file.write_all_at(&material, h.slots[0].material_offset as u64 * 512)?;
        file.write_all_at(&h.serialize(), 0)?;
        file.sync_data()?;
        drop(file);
        Self::open(path, pass)
    }

    pub fn version(&self) -> LuksVersion {
        self.version
    }
    pub fn volume_key(&self) -> &[u8] {
        &self.volume_key
    }
    pub fn sector_size(&self) -> usize {
        self.sector_size
    }
    pub fn sectors(&self) -> u64 {
        self.data_len / self.sector_size as u64
    }
    pub fn header(&self) -> Option<&Luks2Header> {
        self.luks2.as_ref()
    }

    fn range(&self, sector: u64, len: usize) -> LuksResult<u64> {
        if !len.is_multiple_of(self.sector_size) {
            return Err(LuksError::Crypto(crate::CryptoError::InvalidLength {
                alg: "luks",
                len,
                why: "not a whole number of sectors",
            }));
        }
        let end = sector
            .checked_add((len / self.sector_size) as u64)
            .ok_or(LuksError::OutOfRange(sector))?;
        if end > self.sectors() {
            return Err(LuksError::OutOfRange(sector));
        }
        Ok(sector * self.sector_size as u64)
    }

    fn iv_base(&self, byte_off: u64) -> u64 {
        self.iv_tweak + byte_off / 512
    }

    /// Reads and decrypts whole sectors starting at `sector`.
    pub fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> LuksResult<()> {
        let off = self.range(sector, buf.len())?;
        self.file.read_exact_at(buf, self.data_offset + off)?;
        xts_sectors(
            self.cipher.as_ref(),
            buf,
            self.sector_size,
            self.iv_base(off),
            false,
        )?;
        Ok(())
    }

    /// Encrypts and writes whole sectors starting at `sector`.
    pub fn write_sectors(&self, sector: u64, data: &[u8]) -> LuksResult<()> {
        let off = self.range(sector, data.len())?;
        let mut buf = data.to_vec();
        xts_sectors(
            self.cipher.as_ref(),
            &mut buf,
            self.sector_size,
            self.iv_base(off),
            true,
        )?;
        self.file.write_all_at(&buf, self.data_offset + off)?;
        Ok(())
    }

    /// Payload bytes stored without the volume cipher (callers such as the
    /// segmented layout encrypt with their own keys).
    pub(crate) fn read_raw(&self, off: u64, buf: &mut [u8]) -> LuksResult<()> {
        self.check_raw(off, buf.len())?;
        self.file.read_exact_at(buf, self.data_offset + off)?;
        Ok(())
    }

    pub(crate) fn write_raw(&self, off: u64, buf: &[u8]) -> LuksResult<()> {
        self.check_raw(off, buf.len())?;
        self.file.write_all_at(buf, self.data_offset + off)?;
        Ok(())
    }

    fn check_raw(&self, off: u64, len: usize) -> LuksResult<()> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.data_len => Ok(()),
            _ => Err(LuksError::OutOfRange(off / 512)),
        }
    }

    pub fn payload_bytes(&self) -> u64 {
        self.data_len
    }

    pub fn flush(&self) -> LuksResult<()> {
        self.file.sync_data()?;
        Ok(())
    }

    /// Adds a LUKS2 keyslot for `new_pass`; returns its id.
    pub fn add_key(&mut self, new_pass: &[u8], kdf: Kdf) -> LuksResult<String> {
        let h = self
            .luks2
            .as_mut()
            .ok_or_else(|| LuksError::UnsupportedCipher("add-key on LUKS1".into()))?;
        let (id, off, material) = h.add_keyslot(&self.volume_key, new_pass, kdf)?;
        self.file.write_all_at(&material, off)?;
        write_luks2_headers(&self.file, h)?;
        Ok(id)
    }

    /// Removes the LUKS2 keyslot `pass` opens, wiping its area.
    pub fn remove_key(&mut self, pass: &[u8]) -> LuksResult<String> {
        let h = self
            .luks2
            .as_mut()
            .ok_or_else(|| LuksError::UnsupportedCipher("remove-key on LUKS1".into()))?;
        let read = reader(&self.file);
        let (id, _) = h.unlock(pass, &read)?;
        let (off, size) = h.remove_keyslot(&id)?;
        self.file.write_all_at(&vec![0u8; size as usize], off)?;
        write_luks2_headers(&self.file, h)?;
        Ok(id)
    }
}

fn write_luks2_headers(file: &File, h: &Luks2Header) -> LuksResult<()> {
    file.write_all_at(&h.serialize_copy(false)?, 0)?;
    file.write_all_at(&h.serialize_copy(true)?, h.hdr_size)?;
    file.sync_data()?;
    Ok(())
}

/// Default KDFs: pbkdf2-sha256 with `iterations`, or argon2id.
pub fn pbkdf2_kdf(iterations: u32) -> LuksResult<Kdf> {
    let mut salt = vec![0u8; 32];
    super::random(&mut salt)?;
    Ok(Kdf::Pbkdf2 {
        hash: HashSpec::Sha256,
        iterations,
        salt,
    })
}

pub fn argon2id_kdf(time: u32, memory_kib: u32, cpus: u32) -> LuksResult<Kdf> {
    let mut salt = vec![0u8; 32];
    super::random(&mut salt)?;
    Ok(Kdf::Argon2id {
        time,
        memory_kib,
        cpus,
        salt,
    })
}
