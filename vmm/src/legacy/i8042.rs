//! A minimal i8042 keyboard controller. Linux probes it at boot and, if
//! reads never complete, waits about a second for timeouts; it also resets
//! the machine through it with `reboot=k` (command 0xfe), which vigil turns
//! into a VM exit. No keyboard or mouse is attached (boot with
//! `i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd` so Linux does not
//! look for them).

use vm_superio::Trigger;

use super::ExitTrigger;
use crate::bus::BusDevice;

/// Ports 0x60 (data) to 0x64 (status/command): offsets 0 and 4 on the bus.
pub const I8042_RANGE: u64 = 5;
const DATA: u64 = 0;
const COMMAND: u64 = 4;

const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_KBD_TEST: u8 = 0xab;
const CMD_READ_OUTPUT_PORT: u8 = 0xd0;
const CMD_WRITE_OUTPUT_PORT: u8 = 0xd1;
const CMD_RESET_CPU: u8 = 0xfe;

const STATUS_OUTPUT_FULL: u8 = 0x01;
/// "System flag": set once the controller passed its self-test.
const STATUS_SYSTEM: u8 = 0x04;
const STATUS_LAST_WAS_COMMAND: u8 = 0x08;
const SELF_TEST_OK: u8 = 0x55;
const PORT_TEST_OK: u8 = 0x00;
/// Keyboard interrupt on, translation on, as firmware leaves it.
const DEFAULT_CTR: u8 = 0x45;
/// A20 enabled, CPU not in reset.
const DEFAULT_OUTPUT_PORT: u8 = 0x03;

pub struct I8042 {
    status: u8,
    output: Option<u8>,
    ctr: u8,
    output_port: u8,
    /// The command waiting for a data byte, if any.
    pending: Option<u8>,
    reset: ExitTrigger,
}

impl I8042 {
    pub fn new(reset: ExitTrigger) -> Self {
        I8042 {
            status: STATUS_SYSTEM,
            output: None,
            ctr: DEFAULT_CTR,
            output_port: DEFAULT_OUTPUT_PORT,
            pending: None,
            reset,
        }
    }

    fn respond(&mut self, byte: u8) {
        self.output = Some(byte);
    }

    fn command(&mut self, cmd: u8) {
        self.status |= STATUS_LAST_WAS_COMMAND;
        match cmd {
            CMD_READ_CTR => self.respond(self.ctr),
            CMD_READ_OUTPUT_PORT => self.respond(self.output_port),
            CMD_SELF_TEST => self.respond(SELF_TEST_OK),
            CMD_KBD_TEST => self.respond(PORT_TEST_OK),
            CMD_WRITE_CTR | CMD_WRITE_OUTPUT_PORT => self.pending = Some(cmd),
            CMD_RESET_CPU => {
                let _ = self.reset.trigger();
            }
            _ => {}
        }
    }

    fn data(&mut self, value: u8) {
        self.status &= !STATUS_LAST_WAS_COMMAND;
        match self.pending.take() {
            Some(CMD_WRITE_CTR) => self.ctr = value,
            Some(CMD_WRITE_OUTPUT_PORT) => self.output_port = value,
            // Bytes for a keyboard that is not there are dropped.
            _ => {}
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            DATA => self.output.take().unwrap_or(0),
            COMMAND => {
                let full = if self.output.is_some() {
                    STATUS_OUTPUT_FULL
                } else {
                    0
                };
                self.status | full
            }
            _ => 0xff,
        };
        data.fill(value);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match offset {
            DATA => self.data(value),
            COMMAND => self.command(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{VmControl, VmExit};
    use std::sync::Arc;

    fn controller() -> (I8042, Arc<VmControl>) {
        let control = Arc::new(VmControl::new().unwrap());
        let dev = I8042::new(ExitTrigger {
            control: control.clone(),
            reason: VmExit::Reset,
        });
        (dev, control)
    }

    fn read(dev: &mut I8042, offset: u64) -> u8 {
        let mut b = [0u8];
        dev.read(offset, &mut b);
        b[0]
    }

    #[test]
    fn control_register_round_trips_like_linux_reads_it() {
        let (mut dev, _) = controller();
        assert_eq!(read(&mut dev, COMMAND) & STATUS_OUTPUT_FULL, 0);
        dev.write(COMMAND, &[CMD_READ_CTR]);
        assert_ne!(read(&mut dev, COMMAND) & STATUS_OUTPUT_FULL, 0);
        assert_eq!(read(&mut dev, DATA), DEFAULT_CTR);
        assert_eq!(read(&mut dev, COMMAND) & STATUS_OUTPUT_FULL, 0);
        dev.write(COMMAND, &[CMD_WRITE_CTR]);
        dev.write(DATA, &[0x30]);
        dev.write(COMMAND, &[CMD_READ_CTR]);
        assert_eq!(read(&mut dev, DATA), 0x30);
        dev.write(COMMAND, &[CMD_SELF_TEST]);
        assert_eq!(read(&mut dev, DATA), SELF_TEST_OK);
    }

    #[test]
    fn reset_command_stops_the_vm() {
        let (mut dev, control) = controller();
        dev.write(COMMAND, &[CMD_RESET_CPU]);
        assert_eq!(control.exit_reason(), Some(VmExit::Reset));
    }
}
