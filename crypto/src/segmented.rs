//! Segmented keys: crypto-erase by segment (seed 000's per-segment key
//! table for encrypted swap).
//!
//! The layout lives inside an unlocked LUKS container's payload:
//!
//! ```text
//! payload offset 0       header block, 4096 bytes, written through the
//!                        volume's xts(aes) like any sector:
//!                          0  magic "VGSEGKT1"
//!                          8  version u32 LE (1)
//!                         12  reserved u32
//!                         16  segment_size u64 LE (multiple of 4096)
//!                         24  segment_count u64 LE
//!                         32  table_offset u64 LE (4096)
//!                         40  data_offset u64 LE (table end, 4096-aligned)
//! table_offset           segment_count entries of 128 bytes, also through
//!                        the volume cipher. Entry i:
//!                          0  nonce[12] (random per write)
//!                         12  AES-256-GCM ciphertext of 76 bytes:
//!                               key[64] (xts(aes) key of segment i)
//!                               generation u64 LE (bumped on discard)
//!                               flags u32 LE (bit 0: unwritten, reads as zeros)
//!                         88  tag[16]
//!                        104  zero padding to 128
//!                        GCM key = HMAC-SHA256(volume key,
//!                        "vigil segmented key table v1"); AAD = "VGSEG" ||
//!                        i u64 LE, so entries cannot be swapped.
//! data_offset            segment i at data_offset + i*segment_size, its
//!                        4096-byte sectors encrypted with the segment's own
//!                        key only (aes-xts-plain64, IV = byte offset within
//!                        the segment / 512), not with the volume key too.
//! ```
//!
//! Discarding segment i writes a fresh random key with the next generation
//! over entry i. The old key existed only in that entry, so the segment's
//! old ciphertext is undecryptable even with the passphrase, while every
//! other segment is untouched.

use crate::algorithms::AeadProvider;
use crate::algorithms::{Aead, Skcipher};
use crate::luks::{xts, xts_sectors, LuksError, LuksResult, LuksVolume};
use crate::software::aead::GcmAesProvider;
use hmac::{Hmac, Mac};

pub const MAGIC: &[u8; 8] = b"VGSEGKT1";
pub const ENTRY_LEN: usize = 128;
pub const SECTOR: usize = 4096;
const PLAIN_LEN: usize = 76;
const FLAG_UNWRITTEN: u32 = 1;

struct Entry {
    key: Vec<u8>,
    generation: u64,
    flags: u32,
    cipher: Box<dyn Skcipher>,
}

pub struct SegmentedVolume {
    vol: LuksVolume,
    kek: Box<dyn Aead>,
    segment_size: u64,
    data_offset: u64,
    table_offset: u64,
    entries: Vec<Entry>,
}

fn corrupt(s: &str) -> LuksError {
    LuksError::CorruptHeader(format!("segmented layout: {s}"))
}

fn kek(vol: &LuksVolume) -> LuksResult<Box<dyn Aead>> {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(vol.volume_key())
        .map_err(|_| corrupt("volume key"))?;
    m.update(b"vigil segmented key table v1");
    let k = m.finalize().into_bytes();
    Ok(GcmAesProvider.setkey(&k)?)
}

fn aad(i: u64) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..5].copy_from_slice(b"VGSEG");
    a[5..].copy_from_slice(&i.to_le_bytes());
    a
}

impl SegmentedVolume {
    /// Lays a fresh segmented layout over `vol` (destroys its contents).
    pub fn format(vol: LuksVolume, segment_size: u64) -> LuksResult<Self> {
        if segment_size == 0 || !segment_size.is_multiple_of(SECTOR as u64) {
            return Err(corrupt("segment size must be a multiple of 4096"));
        }
        let total = vol.payload_bytes();
        // Table entries for every segment that could fit after header+table.
        let mut count = total / segment_size;
        let data_offset = loop {
            let d =
                (SECTOR as u64 + count * ENTRY_LEN as u64).div_ceil(SECTOR as u64) * SECTOR as u64;
            if count == 0 || d + count * segment_size <= total {
                break d;
            }
            count -= 1;
        };
        if count == 0 {
            return Err(corrupt("volume too small for one segment"));
        }
        let mut hdr = vec![0u8; SECTOR];
        hdr[0..8].copy_from_slice(MAGIC);
        hdr[8..12].copy_from_slice(&1u32.to_le_bytes());
        hdr[16..24].copy_from_slice(&segment_size.to_le_bytes());
        hdr[24..32].copy_from_slice(&count.to_le_bytes());
        hdr[32..40].copy_from_slice(&(SECTOR as u64).to_le_bytes());
        hdr[40..48].copy_from_slice(&data_offset.to_le_bytes());
        write_payload(&vol, 0, &hdr)?;
        let mut s = SegmentedVolume {
            kek: kek(&vol)?,
            vol,
            segment_size,
            data_offset,
            table_offset: SECTOR as u64,
            entries: Vec::new(),
        };
        for i in 0..count {
            let e = new_entry(0)?;
            s.write_entry(i, &e)?;
            s.entries.push(e);
        }
        Ok(s)
    }

