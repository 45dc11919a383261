//! How the monitor sees a guest: physical memory plus vCPU state, and
//! virtual-address translation on top.

pub mod coredump;
pub mod paging;
pub mod view;
