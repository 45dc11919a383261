//! Hand-assembled real-mode guests on the host's /dev/kvm: they exercise
//! vigil's exit dispatch (port I/O to the 16550, MMIO exits from a
//! read-only memory slot, hardware-breakpoint debug exits) without Linux.

use std::sync::{Arc, Mutex};

use kvm_bindings::{
    kvm_guest_debug, kvm_userspace_memory_region, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_USE_HW_BP,
    KVM_MEM_READONLY,
};
use kvm_ioctls::{Kvm, VmFd};
use vigil_vmm::bus::{Bus, BusDevice};
use vigil_vmm::console::{ConsoleEvents, ConsoleOutput, ConsoleSink};
use vigil_vmm::control::VmExit;
use vigil_vmm::legacy::serial::SerialPort;
use vigil_vmm::legacy::{EventFdTrigger, COM1_PORT};
use vigil_vmm::memory::GuestRam;
use vigil_vmm::vcpu::{Buses, Step, Vcpu};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;

const CODE: u64 = 0x1000;
const RAM_SIZE: u64 = 0x10000;
const ROM: u64 = 0x10000;

fn kvm() -> Kvm {
    Kvm::new().expect("these tests need /dev/kvm")
}

struct TinyVm {
    _kvm: Kvm,
    vm: VmFd,
    _ram: GuestRam,
}

impl TinyVm {
    fn new(code: &[u8]) -> Self {
        let kvm = kvm();
        let vm = kvm.create_vm().unwrap();
        let ram = GuestRam::with_regions(&[(0, RAM_SIZE)]).unwrap();
        ram.register(&vm, 0).unwrap();
        ram.mem.write_slice(code, GuestAddress(CODE)).unwrap();
        TinyVm {
            _kvm: kvm,
            vm,
            _ram: ram,
        }
    }

    /// A vCPU in real mode at CODE, with halts ending the run.
    fn vcpu(&self, buses: Buses) -> Vcpu {
        let fd = self.vm.create_vcpu(0).unwrap();
        let mut sregs = fd.get_sregs().unwrap();
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        fd.set_sregs(&sregs).unwrap();
        let mut regs = fd.get_regs().unwrap();
        regs.rip = CODE;
        regs.rflags = 2;
        fd.set_regs(&regs).unwrap();
        let mut vcpu = Vcpu::new(0, fd, Arc::new(buses));
        vcpu.halt_exits = true;
        vcpu
    }
}

/// Runs until the guest halts, collecting debug exits.
fn run_to_halt(vcpu: &mut Vcpu) -> Vec<kvm_bindings::kvm_debug_exit_arch> {
    let mut debug = Vec::new();
    for _ in 0..1000 {
        match vcpu.step() {
            Step::Continue => {}
            Step::Debug(arch) => {
                debug.push(arch);
                // Step over the breakpoint: disable it and go on.
                vcpu.fd
                    .set_guest_debug(&kvm_guest_debug::default())
                    .unwrap();
            }
            Step::Exit(VmExit::Halted) => return debug,
            Step::Exit(other) => panic!("unexpected exit {other:?}"),
        }
    }
    panic!("guest did not halt");
}

/// `mov al, c; out dx, al` for each byte, after `mov dx, 0x3f8`; then hlt.
fn serial_program(text: &[u8]) -> Vec<u8> {
    let mut code = vec![0xba, 0xf8, 0x03];
    for &c in text {
        code.extend_from_slice(&[0xb0, c, 0xee]);
    }
    code.push(0xf4);
    code
}

#[test]
fn serial_output_through_port_io() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console");
    let tiny = TinyVm::new(&serial_program(b"vigil\n"));
    let events = Arc::new(ConsoleEvents::default());
    let sink = ConsoleSink::new(&ConsoleOutput::File(log.clone()), events).unwrap();
    let irq = EventFdTrigger(EventFd::new(libc::EFD_NONBLOCK).unwrap());
    let mut pio = Bus::new();
    pio.insert(
        COM1_PORT,
        8,
        Arc::new(Mutex::new(SerialPort::new(irq, sink))),
    )
    .unwrap();
    let mut vcpu = tiny.vcpu(Buses {
        pio,
        mmio: Bus::new(),
    });
    run_to_halt(&mut vcpu);
    drop(vcpu);
    assert_eq!(std::fs::read_to_string(log).unwrap(), "vigil\n");
}

#[derive(Default)]
struct Recorder(Vec<(u64, Vec<u8>)>);

impl BusDevice for Recorder {
    fn read(&mut self, _: u64, data: &mut [u8]) {
        data.fill(0);
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        self.0.push((offset, data.to_vec()));
    }
}

