//! LUKS2 (on-disk format spec 1.1.x): two binary headers, each followed by
//! its JSON area and covered by a checksum; keyslots, segments and digests
//! live in the JSON. Both copies are verified; the valid one with the
//! highest seqid wins, and writes update both.

use super::keyslot::{self, Kdf};
use super::{check_cipher, HashSpec, LuksError, LuksResult};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

pub const MAGIC1: &[u8; 6] = b"LUKS\xba\xbe";
pub const MAGIC2: &[u8; 6] = b"SKUL\xba\xbe";
pub const BIN_LEN: usize = 4096;
/// Default metadata size per copy (binary + JSON), as cryptsetup.
pub const HDR_SIZE: u64 = 16384;
pub const DATA_OFFSET: u64 = 16 * 1024 * 1024;
const CSUM_OFF: usize = 448;
/// Valid LUKS2 header sizes (spec 1.1: 16 KiB .. 4 MiB).
const HDR_SIZES: &[u64] = &[
    16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304,
];

#[derive(Debug, Clone)]
pub struct Keyslot {
    pub id: String,
    pub key_size: usize,
    pub stripes: usize,
    pub af_hash: HashSpec,
    pub area_offset: u64,
    pub area_size: u64,
    pub area_key_size: usize,
    pub kdf: Kdf,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub offset: u64,
    /// None = "dynamic" (to the end of the file).
    pub size: Option<u64>,
    pub iv_tweak: u64,
    pub sector_size: usize,
}

#[derive(Debug, Clone)]
pub struct Luks2Header {
    pub hdr_size: u64,
    pub seqid: u64,
    pub uuid: String,
    pub label: String,
    pub json: Value,
    pub keyslots: Vec<Keyslot>,
    pub segment: Segment,
}

fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn corrupt(s: impl Into<String>) -> LuksError {
    LuksError::CorruptHeader(s.into())
}

fn num_str(v: &Value, what: &str) -> LuksResult<u64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(format!("{what} is not a decimal string")))
}

fn num(v: &Value, what: &str) -> LuksResult<u64> {
    v.as_u64()
        .ok_or_else(|| corrupt(format!("{what} is not a number")))
}

fn b64(v: &Value, what: &str) -> LuksResult<Vec<u8>> {
    v.as_str()
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| corrupt(format!("{what} is not base64")))
}

fn parse_kdf(k: &Value) -> LuksResult<Kdf> {
    match k["type"].as_str() {
        Some("pbkdf2") => Ok(Kdf::Pbkdf2 {
            hash: HashSpec::parse(k["hash"].as_str().unwrap_or(""))?,
            iterations: u32::try_from(num(&k["iterations"], "iterations")?)
                .map_err(|_| corrupt("iterations"))?,
            salt: b64(&k["salt"], "kdf salt")?,
        }),
        Some("argon2id") => Ok(Kdf::Argon2id {
            time: u32::try_from(num(&k["time"], "time")?).map_err(|_| corrupt("time"))?,
            memory_kib: u32::try_from(num(&k["memory"], "memory")?)
                .map_err(|_| corrupt("memory"))?,
            cpus: u32::try_from(num(&k["cpus"], "cpus")?).map_err(|_| corrupt("cpus"))?,
            salt: b64(&k["salt"], "kdf salt")?,
        }),
        other => Err(LuksError::UnsupportedCipher(format!("kdf {other:?}"))),
    }
}

fn kdf_json(k: &Kdf) -> Value {
    match k {
        Kdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => {
            json!({"type": "pbkdf2", "hash": hash.name(), "iterations": iterations, "salt": B64.encode(salt)})
        }
        Kdf::Argon2id {
            time,
            memory_kib,
            cpus,
            salt,
        } => {
            json!({"type": "argon2id", "time": time, "memory": memory_kib, "cpus": cpus, "salt": B64.encode(salt)})
        }
    }
}

