//! COM1: a vm-superio 16550 whose output goes to the console sink and whose
//! interrupt is an irqfd on IRQ 4.

use vm_superio::serial::NoEvents;
use vm_superio::Serial;

use super::EventFdTrigger;
use crate::bus::BusDevice;
use crate::console::ConsoleSink;

pub struct SerialPort {
    uart: Serial<EventFdTrigger, NoEvents, ConsoleSink>,
}

impl SerialPort {
    pub fn new(irq: EventFdTrigger, sink: ConsoleSink) -> Self {
        SerialPort {
            uart: Serial::new(irq, sink),
        }
    }

    /// Queues host input for the guest; returns how many bytes fitted.
    pub fn input(&mut self, bytes: &[u8]) -> usize {
        self.uart.enqueue_raw_bytes(bytes).unwrap_or(0)
    }
}

impl BusDevice for SerialPort {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match (data.len(), u8::try_from(offset)) {
            (1, Ok(offset)) => data[0] = self.uart.read(offset),
            _ => data.fill(0xff),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let ([value], Ok(offset)) = (data, u8::try_from(offset)) {
            if let Err(e) = self.uart.write(offset, *value) {
                tracing::warn!(error = ?e, "serial write failed");
            }
        }
    }
}
