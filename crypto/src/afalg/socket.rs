//! Raw AF_ALG socket plumbing (libc syscalls). A bound, keyed "tfm" socket
//! is shared; every request accepts its own operation socket from it, so one
//! keyed transform serves many threads.

use crate::error::{CryptoError, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn os_err(what: &str) -> CryptoError {
    CryptoError::AfAlg(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// Creates an AF_ALG socket bound to (`type`, `name`), e.g. ("skcipher", "xts(aes)").
pub fn bind(alg_type: &str, name: &str) -> Result<OwnedFd> {
    // SAFETY: socket() has no memory arguments.
    let fd = unsafe { libc::socket(libc::AF_ALG, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("socket(AF_ALG)"));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_alg is plain old data; all-zero is valid.
    let mut sa: libc::sockaddr_alg = unsafe { std::mem::zeroed() };
    sa.salg_family = libc::AF_ALG as libc::sa_family_t;
    if alg_type.len() >= sa.salg_type.len() || name.len() >= sa.salg_name.len() {
        return Err(CryptoError::AfAlg(format!("name too long: {name}")));
    }
    sa.salg_type[..alg_type.len()].copy_from_slice(alg_type.as_bytes());
    sa.salg_name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: sa is a valid sockaddr_alg of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const libc::sockaddr_alg as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_alg>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(os_err(&format!("bind {alg_type}/{name}")));
    }
    Ok(fd)
}

pub fn setkey(fd: &OwnedFd, key: &[u8]) -> Result<()> {
    // SAFETY: key points to key.len() readable bytes.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_ALG,
            libc::ALG_SET_KEY,
            key.as_ptr() as *const libc::c_void,
            key.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(os_err("ALG_SET_KEY"));
    }
    Ok(())
}

pub fn set_authsize(fd: &OwnedFd, size: usize) -> Result<()> {
    // SAFETY: the kernel takes the size from optlen; optval is unused.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_ALG,
            libc::ALG_SET_AEAD_AUTHSIZE,
            std::ptr::null(),
            size as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(os_err("ALG_SET_AEAD_AUTHSIZE"));
    }
    Ok(())
}

pub fn accept(fd: &OwnedFd) -> Result<OwnedFd> {
    // SAFETY: null address arguments are allowed.
    let op = unsafe {
        libc::accept4(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    if op < 0 {
        return Err(os_err("accept"));
    }
    // SAFETY: fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(op) })
}

/// Control messages of one request.
pub struct Ctl<'a> {
    pub op: Option<u32>,
    pub iv: Option<&'a [u8]>,
    pub assoclen: Option<u32>,
}

/// sendmsg() of `data` with the request's control messages.
pub fn send(op: &OwnedFd, ctl: &Ctl<'_>, data: &[u8], more: bool) -> Result<()> {
    let mut cbuf = vec![0u8; 256 + ctl.iv.map_or(0, |v| v.len())];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let mut items: Vec<(i32, Vec<u8>)> = Vec::new();
    if let Some(o) = ctl.op {
        items.push((libc::ALG_SET_OP, o.to_ne_bytes().to_vec()));
    }
    if let Some(iv) = ctl.iv {
        // struct af_alg_iv { u32 ivlen; u8 iv[]; }
        let mut v = (iv.len() as u32).to_ne_bytes().to_vec();
        v.extend_from_slice(iv);
        items.push((libc::ALG_SET_IV, v));
    }
    if let Some(a) = ctl.assoclen {
        items.push((libc::ALG_SET_AEAD_ASSOCLEN, a.to_ne_bytes().to_vec()));
    }
    if !items.is_empty() {
        // SAFETY: CMSG_SPACE is pure arithmetic.
        let total: usize = items
            .iter()
            .map(|(_, v)| unsafe { libc::CMSG_SPACE(v.len() as u32) } as usize)
            .sum();
        if total > cbuf.len() {
            cbuf.resize(total, 0);
        }
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = total;
        // SAFETY: msg_control spans `total` bytes, exactly the CMSG_SPACE of
        // every item, so each CMSG_NXTHDR stays inside cbuf.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            for (ty, v) in &items {
                if c.is_null() {
                    return Err(CryptoError::AfAlg("cmsg space".into()));
                }
                (*c).cmsg_level = libc::SOL_ALG;
                (*c).cmsg_type = *ty;
                (*c).cmsg_len = libc::CMSG_LEN(v.len() as u32) as usize;
                std::ptr::copy_nonoverlapping(v.as_ptr(), libc::CMSG_DATA(c), v.len());
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
    }
    let flags = if more { libc::MSG_MORE } else { 0 };
    // SAFETY: msg points to live iov and control buffers.
    let n = unsafe { libc::sendmsg(op.as_raw_fd(), &msg, flags) };
    if n < 0 {
        return Err(os_err("sendmsg"));
    }
    if n as usize != data.len() {
        return Err(CryptoError::AfAlg(format!("short send {n}/{}", data.len())));
    }
    Ok(())
}

/// Reads exactly `out.len()` bytes of result.
pub fn recv(op: &OwnedFd, out: &mut [u8]) -> Result<()> {
    let mut done = 0;
    while done < out.len() {
        // SAFETY: writes at most out.len()-done bytes into out[done..].
        let n = unsafe {
            libc::read(
                op.as_raw_fd(),
                out[done..].as_mut_ptr() as *mut libc::c_void,
                out.len() - done,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EBADMSG) {
                return Err(CryptoError::BadTag);
            }
            return Err(CryptoError::AfAlg(format!("read: {e}")));
        }
        if n == 0 {
            return Err(CryptoError::AfAlg("short read".into()));
        }
        done += n as usize;
    }
    Ok(())
}
