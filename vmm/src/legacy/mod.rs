//! The few PC legacy devices a Linux guest without ACPI needs: a 16550
//! serial port for its console, the i8042 for `reboot=k`, and a CMOS RTC
//! (without one, Linux's clock probe stalls for seconds).

pub mod cmos;
pub mod i8042;
pub mod serial;

use std::sync::Arc;

use vmm_sys_util::eventfd::EventFd;

use crate::control::{VmControl, VmExit};

/// Raises an interrupt (or any event) by writing an eventfd, typically an
/// irqfd registered with KVM.
pub struct EventFdTrigger(pub EventFd);

impl vm_superio::Trigger for EventFdTrigger {
    type E = std::io::Error;

    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// Stops the VM when a device signals, e.g. the i8042's reset line.
pub struct ExitTrigger {
    pub control: Arc<VmControl>,
    pub reason: VmExit,
}

impl vm_superio::Trigger for ExitTrigger {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.control.request_exit(self.reason.clone());
        Ok(())
    }
}

/// Standard ISA ports and IRQs.
pub const COM1_PORT: u64 = 0x3f8;
pub const COM1_IRQ: u32 = 4;
pub const I8042_PORT: u64 = 0x60;
pub const CMOS_PORT: u64 = 0x70;
