//! PCI bus 0, its host bridge, and configuration mechanism #1.

use std::sync::{Arc, Mutex};

use super::bar::{BarInfo, BarKind, BarReprogram};
use super::config::{PciConfiguration, PciIds};
use super::PciError;

/// First port of configuration mechanism #1 (0xCF8 address, 0xCFC data).
pub const PCI_CONFIG_IO_BASE: u16 = 0xcf8;
/// Ports 0xCF8..=0xCFF.
pub const PCI_CONFIG_IO_SIZE: u16 = 8;
const NUM_SLOTS: usize = 32;

/// A PCI function the bus can reach. Config offsets are byte offsets into
/// the 256-byte space; BAR offsets are relative to the BAR base.
pub trait PciDevice: Send {
    fn read_config(&mut self, offset: usize, data: &mut [u8]);
    /// Returns a BAR move the VMM must apply to its MMIO map.
    fn write_config(&mut self, offset: usize, data: &[u8]) -> Option<BarReprogram>;
    fn read_bar(&mut self, bar: usize, offset: u64, data: &mut [u8]);
    fn write_bar(&mut self, bar: usize, offset: u64, data: &[u8]);
    /// Declared BARs with their current base address.
    fn bars(&self) -> Vec<(usize, BarInfo, u64)>;
    /// Whether memory decoding is on (BAR accesses are ignored otherwise).
    fn memory_enabled(&self) -> bool {
        true
    }
}

pub type SharedPciDevice = Arc<Mutex<dyn PciDevice>>;

/// Host bridge at 00:00.0 so guests that start enumeration there find a bus.
pub struct PciHostBridge {
    config: PciConfiguration,
}

impl Default for PciHostBridge {
    fn default() -> Self {
        Self {
            config: PciConfiguration::new(PciIds {
                vendor: 0x8086,
                device: 0x0d57,
                revision: 0,
                class: 0x06,
                subclass: 0x00,
                prog_if: 0,
                subsystem_vendor: 0,
                subsystem_id: 0,
                header_type: 0,
            }),
        }
    }
}

impl PciDevice for PciHostBridge {
    fn read_config(&mut self, offset: usize, data: &mut [u8]) {
        self.config.read(offset, data)
    }
    fn write_config(&mut self, offset: usize, data: &[u8]) -> Option<BarReprogram> {
        self.config.write(offset, data)
    }
    fn read_bar(&mut self, _bar: usize, _offset: u64, data: &mut [u8]) {
        data.fill(0xff)
    }
    fn write_bar(&mut self, _bar: usize, _offset: u64, _data: &[u8]) {}
    fn bars(&self) -> Vec<(usize, BarInfo, u64)> {
        Vec::new()
    }
}

/// Bus 0 with up to 32 single-function devices.
pub struct PciBus {
    slots: Vec<Option<SharedPciDevice>>,
}

impl Default for PciBus {
    fn default() -> Self {
        Self::new()
    }
}

impl PciBus {
    /// A bus with the host bridge in slot 0.
    pub fn new() -> Self {
        let mut slots: Vec<Option<SharedPciDevice>> = vec![None; NUM_SLOTS];
        slots[0] = Some(Arc::new(Mutex::new(PciHostBridge::default())));
        Self { slots }
    }

    /// Plug a device into the first free slot; returns the slot number.
    pub fn add_device(&mut self, dev: SharedPciDevice) -> Result<u8, PciError> {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(PciError::BusFull)?;
        self.slots[slot] = Some(dev);
        Ok(slot as u8)
    }

    pub fn device(&self, slot: u8) -> Option<SharedPciDevice> {
        self.slots.get(usize::from(slot)).cloned().flatten()
    }

    /// Config read; missing functions read all-ones as on real hardware.
    pub fn config_read(&self, bus: u8, slot: u8, func: u8, offset: usize, data: &mut [u8]) {
        match self.function(bus, slot, func) {
            Some(d) => lock(&d).read_config(offset, data),
            None => data.fill(0xff),
        }
    }

    pub fn config_write(
        &self,
        bus: u8,
        slot: u8,
        func: u8,
        offset: usize,
        data: &[u8],
    ) -> Option<BarReprogram> {
        self.function(bus, slot, func)
            .and_then(|d| lock(&d).write_config(offset, data))
    }

    fn function(&self, bus: u8, slot: u8, func: u8) -> Option<SharedPciDevice> {
        if bus != 0 || func != 0 {
            return None;
        }
        self.device(slot)
    }

    /// Every enabled memory BAR: (slot, bar, base, len), for the VMM's MMIO map.
    pub fn mmio_ranges(&self) -> Vec<(u8, usize, u64, u64)> {
        let mut out = Vec::new();
        for (slot, d) in self.slots.iter().enumerate() {
            let Some(d) = d else { continue };
            for (bar, info, base) in lock(d).bars() {
                if info.kind != BarKind::Io && base != 0 {
                    out.push((slot as u8, bar, base, info.size));
                }
            }
        }
        out
    }

