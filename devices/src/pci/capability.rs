//! PCI capability descriptions appended to the config space list.

pub const PCI_CAP_ID_VENDOR: u8 = 0x09;
pub const PCI_CAP_ID_MSIX: u8 = 0x11;

/// A capability body: bytes after the id/next header, plus which of those
/// bytes the guest may write (same length as `body`).
#[derive(Debug, Clone)]
pub struct Capability {
    pub id: u8,
    pub body: Vec<u8>,
    pub writable: Vec<u8>,
}

impl Capability {
    /// Read-only capability.
    pub fn read_only(id: u8, body: Vec<u8>) -> Self {
        let writable = vec![0; body.len()];
        Self { id, body, writable }
    }

    /// Total length including the 2-byte header.
    pub fn len(&self) -> usize {
        self.body.len() + 2
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}