#[test]
fn write_to_read_only_slot_is_an_mmio_exit() {
    // mov ax, 0x1000; mov ds, ax; mov al, [0]; mov byte [1], 0x42; mov [2], al; hlt
    let code = [
        0xb8, 0x00, 0x10, 0x8e, 0xd8, 0xa0, 0x00, 0x00, 0xc6, 0x06, 0x01, 0x00, 0x42, 0xa2, 0x02,
        0x00, 0xf4,
    ];
    let tiny = TinyVm::new(&code);
    assert!(tiny._kvm.check_extension(kvm_ioctls::Cap::ReadonlyMem));
    let rom = GuestRam::with_regions(&[(ROM, 0x1000)]).unwrap();
    rom.mem.write_obj(0x5au8, GuestAddress(ROM)).unwrap();
    let host = rom.host_addresses().next().unwrap();
    let slot = kvm_userspace_memory_region {
        slot: 1,
        flags: KVM_MEM_READONLY,
        guest_phys_addr: ROM,
        memory_size: 0x1000,
        userspace_addr: host as u64,
    };
    // SAFETY: `rom` outlives the VM in this test.
    unsafe { tiny.vm.set_user_memory_region(slot) }.unwrap();

    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let mut mmio = Bus::new();
    mmio.insert(ROM, 0x1000, recorder.clone()).unwrap();
    let mut vcpu = tiny.vcpu(Buses {
        pio: Bus::new(),
        mmio,
    });
    run_to_halt(&mut vcpu);

    // Both writes exited to vigil (the second carries the byte the guest
    // read from the slot without an exit); memory behind the slot is intact.
    let writes = recorder.lock().unwrap().0.clone();
    assert_eq!(writes, vec![(1, vec![0x42]), (2, vec![0x5a])]);
    let byte: u8 = rom.mem.read_obj(GuestAddress(ROM + 1)).unwrap();
    assert_eq!(byte, 0);
}

#[test]
fn hardware_breakpoint_is_a_debug_exit() {
    // nop; nop; nop; nop; hlt — break on the third nop.
    let tiny = TinyVm::new(&[0x90, 0x90, 0x90, 0x90, 0xf4]);
    let mut vcpu = tiny.vcpu(Buses {
        pio: Bus::new(),
        mmio: Bus::new(),
    });
    let mut dbg = kvm_guest_debug {
        control: KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP,
        ..Default::default()
    };
    dbg.arch.debugreg[0] = CODE + 2;
    dbg.arch.debugreg[7] = 0x1; // L0: enabled, execute, 1 byte
    vcpu.fd.set_guest_debug(&dbg).unwrap();
    let exits = run_to_halt(&mut vcpu);
    assert_eq!(exits.len(), 1, "exactly one breakpoint hit: {exits:?}");
    assert_eq!(exits[0].pc, CODE + 2);
    assert_eq!(exits[0].exception, 1, "#DB");
    assert_ne!(exits[0].dr6 & 1, 0, "DR6.B0 names breakpoint 0");
}

#[test]
fn triple_fault_stops_the_vm_cleanly() {
    // Long mode through vigil's own boot setup (GDT, identity map, EFER),
    // whose IDT is empty: int3 cannot be delivered, nor the #GP and #DF
    // that follow, so the CPU shuts down. A software KVM cannot emulate
    // that (kvm_pvm fails on int3), so this runs on a real KVM.
    if !vigil_vmm::guest_path::run_test_on_real_kvm("triple_fault_stops_the_vm_cleanly") {
        return;
    }
    let tiny = TinyVm::new(&[0xcc, 0xf4]);
    vigil_vmm::cpu::regs::write_boot_tables(&tiny._ram.mem).unwrap();
    let mut vcpu = tiny.vcpu(Buses {
        pio: Bus::new(),
        mmio: Bus::new(),
    });
    let entry = vigil_vmm::boot::BootEntry {
        rip: CODE,
        zero_page: 0,
        layout: None,
    };
    vigil_vmm::cpu::regs::setup_long_mode(&vcpu.fd, 0, entry).unwrap();
    let exit = (0..100).find_map(|_| match vcpu.step() {
        Step::Continue | Step::Debug(_) => None,
        Step::Exit(e) => Some(e),
    });
    assert_eq!(exit, Some(VmExit::TripleFault));
    let outcome = vigil_vmm::vm::RunOutcome {
        exit: VmExit::TripleFault,
        guest_panicked: false,
    };
    assert_eq!(vigil_vmm::runner::exit_status(&outcome), 0);
}