    /// Opens the layout on an unlocked volume.
    pub fn open(vol: LuksVolume) -> LuksResult<Self> {
        let mut hdr = vec![0u8; SECTOR];
        read_payload(&vol, 0, &mut hdr)?;
        if &hdr[0..8] != MAGIC {
            return Err(corrupt("no segmented header"));
        }
        let le = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&hdr[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let (segment_size, count, table_offset, data_offset) = (le(16), le(24), le(32), le(40));
        let table_end = count
            .checked_mul(ENTRY_LEN as u64)
            .and_then(|t| t.checked_add(table_offset))
            .ok_or_else(|| corrupt("table size"))?;
        let data_end = count
            .checked_mul(segment_size)
            .and_then(|d| d.checked_add(data_offset))
            .ok_or_else(|| corrupt("data size"))?;
        if segment_size == 0
            || !segment_size.is_multiple_of(SECTOR as u64)
            || !table_offset.is_multiple_of(SECTOR as u64)
            || !data_offset.is_multiple_of(SECTOR as u64)
            || table_end > data_offset
            || data_end > vol.payload_bytes()
        {
            return Err(corrupt("geometry"));
        }
        let mut s = SegmentedVolume {
            kek: kek(&vol)?,
            vol,
            segment_size,
            data_offset,
            table_offset,
            entries: Vec::new(),
        };
        let table_len = (table_end - table_offset).div_ceil(SECTOR as u64) * SECTOR as u64;
        let mut table = vec![0u8; table_len as usize];
        read_payload(&s.vol, table_offset, &mut table)?;
        for i in 0..count {
            let o = (i as usize) * ENTRY_LEN;
            let raw = &table[o..o + ENTRY_LEN];
            let mut plain = raw[12..12 + PLAIN_LEN].to_vec();
            s.kek
                .open(&raw[..12], &aad(i), &mut plain, &raw[88..104])
                .map_err(|_| corrupt("key table entry fails authentication"))?;
            let key = plain[..64].to_vec();
            let mut g = [0u8; 8];
            g.copy_from_slice(&plain[64..72]);
            let mut f = [0u8; 4];
            f.copy_from_slice(&plain[72..76]);
            s.entries.push(Entry {
                cipher: xts(&key)?,
                key,
                generation: u64::from_le_bytes(g),
                flags: u32::from_le_bytes(f),
            });
        }
        Ok(s)
    }

    pub fn segment_size(&self) -> u64 {
        self.segment_size
    }
    pub fn segments(&self) -> u64 {
        self.entries.len() as u64
    }
    pub fn generation(&self, seg: u64) -> Option<u64> {
        self.entries.get(seg as usize).map(|e| e.generation)
    }
    /// Current key of a segment (diagnostics and crypto-erase tests).
    pub fn segment_key(&self, seg: u64) -> Option<&[u8]> {
        self.entries.get(seg as usize).map(|e| e.key.as_slice())
    }
    /// Byte offset of segment data within the LUKS payload.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }
    pub fn into_volume(self) -> LuksVolume {
        self.vol
    }

    fn write_entry(&self, i: u64, e: &Entry) -> LuksResult<()> {
        let mut plain = Vec::with_capacity(PLAIN_LEN);
        plain.extend_from_slice(&e.key);
        plain.extend_from_slice(&e.generation.to_le_bytes());
        plain.extend_from_slice(&e.flags.to_le_bytes());
        let mut nonce = [0u8; 12];
        crate::luks::random(&mut nonce)?;
        let mut tag = [0u8; 16];
        self.kek.seal(&nonce, &aad(i), &mut plain, &mut tag)?;
        // Entries share 4096-byte sectors: read-modify-write the sector.
        let pos = self.table_offset + i * ENTRY_LEN as u64;
        let sec = pos / SECTOR as u64 * SECTOR as u64;
        let mut buf = vec![0u8; SECTOR];
        read_payload(&self.vol, sec, &mut buf)?;
        let o = (pos - sec) as usize;
        buf[o..o + ENTRY_LEN].fill(0);
        buf[o..o + 12].copy_from_slice(&nonce);
        buf[o + 12..o + 88].copy_from_slice(&plain);
        buf[o + 88..o + 104].copy_from_slice(&tag);
        write_payload(&self.vol, sec, &buf)
    }

    /// (segment index, byte offset in segment) of device byte `off`, checked.
    fn locate(&self, off: u64, len: usize) -> LuksResult<(u64, u64)> {
        if !off.is_multiple_of(SECTOR as u64) || !len.is_multiple_of(SECTOR) {
            return Err(LuksError::OutOfRange(off / 512));
        }
        let seg = off / self.segment_size;
        let within = off % self.segment_size;
        if seg >= self.segments() || within + len as u64 > self.segment_size {
            return Err(LuksError::OutOfRange(off / 512));
        }
        Ok((seg, within))
    }

    /// Reads `buf.len()` bytes at device offset `off` (4096-aligned, within one segment).
    pub fn read(&self, off: u64, buf: &mut [u8]) -> LuksResult<()> {
        let (seg, within) = self.locate(off, buf.len())?;
        let e = &self.entries[seg as usize];
        if e.flags & FLAG_UNWRITTEN != 0 {
            buf.fill(0);
            return Ok(());
        }
        self.vol
            .read_raw(self.data_offset + seg * self.segment_size + within, buf)?;
        xts_sectors(e.cipher.as_ref(), buf, SECTOR, within / 512, false)?;
        Ok(())
    }

    pub fn write(&mut self, off: u64, data: &[u8]) -> LuksResult<()> {
        let (seg, within) = self.locate(off, data.len())?;
        if self.entries[seg as usize].flags & FLAG_UNWRITTEN != 0 {
            // First write after discard: the rest of the segment must read as
            // zeros, so materialise it before clearing the flag.
            let zeros = vec![0u8; self.segment_size as usize];
            let mut enc = zeros;
            let e = &self.entries[seg as usize];
            xts_sectors(e.cipher.as_ref(), &mut enc, SECTOR, 0, true)?;
            self.vol
                .write_raw(self.data_offset + seg * self.segment_size, &enc)?;
            let mut e = new_entry_from(&self.entries[seg as usize])?;
            e.flags &= !FLAG_UNWRITTEN;
            self.write_entry(seg, &e)?;
            self.entries[seg as usize] = e;
        }
        let mut buf = data.to_vec();
        let e = &self.entries[seg as usize];
        xts_sectors(e.cipher.as_ref(), &mut buf, SECTOR, within / 512, true)?;
        self.vol
            .write_raw(self.data_offset + seg * self.segment_size + within, &buf)
    }

    /// Crypto-erases segment `seg`: a new key replaces the old in the table.
    pub fn discard(&mut self, seg: u64) -> LuksResult<()> {
        let old = self
            .entries
            .get(seg as usize)
            .ok_or(LuksError::OutOfRange(seg))?;
        let e = new_entry(old.generation + 1)?;
        self.write_entry(seg, &e)?;
        self.vol.flush()?;
        self.entries[seg as usize] = e;
        Ok(())
    }
}

fn new_entry(generation: u64) -> LuksResult<Entry> {
    let mut key = vec![0u8; 64];
    crate::luks::random(&mut key)?;
    Ok(Entry {
        cipher: xts(&key)?,
        key,
        generation,
        flags: FLAG_UNWRITTEN,
    })
}

fn new_entry_from(e: &Entry) -> LuksResult<Entry> {
    Ok(Entry {
        cipher: xts(&e.key)?,
        key: e.key.clone(),
        generation: e.generation,
        flags: e.flags,
    })
}

fn read_payload(vol: &LuksVolume, off: u64, buf: &mut [u8]) -> LuksResult<()> {
    let ss = vol.sector_size() as u64;
    if !off.is_multiple_of(ss) {
        return Err(corrupt("unaligned payload read"));
    }
    vol.read_sectors(off / ss, buf)
}

fn write_payload(vol: &LuksVolume, off: u64, buf: &[u8]) -> LuksResult<()> {
    let ss = vol.sector_size() as u64;
    if !off.is_multiple_of(ss) {
        return Err(corrupt("unaligned payload write"));
    }
    vol.write_sectors(off / ss, buf)
}
