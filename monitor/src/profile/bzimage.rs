//! x86 boot protocol setup header: where the compressed kernel sits.
//! Layout from Documentation/arch/x86/boot.rst.

use crate::bytes::{slice, u16_at, u32_at, u8_at};
use crate::error::ProfileError;
use serde::{Deserialize, Serialize};

const HDRS_MAGIC: u32 = 0x5372_6448; // "HdrS"

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SetupHeader {
    pub setup_sects: u8,
    pub boot_protocol: u16,
    pub kernel_alignment: u32,
    pub relocatable: bool,
    pub xloadflags: u16,
    pub payload_offset: u32,
    pub payload_length: u32,
    pub init_size: u32,
    /// File offset of the protected-mode kernel (setup code ends here).
    pub pm_offset: usize,
}

pub fn parse_setup_header(img: &[u8]) -> Result<SetupHeader, ProfileError> {
    if img.len() < 0x268 {
        return Err(ProfileError::Truncated(format!(
            "{} bytes is too small for a bzImage setup header",
            img.len()
        )));
    }
    let boot_flag = u16_at(img, 0x1fe).unwrap_or(0);
    let magic = u32_at(img, 0x202).unwrap_or(0);
    if boot_flag != 0xaa55 || magic != HDRS_MAGIC {
        return Err(ProfileError::NotBzImage(
            "no 0xAA55 boot flag / HdrS setup header magic".into(),
        ));
    }
    let boot_protocol = u16_at(img, 0x206).unwrap_or(0);
    if boot_protocol < 0x208 {
        return Err(ProfileError::NotBzImage(format!(
            "boot protocol {boot_protocol:#x} predates payload_offset (2.08)"
        )));
    }
    // A zero setup_sects means 4 for historical reasons.
    let setup_sects = match u8_at(img, 0x1f1).unwrap_or(0) {
        0 => 4,
        n => n,
    };
    let pm_offset = (usize::from(setup_sects) + 1) * 512;
    let hdr = SetupHeader {
        setup_sects,
        boot_protocol,
        kernel_alignment: u32_at(img, 0x230).unwrap_or(0),
        relocatable: u8_at(img, 0x234).unwrap_or(0) != 0,
        xloadflags: u16_at(img, 0x236).unwrap_or(0),
        payload_offset: u32_at(img, 0x248).unwrap_or(0),
        payload_length: u32_at(img, 0x24c).unwrap_or(0),
        init_size: u32_at(img, 0x260).unwrap_or(0),
        pm_offset,
    };
    Ok(hdr)
}

/// The compressed payload bytes (`payload_offset` is relative to the
/// protected-mode code).
pub fn payload<'a>(img: &'a [u8], hdr: &SetupHeader) -> Result<&'a [u8], ProfileError> {
    let start = hdr
        .pm_offset
        .checked_add(hdr.payload_offset as usize)
        .ok_or_else(|| ProfileError::NotBzImage("payload offset overflows".into()))?;
    slice(img, start, hdr.payload_length as usize).ok_or_else(|| {
        ProfileError::Truncated(format!(
            "payload at {start:#x}+{:#x} runs past end of file ({:#x})",
            hdr.payload_length,
            img.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
        let mut img = vec![0u8; 5 * 512];
        img[0x1f1] = 4;
        img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        img[0x202..0x206].copy_from_slice(&HDRS_MAGIC.to_le_bytes());
        img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        img[0x248..0x24c].copy_from_slice(&0x10u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        img.extend_from_slice(&[0u8; 0x10]);
        img.extend_from_slice(payload);
        img
    }

    #[test]
    fn finds_payload() {
        let img = fake_bzimage(b"hello");
        let hdr = parse_setup_header(&img).unwrap();
        assert_eq!(payload(&img, &hdr).unwrap(), b"hello");
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(matches!(
            parse_setup_header(&[0u8; 10]),
            Err(ProfileError::Truncated(_))
        ));
        assert!(matches!(
            parse_setup_header(&[0u8; 4096]),
            Err(ProfileError::NotBzImage(_))
        ));
        let mut img = fake_bzimage(b"hello");
        img.truncate(img.len() - 2);
        let hdr = parse_setup_header(&img).unwrap();
        assert!(matches!(
            payload(&img, &hdr),
            Err(ProfileError::Truncated(_))
        ));
    }
}
