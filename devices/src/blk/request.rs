//! Parsing a virtio-blk request chain (virtio 1.2 §5.2.6): a device-readable
//! 16-byte header, data descriptors, and a device-writable status byte last.
//! Everything here is guest controlled; parsing never panics.

use std::ops::Deref;

use virtio_queue::DescriptorChain;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory};

pub const SECTOR_SIZE: u64 = 512;
use virtio_bindings::virtio_blk as vb;

pub const VIRTIO_BLK_T_IN: u32 = vb::VIRTIO_BLK_T_IN;
pub const VIRTIO_BLK_T_OUT: u32 = vb::VIRTIO_BLK_T_OUT;
pub const VIRTIO_BLK_T_FLUSH: u32 = vb::VIRTIO_BLK_T_FLUSH;
pub const VIRTIO_BLK_T_GET_ID: u32 = vb::VIRTIO_BLK_T_GET_ID;
pub const VIRTIO_BLK_T_DISCARD: u32 = vb::VIRTIO_BLK_T_DISCARD;
pub const VIRTIO_BLK_T_WRITE_ZEROES: u32 = vb::VIRTIO_BLK_T_WRITE_ZEROES;
pub const VIRTIO_BLK_S_OK: u8 = vb::VIRTIO_BLK_S_OK as u8;
pub const VIRTIO_BLK_S_IOERR: u8 = vb::VIRTIO_BLK_S_IOERR as u8;
pub const VIRTIO_BLK_S_UNSUPP: u8 = vb::VIRTIO_BLK_S_UNSUPP as u8;
pub const VIRTIO_BLK_ID_BYTES: usize = vb::VIRTIO_BLK_ID_BYTES as usize;
/// Size of struct virtio_blk_discard_write_zeroes.
pub const DWZ_SEGMENT_SIZE: u64 = 16;
pub const DWZ_FLAG_UNMAP: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    In,
    Out,
    Flush,
    GetId,
    Discard,
    WriteZeroes,
    Unsupported(u32),
}

impl From<u32> for RequestType {
    fn from(t: u32) -> Self {
        match t {
            VIRTIO_BLK_T_IN => Self::In,
            VIRTIO_BLK_T_OUT => Self::Out,
            VIRTIO_BLK_T_FLUSH => Self::Flush,
            VIRTIO_BLK_T_GET_ID => Self::GetId,
            VIRTIO_BLK_T_DISCARD => Self::Discard,
            VIRTIO_BLK_T_WRITE_ZEROES => Self::WriteZeroes,
            t => Self::Unsupported(t),
        }
    }
}

impl RequestType {
    /// Whether data descriptors must be device-writable.
    fn data_writable(self) -> bool {
        matches!(self, Self::In | Self::GetId)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("chain has no readable 16-byte header")]
    BadHeader,
    #[error("chain ends without a writable status byte")]
    NoStatus,
    #[error("chain is longer than {0} descriptors")]
    TooLong(usize),
    #[error("chain is truncated (loop or bad next index)")]
    Truncated,
    #[error("data descriptor {0} has the wrong direction")]
    WrongDirection(usize),
    #[error("header is outside guest memory")]
    HeaderUnreadable,
}

/// A parsed request; `data` are (address, length) of data descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub rtype: RequestType,
    pub sector: u64,
    pub data: Vec<(GuestAddress, u32)>,
    pub status: GuestAddress,
}

impl Request {
    pub fn data_len(&self) -> u64 {
        self.data.iter().map(|(_, l)| u64::from(*l)).sum()
    }
}

/// Parse a chain. On error, returns the status address too when the chain
/// still ends in a usable status byte, so the caller can report IOERR.
pub fn parse<M>(
    chain: DescriptorChain<M>,
    max_descs: usize,
) -> Result<Request, (ParseError, Option<GuestAddress>)>
where
    M: Deref + Clone,
    M::Target: GuestMemory,
{
    let mem = chain.memory();
    let mut descs = Vec::new();
    let mut last = None;
    let mut count = 0usize;
    // The iterator itself stops after queue-size descriptors (loops), so
    // walking to the end is bounded; only the first `max_descs` are kept.
    for d in chain.clone() {
        count += 1;
        if descs.len() < max_descs {
            descs.push(d);
        }
        last = Some(d);
    }
    let status = last
        .filter(|d| d.is_write_only() && d.len() >= 1)
        .map(|d| GuestAddress(d.addr().0));
    if last.is_some_and(|d| d.has_next()) {
        return Err((ParseError::Truncated, status));
    }
    if count > max_descs {
        return Err((ParseError::TooLong(max_descs), status));
    }
    let Some(status_addr) = status else {
        return Err((ParseError::NoStatus, None));
    };
    let Some(hdr) = descs
        .first()
        .filter(|d| !d.is_write_only() && d.len() >= 16)
    else {
        return Err((ParseError::BadHeader, status));
    };
    if descs.len() < 2 {
        return Err((ParseError::BadHeader, status));
    }
    let hdr_addr = GuestAddress(hdr.addr().0);
    let rtype: u32 = mem
        .read_obj(hdr_addr)
        .map_err(|_| (ParseError::HeaderUnreadable, status))?;
    let sector: u64 = mem
        .read_obj(hdr_addr.checked_add(8).unwrap_or(hdr_addr))
        .map_err(|_| (ParseError::HeaderUnreadable, status))?;
    let rtype = RequestType::from(u32::from_le(rtype));
    let mut data = Vec::with_capacity(descs.len().saturating_sub(2));
    for (i, d) in descs[1..descs.len() - 1].iter().enumerate() {
        if !matches!(rtype, RequestType::Unsupported(_) | RequestType::Flush)
            && d.is_write_only() != rtype.data_writable()
        {
            return Err((ParseError::WrongDirection(i + 1), status));
        }
        data.push((GuestAddress(d.addr().0), d.len()));
    }
    Ok(Request {
        rtype,
        sector: u64::from_le(sector),
        data,
        status: status_addr,
    })
}
