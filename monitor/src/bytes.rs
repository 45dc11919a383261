//! Bounds-checked little-endian reads over untrusted byte slices.

/// Returns `len` bytes at `off`, or `None` if that range is outside `data`.
pub fn slice(data: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    data.get(off..off.checked_add(len)?)
}

pub fn u8_at(data: &[u8], off: usize) -> Option<u8> {
    data.get(off).copied()
}

pub fn u16_at(data: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(slice(data, off, 2)?.try_into().ok()?))
}

pub fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(slice(data, off, 4)?.try_into().ok()?))
}

pub fn u64_at(data: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(slice(data, off, 8)?.try_into().ok()?))
}

pub fn i32_at(data: &[u8], off: usize) -> Option<i32> {
    Some(i32::from_le_bytes(slice(data, off, 4)?.try_into().ok()?))
}

/// NUL-terminated string starting at `off` (lossy UTF-8), bounded by `max`.
pub fn cstr_at(data: &[u8], off: usize, max: usize) -> Option<String> {
    let tail = data.get(off..)?;
    let tail = &tail[..tail.len().min(max)];
    let end = tail.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&tail[..end]).into_owned())
}

pub fn align_up(v: usize, a: usize) -> Option<usize> {
    Some(v.checked_add(a - 1)? & !(a - 1))
}
