//! The keyboard controller, only for its reset line: Linux's `reboot=k`
//! writes 0xfe to port 0x64, which vigil turns into a VM exit.

use vm_superio::I8042Device;

use super::ExitTrigger;
use crate::bus::BusDevice;

/// Ports 0x60 (data) to 0x64 (command); offsets 0 and 4 on the bus.
pub const I8042_RANGE: u64 = 5;

pub struct I8042 {
    dev: I8042Device<ExitTrigger>,
}

impl I8042 {
    pub fn new(reset: ExitTrigger) -> Self {
        I8042 {
            dev: I8042Device::new(reset),
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match u8::try_from(offset) {
            Ok(o) => self.dev.read(o),
            Err(_) => 0xff,
        };
        data.fill(value);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let ([value], Ok(offset)) = (data, u8::try_from(offset)) {
            if let Err(e) = self.dev.write(offset, *value) {
                tracing::warn!(error = ?e, "i8042 reset event failed");
            }
        }
    }
}
