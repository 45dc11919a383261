//! Minimal BTF reader (include/uapi/linux/btf.h): enough to flatten named
//! structs into member offsets and read enum constants. Written here rather
//! than pulled in because we only need struct/enum layouts from an
//! in-memory section and must treat the bytes as hostile.

use crate::bytes::{i32_at, u16_at, u32_at};
use crate::error::ProfileError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const BTF_MAGIC: u16 = 0xeb9f;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Ptr,
    Array { elem: u32, nelems: u32 },
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

#[derive(Debug, Clone)]
struct RawMember {
    name: String,
    ty: u32,
    bit_offset: u32,
    bitfield_size: u32,
}

#[derive(Debug, Clone)]
struct RawType {
    name: String,
    kind: Kind,
    size_or_type: u32,
    members: Vec<RawMember>,
    enum_values: Vec<(String, i64)>,
}

/// One (possibly nested through anonymous structs/unions) struct member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Field {
    /// Byte offset within the outer struct.
    pub offset: u64,
    /// Size in bytes (0 if unknown, e.g. flexible array).
    pub size: u64,
    /// Non-zero for bitfields.
    pub bit_size: u32,
    pub bit_offset: u32,
    /// Resolved type name, e.g. "struct list_head", "int", "char[16]", "ptr".
    pub ty: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StructLayout {
    pub size: u64,
    pub fields: BTreeMap<String, Field>,
}

#[derive(Debug)]
pub struct Btf {
    types: Vec<RawType>, // index 0 is the void placeholder
}

fn err(s: impl Into<String>) -> ProfileError {
    ProfileError::Btf(s.into())
}

impl Btf {
    pub fn parse(data: &[u8]) -> Result<Self, ProfileError> {
        if u16_at(data, 0) != Some(BTF_MAGIC) {
            return Err(err("bad magic (not BTF, or big-endian)"));
        }
        let hdr_len = u32_at(data, 4).ok_or_else(|| err("truncated header"))? as usize;
        let field = |o| {
            u32_at(data, o)
                .map(|v| v as usize)
                .ok_or_else(|| err("truncated header"))
        };
        let (type_off, type_len, str_off, str_len) =
            (field(8)?, field(12)?, field(16)?, field(20)?);
        let sec = |off: usize, len: usize| {
            hdr_len
                .checked_add(off)
                .and_then(|s| data.get(s..s.checked_add(len)?))
                .ok_or_else(|| err("type or string section outside the BTF blob"))
        };
        let types_data = sec(type_off, type_len)?;
        let strs = sec(str_off, str_len)?;
        let name = |off: u32| -> String {
            crate::bytes::cstr_at(strs, off as usize, 4096).unwrap_or_default()
        };
        let mut types = vec![RawType {
            name: "void".into(),
            kind: Kind::Int,
            size_or_type: 0,
            members: vec![],
            enum_values: vec![],
        }];
        let mut p = 0usize;
        let trunc = || err("type record truncated");
        while p < types_data.len() {
            let name_off = u32_at(types_data, p).ok_or_else(trunc)?;
            let info = u32_at(types_data, p + 4).ok_or_else(trunc)?;
            let size_or_type = u32_at(types_data, p + 8).ok_or_else(trunc)?;
            p += 12;
            let vlen = (info & 0xffff) as usize;
            let kflag = info >> 31 != 0;
            let mut members = vec![];
            let mut enum_values = vec![];
            let kind = match (info >> 24) & 0x1f {
                1 => {
                    p += 4;
                    Kind::Int
                }
                2 => Kind::Ptr,
                3 => {
                    let elem = u32_at(types_data, p).ok_or_else(trunc)?;
                    let nelems = u32_at(types_data, p + 8).ok_or_else(trunc)?;
                    p += 12;
                    Kind::Array { elem, nelems }
                }
                k @ (4 | 5) => {
                    for _ in 0..vlen {
                        let mn = u32_at(types_data, p).ok_or_else(trunc)?;
                        let ty = u32_at(types_data, p + 4).ok_or_else(trunc)?;
                        let off = u32_at(types_data, p + 8).ok_or_else(trunc)?;
                        p += 12;
                        let (bit_offset, bitfield_size) = if kflag {
                            (off & 0xff_ffff, off >> 24)
                        } else {
                            (off, 0)
                        };
                        members.push(RawMember {
                            name: name(mn),
                            ty,
                            bit_offset,
                            bitfield_size,
                        });
                    }
                    if k == 4 {
                        Kind::Struct
                    } else {
                        Kind::Union
                    }
                }
                6 => {
                    for _ in 0..vlen {
                        let n = u32_at(types_data, p).ok_or_else(trunc)?;
                        let v = i32_at(types_data, p + 4).ok_or_else(trunc)?;
                        p += 8;
                        enum_values.push((name(n), i64::from(v)));
                    }
                    Kind::Enum
                }
                7 => Kind::Fwd,
                8 => Kind::Typedef,
                9 => Kind::Volatile,
                10 => Kind::Const,
                11 => Kind::Restrict,
                12 => Kind::Func,
                13 => {
                    p += 8 * vlen;
                    Kind::FuncProto
                }
                14 => {
                    p += 4;
                    Kind::Var
                }
                15 => {
                    p += 12 * vlen;
                    Kind::Datasec
                }
                16 => Kind::Float,
                17 => {
                    p += 4;
                    Kind::DeclTag
                }
                18 => Kind::TypeTag,
                19 => {
                    for _ in 0..vlen {
                        let n = u32_at(types_data, p).ok_or_else(trunc)?;
                        let lo = u32_at(types_data, p + 4).ok_or_else(trunc)?;
                        let hi = u32_at(types_data, p + 8).ok_or_else(trunc)?;
                        p += 12;
                        enum_values.push((name(n), ((u64::from(hi) << 32) | u64::from(lo)) as i64));
                    }
                    Kind::Enum64
                }
                k => return Err(err(format!("unknown BTF kind {k} at type {}", types.len()))),
            };
            if p > types_data.len() {
                return Err(trunc());
            }
            types.push(RawType {
                name: name(name_off),
                kind,
                size_or_type,
                members,
                enum_values,
            });
        }
        if types.len() < 2 {
            return Err(err("no types"));
        }
        Ok(Self { types })
    }