impl Luks2Header {
    /// Verifies one copy: binary header at `bin[..4096]`, JSON after it.
    fn parse_copy(area: &[u8], expect_magic: &[u8; 6]) -> LuksResult<Self> {
        if area.len() < BIN_LEN {
            return Err(LuksError::TruncatedHeader("binary header".into()));
        }
        if &area[0..6] != expect_magic {
            return Err(LuksError::NotLuks);
        }
        let version = u16::from_be_bytes([area[6], area[7]]);
        if version != 2 {
            return Err(corrupt(format!("version {version}")));
        }
        let hdr_size = be64(area, 8);
        if !HDR_SIZES.contains(&hdr_size) {
            return Err(corrupt(format!("hdr_size {hdr_size}")));
        }
        if (area.len() as u64) < hdr_size {
            return Err(LuksError::TruncatedHeader(format!(
                "header of {hdr_size} bytes, file has {}",
                area.len()
            )));
        }
        let hdr = &area[..hdr_size as usize];
        let alg = cstr(&hdr[72..104]);
        let hash = HashSpec::parse(&alg).map_err(|_| corrupt(format!("checksum alg {alg}")))?;
        let mut copy = hdr.to_vec();
        copy[CSUM_OFF..CSUM_OFF + 64].fill(0);
        let sum = hash.digest(&[&copy]);
        if sum[..] != hdr[CSUM_OFF..CSUM_OFF + sum.len()] {
            return Err(corrupt("checksum mismatch"));
        }
        let json_bytes = &hdr[BIN_LEN..];
        let end = json_bytes
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(json_bytes.len());
        let json: Value = serde_json::from_slice(&json_bytes[..end])
            .map_err(|e| corrupt(format!("JSON: {e}")))?;
        let mut h = Luks2Header {
            hdr_size,
            seqid: be64(hdr, 16),
            label: cstr(&hdr[24..72]),
            uuid: cstr(&hdr[168..208]),
            keyslots: Vec::new(),
            segment: Segment {
                offset: 0,
                size: None,
                iv_tweak: 0,
                sector_size: 512,
            },
            json,
        };
        h.interpret()?;
        Ok(h)
    }

    /// Extracts keyslots and segment 0 from the JSON, checking every field.
    fn interpret(&mut self) -> LuksResult<()> {
        let j = &self.json;
        let seg = j["segments"]["0"]
            .as_object()
            .ok_or_else(|| corrupt("no segment 0"))?;
        if seg.get("type").and_then(Value::as_str) != Some("crypt") {
            return Err(LuksError::UnsupportedCipher("segment type".into()));
        }
        let enc = seg.get("encryption").and_then(Value::as_str).unwrap_or("");
        let (c, m) = enc.split_once('-').unwrap_or((enc, ""));
        check_cipher(c, m)?;
        let sector_size = num(&j["segments"]["0"]["sector_size"], "sector_size")? as usize;
        if ![512, 1024, 2048, 4096].contains(&sector_size) {
            return Err(corrupt(format!("sector_size {sector_size}")));
        }
        let size = match seg.get("size").and_then(Value::as_str) {
            Some("dynamic") => None,
            _ => Some(num_str(&j["segments"]["0"]["size"], "segment size")?),
        };
        self.segment = Segment {
            offset: num_str(&j["segments"]["0"]["offset"], "segment offset")?,
            size,
            iv_tweak: num_str(&j["segments"]["0"]["iv_tweak"], "iv_tweak")?,
            sector_size,
        };
        let mut slots = Vec::new();
        if let Some(ks) = j["keyslots"].as_object() {
            for (id, k) in ks {
                if k["type"].as_str() != Some("luks2") {
                    continue;
                }
                let area_enc = k["area"]["encryption"].as_str().unwrap_or("");
                let (c, m) = area_enc.split_once('-').unwrap_or((area_enc, ""));
                check_cipher(c, m)?;
                if k["af"]["type"].as_str() != Some("luks1") {
                    return Err(LuksError::UnsupportedCipher("af type".into()));
                }
                let stripes = num(&k["af"]["stripes"], "stripes")? as usize;
                let key_size = num(&k["key_size"], "key_size")? as usize;
                if stripes == 0 || stripes > 65536 || key_size == 0 || key_size > 512 {
                    return Err(corrupt("keyslot sizes"));
                }
                let area_key_size = num(&k["area"]["key_size"], "area key_size")? as usize;
                if area_key_size != 32 && area_key_size != 64 {
                    return Err(LuksError::UnsupportedCipher(format!(
                        "keyslot area key of {area_key_size} bytes"
                    )));
                }
                slots.push(Keyslot {
                    id: id.clone(),
                    key_size,
                    stripes,
                    af_hash: HashSpec::parse(k["af"]["hash"].as_str().unwrap_or(""))?,
                    area_offset: num_str(&k["area"]["offset"], "area offset")?,
                    area_size: num_str(&k["area"]["size"], "area size")?,
                    area_key_size,
                    kdf: parse_kdf(&k["kdf"])?,
                });
            }
        }
        self.keyslots = slots;
        Ok(())
    }

