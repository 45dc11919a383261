//! MSI-X table, PBA and delivery through a VMM-provided sink.

use std::sync::Mutex;

pub const MSIX_ENTRY_SIZE: u64 = 16;
const CTRL_MASKED: u32 = 1;
/// Message control bits in the capability.
pub const MSIX_ENABLE: u16 = 1 << 15;
pub const MSIX_FUNCTION_MASK: u16 = 1 << 14;

/// One MSI message as programmed by the guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsiMessage {
    pub addr: u64,
    pub data: u32,
}

/// The VMM's interrupt side. `signal` delivers a vector now (KVM_SIGNAL_MSI
/// with `msg`, or writing the vector's irqfd); `msix_update` tells the VMM an
/// entry changed so it can reprogram GSI routing for irqfds.
pub trait MsiSink: Send + Sync {
    fn signal(&self, vector: u16, msg: MsiMessage);
    fn msix_update(&self, _vector: u16, _msg: MsiMessage, _masked: bool) {}
    /// Legacy INTx line, used only when the driver did not enable MSI-X.
    fn intx(&self, _asserted: bool) {}
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    addr_lo: u32,
    addr_hi: u32,
    data: u32,
    ctrl: u32,
}

impl Entry {
    fn msg(&self) -> MsiMessage {
        MsiMessage {
            addr: u64::from(self.addr_hi) << 32 | u64::from(self.addr_lo),
            data: self.data,
        }
    }
}

#[derive(Debug)]
struct Inner {
    entries: Vec<Entry>,
    pending: Vec<bool>,
    enabled: bool,
    function_masked: bool,
}

/// MSI-X state shared by the transport (table writes) and the interrupt
/// path (device threads).
#[derive(Debug)]
pub struct MsixState {
    inner: Mutex<Inner>,
}

