//! Where the guest's serial console goes, and what vigil watches for in it:
//! a kernel panic (reported as such) and the guest agent's ready line.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

const PANIC_MARKER: &[u8] = b"Kernel panic - not syncing";
const READY_MARKER: &[u8] = b"vigil-agent: ready";
const MAX_LINE: usize = 512;

/// Where console output is written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleOutput {
    Stdout,
    File(PathBuf),
    Off,
}

/// What the console has shown so far; shared with the rest of the VMM.
#[derive(Debug, Default)]
pub struct ConsoleEvents {
    panicked: AtomicBool,
    ready_at: OnceLock<Instant>,
}

impl ConsoleEvents {
    pub fn panicked(&self) -> bool {
        self.panicked.load(Ordering::Acquire)
    }

    pub fn ready_at(&self) -> Option<Instant> {
        self.ready_at.get().copied()
    }
}

/// Writes console bytes out and scans complete lines for markers.
pub struct ConsoleSink {
    out: Option<Box<dyn Write + Send>>,
    line: Vec<u8>,
    events: Arc<ConsoleEvents>,
}

impl ConsoleSink {
    pub fn new(output: &ConsoleOutput, events: Arc<ConsoleEvents>) -> io::Result<Self> {
        let out: Option<Box<dyn Write + Send>> = match output {
            ConsoleOutput::Stdout => Some(Box::new(io::stdout())),
            ConsoleOutput::File(path) => Some(Box::new(File::create(path)?)),
            ConsoleOutput::Off => None,
        };
        Ok(ConsoleSink {
            out,
            line: Vec::with_capacity(MAX_LINE),
            events,
        })
    }

    fn scan_line(&mut self) {
        let contains = |needle: &[u8]| self.line.windows(needle.len()).any(|w| w == needle);
        if contains(PANIC_MARKER) {
            self.events.panicked.store(true, Ordering::Release);
        }
        if contains(READY_MARKER) {
            let _ = self.events.ready_at.set(Instant::now());
        }
        self.line.clear();
    }
}

impl Write for ConsoleSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            if b == b'\n' || self.line.len() == MAX_LINE {
                self.scan_line();
            } else {
                self.line.push(b);
            }
        }
        if let Some(out) = &mut self.out {
            out.write_all(buf)?;
            if buf.contains(&b'\n') {
                out.flush()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), |o| o.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_panic_and_ready_lines() {
        let events = Arc::new(ConsoleEvents::default());
        let mut sink = ConsoleSink::new(&ConsoleOutput::Off, events.clone()).unwrap();
        sink.write_all(b"[    1.0] booting\r\nvigil-agent: ready 1.23\n")
            .unwrap();
        assert!(events.ready_at().is_some());
        assert!(!events.panicked());
        sink.write_all(b"Kernel panic - not syncing: VFS: Unable to mount root\n")
            .unwrap();
        assert!(events.panicked());
    }
}