    pub fn type_count(&self) -> usize {
        self.types.len() - 1
    }

    /// Skip typedef/const/volatile/restrict/type_tag, bounded against loops.
    fn resolve(&self, mut id: u32) -> Option<&RawType> {
        for _ in 0..64 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                    id = t.size_or_type
                }
                _ => return Some(t),
            }
        }
        None
    }

    fn size_of(&self, id: u32, depth: u32) -> u64 {
        if depth > 32 {
            return 0;
        }
        match self.resolve(id) {
            Some(t) => match t.kind {
                Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Float => u64::from(t.size_or_type),
                Kind::Ptr => 8,
                Kind::Array { elem, nelems } => self
                    .size_of(elem, depth + 1)
                    .saturating_mul(u64::from(nelems)),
                _ => 0,
            },
            None => 0,
        }
    }

    fn type_name(&self, id: u32, depth: u32) -> String {
        if depth > 32 {
            return "?".into();
        }
        let Some(t) = self.types.get(id as usize) else {
            return "?".into();
        };
        match t.kind {
            Kind::Struct => format!("struct {}", t.name),
            Kind::Union => format!("union {}", t.name),
            Kind::Enum | Kind::Enum64 => format!("enum {}", t.name),
            Kind::Ptr => format!("{}*", self.type_name(t.size_or_type, depth + 1)),
            Kind::Array { elem, nelems } => {
                format!("{}[{nelems}]", self.type_name(elem, depth + 1))
            }
            Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
                self.type_name(t.size_or_type, depth + 1)
            }
            _ => t.name.clone(),
        }
    }

    /// Flattened layout of `struct name` (the first complete definition).
    pub fn struct_layout(&self, name: &str) -> Option<StructLayout> {
        let t = self
            .types
            .iter()
            .filter(|t| t.kind == Kind::Struct && t.name == name)
            .max_by_key(|t| t.members.len())?;
        let mut fields = BTreeMap::new();
        self.flatten(t, 0, &mut fields, 0);
        Some(StructLayout {
            size: u64::from(t.size_or_type),
            fields,
        })
    }

    fn flatten(&self, t: &RawType, base_bits: u64, out: &mut BTreeMap<String, Field>, depth: u32) {
        if depth > 16 {
            return;
        }
        for m in &t.members {
            let bits = base_bits + u64::from(m.bit_offset);
            if m.name.is_empty() {
                // Anonymous struct/union: its members belong to the parent.
                if let Some(inner) = self.resolve(m.ty) {
                    if matches!(inner.kind, Kind::Struct | Kind::Union) {
                        self.flatten(inner, bits, out, depth + 1);
                    }
                }
                continue;
            }
            out.entry(m.name.clone()).or_insert(Field {
                offset: bits / 8,
                size: self.size_of(m.ty, 0),
                bit_size: m.bitfield_size,
                bit_offset: (bits % 8) as u32,
                ty: self.type_name(m.ty, 0),
            });
        }
    }

    /// Constants of `enum name`.
    pub fn enum_values(&self, name: &str) -> Option<BTreeMap<String, i64>> {
        let t = self
            .types
            .iter()
            .find(|t| matches!(t.kind, Kind::Enum | Kind::Enum64) && t.name == name)?;
        Some(t.enum_values.iter().cloned().collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tiny BTF blob builder for tests.
    #[derive(Default)]
    pub struct Builder {
        types: Vec<u8>,
        strs: Vec<u8>,
        next: u32,
    }
    impl Builder {
        pub fn new() -> Self {
            Self {
                types: vec![],
                strs: vec![0],
                next: 1,
            }
        }
        fn s(&mut self, n: &str) -> u32 {
            if n.is_empty() {
                return 0;
            }
            let o = self.strs.len() as u32;
            self.strs.extend_from_slice(n.as_bytes());
            self.strs.push(0);
            o
        }
        fn hdr(&mut self, name: &str, kind: u32, vlen: u32, st: u32) -> u32 {
            let n = self.s(name);
            for v in [n, (kind << 24) | vlen, st] {
                self.types.extend_from_slice(&v.to_le_bytes());
            }
            self.next += 1;
            self.next - 1
        }
        pub fn int(&mut self, name: &str, size: u32) -> u32 {
            let id = self.hdr(name, 1, 0, size);
            self.types.extend_from_slice(&(size * 8).to_le_bytes());
            id
        }
        pub fn ptr(&mut self, to: u32) -> u32 {
            self.hdr("", 2, 0, to)
        }
        pub fn array(&mut self, elem: u32, idx: u32, n: u32) -> u32 {
            let id = self.hdr("", 3, 0, 0);
            for v in [elem, idx, n] {
                self.types.extend_from_slice(&v.to_le_bytes());
            }
            id
        }
        pub fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            let id = self.hdr(name, 4, members.len() as u32, size);
            for (n, ty, off) in members {
                let n = self.s(n);
                for v in [n, *ty, *off] {
                    self.types.extend_from_slice(&v.to_le_bytes());
                }
            }
            id
        }
        pub fn enm(&mut self, name: &str, vals: &[(&str, i32)]) -> u32 {
            let id = self.hdr(name, 6, vals.len() as u32, 4);
            for (n, v) in vals {
                let n = self.s(n);
                self.types.extend_from_slice(&n.to_le_bytes());
                self.types.extend_from_slice(&v.to_le_bytes());
            }
            id
        }
        pub fn finish(&self) -> Vec<u8> {
            let mut out = vec![];
            out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for v in [
                24u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strs.len() as u32,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strs);
            out
        }
    }

    #[test]
    fn flattens_structs_and_enums() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let ch = b.int("char", 1);
        let arr = b.array(ch, int, 16);
        let lh = b.strukt("list_head", 16, &[]);
        let lhp = b.ptr(lh);
        let lh2 = b.strukt("list_head", 16, &[("next", lhp, 0), ("prev", lhp, 64)]);
        let anon = b.strukt("", 8, &[("pid", int, 0), ("tgid", int, 32)]);
        b.strukt(
            "task_struct",
            64,
            &[("tasks", lh2, 0), ("", anon, 128), ("comm", arr, 256)],
        );
        b.enm(
            "lockdown_reason",
            &[("LOCKDOWN_NONE", 0), ("LOCKDOWN_INTEGRITY_MAX", 20)],
        );
        let btf = Btf::parse(&b.finish()).unwrap();
        let ts = btf.struct_layout("task_struct").unwrap();
        assert_eq!(ts.size, 64);
        assert_eq!(ts.fields["tasks"].ty, "struct list_head");
        assert_eq!(ts.fields["tasks"].size, 16);
        assert_eq!(ts.fields["pid"].offset, 16);
        assert_eq!(ts.fields["tgid"].offset, 20);
        assert_eq!(ts.fields["comm"].offset, 32);
        assert_eq!(ts.fields["comm"].ty, "char[16]");
        assert_eq!(ts.fields["comm"].size, 16);
        assert_eq!(
            btf.struct_layout("list_head").unwrap().fields["prev"].offset,
            8
        );
        let e = btf.enum_values("lockdown_reason").unwrap();
        assert_eq!(e["LOCKDOWN_INTEGRITY_MAX"], 20);
    }

    #[test]
    fn rejects_malformed() {
        assert!(Btf::parse(&[0u8; 3]).is_err());
        let mut b = Builder::new();
        let int = b.int("int", 4);
        b.strukt("s", 4, &[("a", int, 0)]);
        let blob = b.finish();
        for cut in 0..blob.len() {
            let _ = Btf::parse(&blob[..cut]);
        }
        let mut bad = blob.clone();
        bad[12] = 0xff; // type_len huge
        assert!(Btf::parse(&bad).is_err());
    }
}
