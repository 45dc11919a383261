//! Host kernel Crypto API through AF_ALG sockets (placeholder: detection).

use crate::registry::AlgImpl;

/// True when the host kernel accepts AF_ALG sockets.
pub fn available() -> bool {
    // SAFETY: plain syscall; the fd is closed right away.
    let fd = unsafe { libc::socket(libc::AF_ALG, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd was just returned by socket().
    unsafe { libc::close(fd) };
    true
}

pub fn discover() -> Vec<AlgImpl> {
    Vec::new()
}
