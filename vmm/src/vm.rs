//! A Linux VM: builds KVM state from a [`VmConfig`], runs the vCPUs and
//! waits for the guest to stop.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use kvm_bindings::{kvm_pit_config, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Kvm, VmFd};
use vmm_sys_util::eventfd::EventFd;

use crate::boot::{self, BootSpec};
use crate::bus::{Bus, Overlap};
use crate::config::VmConfig;
use crate::console::{ConsoleEvents, ConsoleSink};
use crate::control::{RunState, VmControl, VmExit};
use crate::cpu::{self, cpuid::CpuidOptions, CpuError};
use crate::layout;
use crate::legacy::cmos::{Cmos, CMOS_RANGE};
use crate::legacy::i8042::{I8042, I8042_RANGE};
use crate::legacy::serial::SerialPort;
use crate::legacy::{EventFdTrigger, ExitTrigger, CMOS_PORT, COM1_IRQ, COM1_PORT, I8042_PORT};
use crate::memory::{GuestRam, MemoryError};
use crate::vcpu::{self, Buses, Vcpu};

const SERIAL_RANGE: u64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("cannot open /dev/kvm: {0}")]
    Kvm(kvm_ioctls::Error),
    #[error("KVM setup failed ({what}): {source}")]
    Setup {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    #[error(transparent)]
    MpTable(#[from] boot::mptable::MpTableError),
    #[error(transparent)]
    Cpu(#[from] CpuError),
    #[error(transparent)]
    Bus(#[from] Overlap),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

fn setup(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmError {
    move |source| VmError::Setup { what, source }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> VmError {
    move |source| VmError::Io { what, source }
}

/// How a VM run ended.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunOutcome {
    pub exit: VmExit,
    /// The console showed a kernel panic.
    pub guest_panicked: bool,
}

/// The vCPU threads once started; shared so the API can kick them to pause.
#[derive(Default)]
pub struct VcpuThreads {
    threads: Mutex<Option<Vec<JoinHandle<()>>>>,
}

impl VcpuThreads {
    /// Kicks every vCPU thread still running out of KVM_RUN.
    pub fn kick(&self) {
        let guard = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(threads) = guard.as_ref() {
            vcpu::kick_until(threads, {
                let mut once = false;
                move || std::mem::replace(&mut once, true)
            });
        }
    }

    fn take(&self) -> Vec<JoinHandle<()>> {
        let mut guard = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        guard.take().unwrap_or_default()
    }
}

/// Everything a running VM shares with its API server.
pub struct VmHandle {
    pub control: Arc<VmControl>,
    pub threads: Arc<VcpuThreads>,
    pub config: VmConfig,
    pub console: Arc<ConsoleEvents>,
    /// Guest RAM, kernel and layout for live introspection (`vm.inspect`).
    pub introspect: Arc<crate::introspect::Introspector>,
}

impl VmHandle {
    /// Pauses all vCPUs and waits until each has parked.
    pub fn pause(&self) -> bool {
        if !self.control.pause() {
            return false;
        }
        for _ in 0..1000 {
            self.threads.kick();
            if self
                .control
                .wait_parked(usize::from(self.config.vcpus), Duration::from_millis(2))
            {
                return true;
            }
        }
        false
    }
}

pub struct Vm {
    _kvm: Kvm,
    fd: VmFd,
    ram: GuestRam,
    vcpus: Vec<Vcpu>,
    serial: Arc<Mutex<SerialPort>>,
    handle: Arc<VmHandle>,
}

impl Vm {
    /// Creates the VM, loads the guest and prepares every vCPU.
    pub fn build(config: VmConfig) -> Result<Self, VmError> {
        let kvm = Kvm::new().map_err(VmError::Kvm)?;
        let fd = kvm.create_vm().map_err(setup("create VM"))?;
        fd.set_tss_address(layout::KVM_TSS as usize)
            .map_err(setup("TSS address"))?;
        fd.create_irq_chip().map_err(setup("in-kernel irqchip"))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        fd.create_pit2(pit).map_err(setup("in-kernel PIT"))?;

        tracing::info!("KVM VM created");
        let mem_size = config.memory_mib << 20;
        let ram = GuestRam::new(mem_size)?;
        ram.register(&fd, 0)?;
        let entry = boot::load(
            &ram.mem,
            mem_size,
            &BootSpec {
                kernel: &config.kernel,
                initrd: config.initrd.as_deref(),
                cmdline: &config.cmdline,
                loader: config.loader,
            },
        )?;
        tracing::info!("guest loaded");
        if let Some(layout) = entry.layout {
            tracing::info!(
                phys_base = layout.phys_base,
                virt_text = layout.virt_text,
                "kernel placed by vigil"
            );
        }
        boot::mptable::write(&ram.mem, config.vcpus)?;
        cpu::regs::write_boot_tables(&ram.mem)?;

        let control = Arc::new(VmControl::new().map_err(io("control eventfd"))?);
        let console = Arc::new(ConsoleEvents::default());
        let (buses, serial) = legacy_buses(&fd, &config, &control, &console)?;
        let buses = Arc::new(buses);

        let supported = kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(CpuError::SupportedCpuid)?;
        let opts = CpuidOptions {
            hide_aes: config.hide_aes,
            tsc_deadline: kvm.check_extension(kvm_ioctls::Cap::TscDeadlineTimer),
        };
        let mut vcpus = Vec::with_capacity(usize::from(config.vcpus));
        for id in 0..config.vcpus {
            let vcpu_fd = fd
                .create_vcpu(u64::from(id))
                .map_err(setup("create vCPU"))?;
            let mut cpuid = supported.clone();
            cpu::cpuid::customize(&mut cpuid, id, config.vcpus, opts);
            vcpu_fd
                .set_cpuid2(&cpuid)
                .map_err(|e| CpuError::SetCpuid(id, e))?;
            let msrs = cpu::msrs::boot_msrs();
            match vcpu_fd.set_msrs(&msrs) {
                Ok(n) if n == msrs.as_slice().len() => {}
                Ok(n) => return Err(CpuError::SetMsrs(id, format!("only {n} accepted")).into()),
                Err(e) => return Err(CpuError::SetMsrs(id, e.to_string()).into()),
            }
            cpu::regs::setup_lapic(&vcpu_fd, id)?;
            // Application processors wait in INIT for the BSP's SIPI.
            if id == 0 {
                cpu::regs::setup_long_mode(&vcpu_fd, id, entry)?;
            }
            vcpus.push(Vcpu::new(id, vcpu_fd, buses.clone()));
        }
        let introspect = Arc::new(crate::introspect::Introspector::new(
            ram.mem.clone(),
            config.kernel.clone(),
            entry.layout,
        ));
        let handle = Arc::new(VmHandle {
            control,
            threads: Arc::new(VcpuThreads::default()),
            config,
            console,
            introspect,
        });
        Ok(Vm {
            _kvm: kvm,
            fd,
            ram,
            vcpus,
            serial,
            handle,
        })
    }

    pub fn handle(&self) -> Arc<VmHandle> {
        self.handle.clone()
    }

    pub fn memory(&self) -> &GuestRam {
        &self.ram
    }

    pub fn vm_fd(&self) -> &VmFd {
        &self.fd
    }

    /// Runs the guest until it stops; `stdin` forwards host input to COM1.
    pub fn run(mut self, stdin: bool) -> Result<RunOutcome, VmError> {
        vcpu::install_kick_handler().map_err(io("signal handler"))?;
        let control = self.handle.control.clone();
        let mut threads = Vec::with_capacity(self.vcpus.len());
        for vcpu in self.vcpus.drain(..) {
            threads.push(vcpu::spawn(vcpu, control.clone()).map_err(io("vCPU thread"))?);
        }
        tracing::info!(vcpus = threads.len(), "vCPUs running");
        *self
            .handle
            .threads
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(threads);
        if stdin {
            spawn_stdin_forwarder(self.serial.clone(), control.clone())
                .map_err(io("stdin thread"))?;
        }

        // Wait for a vCPU, a device or the API to ask for the VM to stop.
        while control.state() != RunState::Stopping {
            let _ = control.exit_evt.read();
        }
        let threads = self.handle.threads.take();
        vcpu::kick_until(&threads, || threads.iter().all(|t| t.is_finished()));
        for t in threads {
            let _ = t.join();
        }
        Ok(RunOutcome {
            exit: control
                .exit_reason()
                .unwrap_or(VmExit::Error("stopped without a reason".into())),
            guest_panicked: self.handle.console.panicked(),
        })
    }
}

/// COM1, the i8042 reset line and the CMOS clock on the port I/O bus.
fn legacy_buses(
    fd: &VmFd,
    config: &VmConfig,
    control: &Arc<VmControl>,
    console: &Arc<ConsoleEvents>,
) -> Result<(Buses, Arc<Mutex<SerialPort>>), VmError> {
    let irq = EventFd::new(libc::EFD_NONBLOCK).map_err(io("serial irqfd"))?;
    fd.register_irqfd(&irq, COM1_IRQ)
        .map_err(setup("serial irqfd"))?;
    let sink = ConsoleSink::new(&config.console, console.clone()).map_err(io("console output"))?;
    let serial = Arc::new(Mutex::new(SerialPort::new(EventFdTrigger(irq), sink)));

    let mut pio = Bus::new();
    pio.insert(COM1_PORT, SERIAL_RANGE, serial.clone())?;
    pio.insert(
        I8042_PORT,
        I8042_RANGE,
        Arc::new(Mutex::new(I8042::new(ExitTrigger {
            control: control.clone(),
            reason: VmExit::Reset,
        }))),
    )?;
    pio.insert(CMOS_PORT, CMOS_RANGE, Arc::new(Mutex::new(Cmos::default())))?;
    Ok((
        Buses {
            pio,
            mmio: Bus::new(),
        },
        serial,
    ))
}

fn spawn_stdin_forwarder(
    serial: Arc<Mutex<SerialPort>>,
    control: Arc<VmControl>,
) -> std::io::Result<()> {
    crate::threads::spawn("stdin", move || {
        let mut buf = [0u8; 64];
        // Raw reads on fd 0: holding Stdin's lock here would block the
        // terminal restore at exit, since this thread never returns.
        let mut stdin = std::mem::ManuallyDrop::new(unsafe {
            // SAFETY: fd 0 stays open for the process; ManuallyDrop
            // keeps this File from closing it.
            <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(0)
        });
        while let Ok(n @ 1..) = stdin.read(&mut buf) {
            let mut rest = &buf[..n];
            while !rest.is_empty() && control.state() != RunState::Stopping {
                let sent = serial.lock().unwrap_or_else(|p| p.into_inner()).input(rest);
                rest = &rest[sent..];
                if !rest.is_empty() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    })
    .map(drop)
}