    /// Route an MMIO read; returns false if no BAR claims `addr`.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find_bar(addr) {
            Some((d, bar, off)) => {
                lock(&d).read_bar(bar, off, data);
                true
            }
            None => false,
        }
    }

    /// Route an MMIO write; returns false if no BAR claims `addr`.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find_bar(addr) {
            Some((d, bar, off)) => {
                lock(&d).write_bar(bar, off, data);
                true
            }
            None => false,
        }
    }

    fn find_bar(&self, addr: u64) -> Option<(SharedPciDevice, usize, u64)> {
        for d in self.slots.iter().flatten() {
            let g = lock(d);
            if !g.memory_enabled() {
                continue;
            }
            for (bar, info, base) in g.bars() {
                if info.kind != BarKind::Io && base != 0 && addr >= base && addr - base < info.size
                {
                    return Some((d.clone(), bar, addr - base));
                }
            }
        }
        None
    }
}

// A poisoned lock only means another thread panicked mid-access; the config
// state is still consistent enough to keep serving.
fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Port I/O handler for 0xCF8..=0xCFF (configuration mechanism #1).
pub struct PciConfigIo {
    bus: Arc<Mutex<PciBus>>,
    address: u32,
}

impl PciConfigIo {
    pub fn new(bus: Arc<Mutex<PciBus>>) -> Self {
        Self { bus, address: 0 }
    }

    /// `offset` is the port minus 0xCF8.
    pub fn read(&mut self, offset: u16, data: &mut [u8]) {
        match offset {
            0..=3 => {
                let v = self.address.to_le_bytes();
                for (i, d) in data.iter_mut().enumerate() {
                    *d = v.get(usize::from(offset) + i).copied().unwrap_or(0xff);
                }
            }
            4..=7 => {
                let byte = usize::from(offset - 4);
                match self.decode(byte, data.len()) {
                    Some((b, s, f, reg_off)) => lock(&self.bus).config_read(b, s, f, reg_off, data),
                    None => data.fill(0xff),
                }
            }
            _ => data.fill(0xff),
        }
    }

    /// Returns a BAR move the VMM must apply.
    pub fn write(&mut self, offset: u16, data: &[u8]) -> Option<BarReprogram> {
        match offset {
            0..=3 => {
                let mut v = self.address.to_le_bytes();
                for (i, d) in data.iter().enumerate() {
                    if let Some(slot) = v.get_mut(usize::from(offset) + i) {
                        *slot = *d;
                    }
                }
                self.address = u32::from_le_bytes(v);
                None
            }
            4..=7 => {
                let byte = usize::from(offset - 4);
                let (b, s, f, reg_off) = self.decode(byte, data.len())?;
                lock(&self.bus).config_write(b, s, f, reg_off, data)
            }
            _ => None,
        }
    }

    fn decode(&self, byte: usize, len: usize) -> Option<(u8, u8, u8, usize)> {
        let a = self.address;
        if a & 0x8000_0000 == 0 || byte + len > 4 {
            return None;
        }
        let bus = (a >> 16) as u8;
        let slot = ((a >> 11) & 0x1f) as u8;
        let func = ((a >> 8) & 0x7) as u8;
        let reg = (a & 0xfc) as usize;
        Some((bus, slot, func, reg + byte))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(slot: u32, reg: u32) -> [u8; 4] {
        (0x8000_0000 | slot << 11 | reg).to_le_bytes()
    }

    #[test]
    fn enumerates_host_bridge_and_empty_slots() {
        let bus = Arc::new(Mutex::new(PciBus::new()));
        let mut io = PciConfigIo::new(bus);
        io.write(0, &addr(0, 0));
        let mut d = [0u8; 4];
        io.read(4, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x0d57_8086);
        // Word and byte accesses at the data port offsets.
        let mut w = [0u8; 2];
        io.read(6, &mut w);
        assert_eq!(u16::from_le_bytes(w), 0x0d57);
        let mut b = [0u8; 1];
        io.write(0, &addr(0, 8));
        io.read(7, &mut b);
        assert_eq!(b[0], 0x06);
        io.write(0, &addr(5, 0));
        io.read(4, &mut d);
        assert_eq!(d, [0xff; 4]);
        // Disabled address reads all-ones.
        io.write(0, &0u32.to_le_bytes());
        io.read(4, &mut d);
        assert_eq!(d, [0xff; 4]);
        let mut a = [0u8; 4];
        io.read(0, &mut a);
        assert_eq!(a, [0; 4]);
    }
}
