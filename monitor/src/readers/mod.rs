//! Readers of live kernel state, all through a located [`crate::kaslr::Kernel`].

pub mod lockdown;
pub mod modules;
pub mod registers;
pub mod tasks;
pub mod text_hash;

use crate::error::GuestError;

/// Longest list the walkers follow: guards against cyclic (corrupt or
/// malicious) lists.
pub const MAX_LIST: usize = 1 << 20;

/// Walk a kernel `list_head` starting at `head`, yielding node addresses
/// (not the head). Stops with an error on a loop that does not return to
/// the head or on unreadable memory.
pub fn walk_list<V: crate::guest::view::GuestView + ?Sized>(
    k: &crate::kaslr::Kernel<V>,
    head: u64,
    limit: usize,
) -> Result<Vec<u64>, GuestError> {
    let mut out = vec![];
    let mut seen = std::collections::HashSet::new();
    let mut cur = k.u64(head)?;
    while cur != head {
        if out.len() >= limit || !seen.insert(cur) {
            return Err(GuestError::Corrupt(format!(
                "list at {head:#x} does not return to its head"
            )));
        }
        out.push(cur);
        cur = k.u64(cur)?;
    }
    Ok(out)
}

#[cfg(test)]
mod synthetic_tests;