impl MsixState {
    pub fn new(vectors: u16) -> Self {
        let n = usize::from(vectors);
        Self {
            inner: Mutex::new(Inner {
                // Entries start masked (PCI spec 6.8.2.9).
                entries: vec![
                    Entry {
                        ctrl: CTRL_MASKED,
                        ..Default::default()
                    };
                    n
                ],
                pending: vec![false; n],
                enabled: false,
                function_masked: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn num_vectors(&self) -> u16 {
        self.lock().entries.len() as u16
    }

    pub fn enabled(&self) -> bool {
        self.lock().enabled
    }

    /// Guest wrote message control; delivers vectors left pending while masked.
    pub fn set_control(&self, control: u16, sink: &dyn MsiSink) {
        let mut g = self.lock();
        g.enabled = control & MSIX_ENABLE != 0;
        g.function_masked = control & MSIX_FUNCTION_MASK != 0;
        Self::flush_pending(&mut g, sink);
    }

    /// Read `data.len()` bytes of the table at `offset`.
    pub fn read_table(&self, offset: u64, data: &mut [u8]) {
        let g = self.lock();
        read_words(offset, data, |idx, word| {
            g.entries.get(idx).map(|e| match word {
                0 => e.addr_lo,
                1 => e.addr_hi,
                2 => e.data,
                _ => e.ctrl,
            })
        });
    }

    /// Guest wrote the table (dword or qword accesses).
    pub fn write_table(&self, offset: u64, data: &[u8], sink: &dyn MsiSink) {
        let mut g = self.lock();
        let mut touched = Vec::new();
        for (i, chunk) in data.chunks(4).enumerate() {
            if chunk.len() != 4 {
                break;
            }
            let off = offset + 4 * i as u64;
            let Ok(idx) = usize::try_from(off / MSIX_ENTRY_SIZE) else {
                break;
            };
            let Some(e) = g.entries.get_mut(idx) else {
                break;
            };
            let v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            match (off % MSIX_ENTRY_SIZE) / 4 {
                0 => e.addr_lo = v,
                1 => e.addr_hi = v,
                2 => e.data = v,
                _ => e.ctrl = v & CTRL_MASKED,
            }
            if !touched.contains(&idx) {
                touched.push(idx);
            }
        }
        for idx in touched {
            let e = g.entries[idx];
            sink.msix_update(idx as u16, e.msg(), e.ctrl & CTRL_MASKED != 0);
        }
        Self::flush_pending(&mut g, sink);
    }

    /// Read the pending bit array.
    pub fn read_pba(&self, offset: u64, data: &mut [u8]) {
        let g = self.lock();
        for (i, d) in data.iter_mut().enumerate() {
            let byte = offset.saturating_add(i as u64);
            let mut v = 0u8;
            for bit in 0..8u64 {
                let Ok(idx) = usize::try_from(byte * 8 + bit) else {
                    break;
                };
                if g.pending.get(idx).copied().unwrap_or(false) {
                    v |= 1 << bit;
                }
            }
            *d = v;
        }
    }

    /// Deliver `vector`, or mark it pending if masked. Returns false if
    /// MSI-X is off or the vector is not in the table.
    pub fn trigger(&self, vector: u16, sink: &dyn MsiSink) -> bool {
        let mut g = self.lock();
        let idx = usize::from(vector);
        if !g.enabled || idx >= g.entries.len() {
            return false;
        }
        let e = g.entries[idx];
        if g.function_masked || e.ctrl & CTRL_MASKED != 0 {
            g.pending[idx] = true;
        } else {
            sink.signal(vector, e.msg());
        }
        true
    }

    /// Whether a vector exists (for validating queue_msix_vector writes).
    pub fn has_vector(&self, vector: u16) -> bool {
        usize::from(vector) < self.lock().entries.len()
    }

    pub fn reset(&self) {
        let mut g = self.lock();
        for e in g.entries.iter_mut() {
            *e = Entry {
                ctrl: CTRL_MASKED,
                ..Default::default()
            };
        }
        g.pending.iter_mut().for_each(|p| *p = false);
    }

    fn flush_pending(g: &mut Inner, sink: &dyn MsiSink) {
        if !g.enabled || g.function_masked {
            return;
        }
        for idx in 0..g.entries.len() {
            let e = g.entries[idx];
            if g.pending[idx] && e.ctrl & CTRL_MASKED == 0 {
                g.pending[idx] = false;
                sink.signal(idx as u16, e.msg());
            }
        }
    }
}

fn read_words(offset: u64, data: &mut [u8], word: impl Fn(usize, u64) -> Option<u32>) {
    for (i, d) in data.iter_mut().enumerate() {
        let off = offset.saturating_add(i as u64);
        let idx = usize::try_from(off / MSIX_ENTRY_SIZE).unwrap_or(usize::MAX);
        let w = word(idx, (off % MSIX_ENTRY_SIZE) / 4).unwrap_or(0);
        *d = w.to_le_bytes()[(off % 4) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    #[derive(Default)]
    struct Rec {
        sent: StdMutex<Vec<(u16, MsiMessage)>>,
        updates: StdMutex<Vec<(u16, bool)>>,
    }
    impl MsiSink for Rec {
        fn signal(&self, vector: u16, msg: MsiMessage) {
            self.sent.lock().unwrap().push((vector, msg));
        }
        fn msix_update(&self, vector: u16, _msg: MsiMessage, masked: bool) {
            self.updates.lock().unwrap().push((vector, masked));
        }
    }

    #[test]
    fn table_writes_mask_and_pending_delivery() {
        let m = MsixState::new(4);
        let s = Rec::default();
        // Disabled: nothing delivered.
        assert!(!m.trigger(1, &s));
        m.set_control(MSIX_ENABLE, &s);
        m.write_table(16, &0xfee0_0000u32.to_le_bytes(), &s);
        m.write_table(24, &0x41u32.to_le_bytes(), &s);
        let mut b = [0u8; 4];
        m.read_table(16, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0xfee0_0000);
        // Still masked from reset: goes pending.
        assert!(m.trigger(1, &s));
        assert!(s.sent.lock().unwrap().is_empty());
        let mut p = [0u8; 1];
        m.read_pba(0, &mut p);
        assert_eq!(p[0], 0b10);
        // Unmask: pending vector fires with the programmed message.
        m.write_table(28, &0u32.to_le_bytes(), &s);
        assert_eq!(
            s.sent.lock().unwrap()[0],
            (
                1,
                MsiMessage {
                    addr: 0xfee0_0000,
                    data: 0x41
                }
            )
        );
        m.read_pba(0, &mut p);
        assert_eq!(p[0], 0);
        assert!(s.updates.lock().unwrap().contains(&(1, false)));
        // Function mask holds delivery; out-of-table vectors are refused.
        m.set_control(MSIX_ENABLE | MSIX_FUNCTION_MASK, &s);
        m.trigger(1, &s);
        assert_eq!(s.sent.lock().unwrap().len(), 1);
        m.set_control(MSIX_ENABLE, &s);
        assert_eq!(s.sent.lock().unwrap().len(), 2);
        assert!(!m.trigger(9, &s));
        // Writes past the table are ignored, not a panic.
        m.write_table(4096, &[0xff; 8], &s);
    }
}
