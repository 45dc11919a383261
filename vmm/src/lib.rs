//! vigil's virtual machine monitor: boots an unmodified Linux guest on KVM
//! with the rust-vmm crates.
//!
//! The path of a boot: [`config`] checks what to run, [`vm`] creates the
//! KVM VM with [`memory`], loads the guest with [`boot`], prepares each vCPU
//! with [`cpu`], attaches the [`legacy`] devices to the [`bus`]es, and runs
//! [`vcpu`] threads until the guest stops; [`api`] controls it meanwhile.

pub mod api;
pub mod bench;
pub mod boot;
pub mod bus;
pub mod cli;
pub mod config;
pub mod console;
pub mod control;
pub mod cpu;
pub mod demo;
pub mod guest_path;
pub mod introspect;
pub mod layout;
pub mod legacy;
pub mod memory;
pub mod runner;
pub mod threads;
pub mod vcpu;
pub mod vm;
