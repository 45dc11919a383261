//! vigil-monitor: guest kernel introspection from outside the guest.
//!
//! `profile` learns a kernel from its image; `guest` reads a running (or
//! dumped) guest through the [`guest::view::GuestView`] trait; `kaslr` ties
//! the two together; `readers` extract modules, tasks, lockdown and CPU
//! state.

pub mod bytes;
pub mod cli;
pub mod error;
pub mod guest;
pub mod inspect;
pub mod kaslr;
pub mod profile;
pub mod readers;
pub mod test_support;