    /// Reads both copies; the valid one with the highest seqid wins.
    pub fn read(
        read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
        file_len: u64,
    ) -> LuksResult<Self> {
        let load = |off: u64, magic: &[u8; 6]| -> LuksResult<Self> {
            if file_len < off + BIN_LEN as u64 {
                return Err(LuksError::TruncatedHeader(format!("no header at {off}")));
            }
            let mut bin = vec![0u8; BIN_LEN];
            read_at(off, &mut bin)?;
            if &bin[0..6] != magic {
                return Err(LuksError::NotLuks);
            }
            let hs = be64(&bin, 8);
            if !HDR_SIZES.contains(&hs) {
                return Err(corrupt(format!("hdr_size {hs}")));
            }
            if file_len < off + hs {
                return Err(LuksError::TruncatedHeader(format!(
                    "header of {hs} bytes at {off}"
                )));
            }
            let mut all = vec![0u8; hs as usize];
            read_at(off, &mut all)?;
            Self::parse_copy(&all, magic)
        };
        let primary = load(0, MAGIC1);
        if let Err(LuksError::NotLuks) = primary {
            return Err(LuksError::NotLuks);
        }
        let sec_off = match &primary {
            Ok(p) => p.hdr_size,
            Err(_) => HDR_SIZE,
        };
        // If the primary is damaged, probe the spec's secondary offsets.
        let secondary = std::iter::once(sec_off)
            .chain(HDR_SIZES.iter().copied())
            .map(|o| load(o, MAGIC2))
            .find(|r| r.is_ok())
            .unwrap_or_else(|| Err(corrupt("no valid secondary header")));
        match (primary, secondary) {
            (Ok(p), Ok(s)) => Ok(if s.seqid > p.seqid { s } else { p }),
            (Ok(p), Err(_)) => Ok(p),
            (Err(_), Ok(s)) => Ok(s),
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// Volume key digest check (the "pbkdf2" digest bound to segment 0).
    pub fn digest_ok(&self, vk: &[u8]) -> LuksResult<bool> {
        let digests = self.json["digests"]
            .as_object()
            .ok_or_else(|| corrupt("no digests"))?;
        for d in digests.values() {
            if d["type"].as_str() != Some("pbkdf2") {
                continue;
            }
            let hash = HashSpec::parse(d["hash"].as_str().unwrap_or(""))?;
            let want = b64(&d["digest"], "digest")?;
            let salt = b64(&d["salt"], "digest salt")?;
            let it = u32::try_from(num(&d["iterations"], "iterations")?)
                .map_err(|_| corrupt("iterations"))?;
            if want.is_empty() || want.len() > 64 || it == 0 {
                return Err(corrupt("digest parameters"));
            }
            let mut got = vec![0u8; want.len()];
            hash.pbkdf2(vk, &salt, it, &mut got);
            if crate::software::aead::ct_eq(&got, &want) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn unlock_slot(
        &self,
        slot: &Keyslot,
        pass: &[u8],
        read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
    ) -> LuksResult<Option<Vec<u8>>> {
        let len = (slot.key_size * slot.stripes).div_ceil(512) * 512;
        if len as u64 > slot.area_size {
            return Err(corrupt("keyslot area smaller than its material"));
        }
        let mut material = vec![0u8; len];
        read_at(slot.area_offset, &mut material)
            .map_err(|e| LuksError::TruncatedHeader(format!("keyslot area: {e}")))?;
        let slot_key = slot.kdf.derive(pass, slot.area_key_size)?;
        let vk = keyslot::unlock_material(
            &mut material,
            &slot_key,
            slot.key_size,
            slot.stripes,
            slot.af_hash,
        )?;
        Ok(self.digest_ok(&vk)?.then_some(vk))
    }

    pub fn unlock(
        &self,
        pass: &[u8],
        read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
    ) -> LuksResult<(String, Vec<u8>)> {
        for s in &self.keyslots {
            if let Some(vk) = self.unlock_slot(s, pass, read_at)? {
                return Ok((s.id.clone(), vk));
            }
        }
        Err(LuksError::WrongPassphrase)
    }

    /// Serializes one copy (`secondary` picks magic and offset).
    pub fn serialize_copy(&self, secondary: bool) -> LuksResult<Vec<u8>> {
        let mut b = vec![0u8; self.hdr_size as usize];
        b[0..6].copy_from_slice(if secondary { MAGIC2 } else { MAGIC1 });
        b[6..8].copy_from_slice(&2u16.to_be_bytes());
        b[8..16].copy_from_slice(&self.hdr_size.to_be_bytes());
        b[16..24].copy_from_slice(&self.seqid.to_be_bytes());
        let l = self.label.len().min(47);
        b[24..24 + l].copy_from_slice(&self.label.as_bytes()[..l]);
        b[72..78].copy_from_slice(b"sha256");
        let mut salt = [0u8; 64];
        super::random(&mut salt)?;
        b[104..168].copy_from_slice(&salt);
        let u = self.uuid.len().min(39);
        b[168..168 + u].copy_from_slice(&self.uuid.as_bytes()[..u]);
        let off = if secondary { self.hdr_size } else { 0 };
        b[256..264].copy_from_slice(&off.to_be_bytes());
        let text = serde_json::to_vec(&self.json).map_err(|e| corrupt(e.to_string()))?;
        if text.len() >= b.len() - BIN_LEN {
            return Err(corrupt("JSON does not fit the metadata area"));
        }
        b[BIN_LEN..BIN_LEN + text.len()].copy_from_slice(&text);
        let sum = HashSpec::Sha256.digest(&[&b]);
        b[CSUM_OFF..CSUM_OFF + 32].copy_from_slice(&sum);
        Ok(b)
    }

    /// Adds a keyslot for `vk` under `pass`; returns (slot id, area offset, material).
    pub fn add_keyslot(
        &mut self,
        vk: &[u8],
        pass: &[u8],
        kdf: Kdf,
    ) -> LuksResult<(String, u64, Vec<u8>)> {
        let stripes = 4000usize;
        let area_size = ((vk.len() * stripes).div_ceil(512) * 512).div_ceil(4096) * 4096;
        let ks_end =
            2 * self.hdr_size + num_str(&self.json["config"]["keyslots_size"], "keyslots_size")?;
        let mut offset = 2 * self.hdr_size;
        let mut ids: Vec<u64> = Vec::new();
        for s in &self.keyslots {
            offset = offset.max(s.area_offset + s.area_size);
            ids.push(s.id.parse().unwrap_or(0));
        }
        // First free area: after the last used one (areas are never reused out of order).
        if offset + area_size as u64 > ks_end {
            return Err(corrupt("keyslots area full"));
        }
        let id = (0u64..32)
            .find(|i| !ids.contains(i))
            .ok_or_else(|| corrupt("no free keyslot"))?;
        let slot_key = kdf.derive(pass, vk.len())?;
        let material = keyslot::lock_material(vk, &slot_key, stripes, HashSpec::Sha256)?;
        let idstr = id.to_string();
        self.json["keyslots"][&idstr] = json!({
            "type": "luks2",
            "key_size": vk.len(),
            "af": {"type": "luks1", "stripes": stripes, "hash": "sha256"},
            "area": {"type": "raw", "offset": offset.to_string(), "size": area_size.to_string(),
                     "encryption": "aes-xts-plain64", "key_size": vk.len()},
            "kdf": kdf_json(&kdf),
        });
        if let Some(d) = self.json["digests"]["0"]["keyslots"].as_array_mut() {
            d.push(Value::String(idstr.clone()));
        }
        self.seqid += 1;
        self.interpret()?;
        Ok((idstr, offset, material))
    }

    /// Removes a keyslot from the JSON; returns its area to wipe.
    pub fn remove_keyslot(&mut self, id: &str) -> LuksResult<(u64, u64)> {
        let s = self
            .keyslots
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| corrupt(format!("no keyslot {id}")))?
            .clone();
        if let Some(o) = self.json["keyslots"].as_object_mut() {
            o.remove(id);
        }
        if let Some(d) = self.json["digests"]["0"]["keyslots"].as_array_mut() {
            d.retain(|v| v.as_str() != Some(id));
        }
        self.seqid += 1;
        self.interpret()?;
        Ok((s.area_offset, s.area_size))
    }

    /// A fresh header for `vk` with no keyslots yet.
    pub fn new(vk: &[u8], sector_size: usize, digest_iterations: u32) -> LuksResult<Self> {
        let mut salt = [0u8; 32];
        super::random(&mut salt)?;
        let mut digest = [0u8; 32];
        HashSpec::Sha256.pbkdf2(vk, &salt, digest_iterations, &mut digest);
        let json = json!({
            "keyslots": {},
            "tokens": {},
            "segments": {"0": {"type": "crypt", "offset": DATA_OFFSET.to_string(), "size": "dynamic",
                "iv_tweak": "0", "encryption": "aes-xts-plain64", "sector_size": sector_size}},
            "digests": {"0": {"type": "pbkdf2", "keyslots": [], "segments": ["0"], "hash": "sha256",
                "iterations": digest_iterations, "salt": B64.encode(salt), "digest": B64.encode(digest)}},
            "config": {"json_size": (HDR_SIZE - BIN_LEN as u64).to_string(),
                "keyslots_size": (DATA_OFFSET - 2 * HDR_SIZE).to_string()},
        });
        let mut u = [0u8; 16];
        super::random(&mut u)?;
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        let hx = hex::encode(u);
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            &hx[0..8],
            &hx[8..12],
            &hx[12..16],
            &hx[16..20],
            &hx[20..32]
        );
        let mut h = Luks2Header {
            hdr_size: HDR_SIZE,
            seqid: 1,
            uuid,
            label: String::new(),
            json,
            keyslots: Vec::new(),
            segment: Segment {
                offset: DATA_OFFSET,
                size: None,
                iv_tweak: 0,
                sector_size,
            },
        };
        h.interpret()?;
        Ok(h)
    }
}
