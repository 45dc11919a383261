//! `vigil run`: from a checked config to a finished VM.

use std::io::IsTerminal;

use vmm_sys_util::terminal::Terminal;

use crate::api;
use crate::config::VmConfig;
use crate::console::ConsoleOutput;
use crate::vm::{RunOutcome, Vm};

/// Exit status for a guest kernel panic.
pub const EXIT_GUEST_PANIC: i32 = 2;

/// Builds and runs the VM, serving the API if configured.
pub fn run(config: VmConfig) -> anyhow::Result<RunOutcome> {
    // Bind first: a socket in use should fail before any guest work.
    let listener = config
        .api_socket
        .as_deref()
        .map(api::server::bind)
        .transpose()?;
    let socket = config.api_socket.clone();
    let forward_stdin = config.console == ConsoleOutput::Stdout;
    let vm = Vm::build(config)?;
    if let Some(listener) = listener {
        api::server::spawn(listener, vm.handle())?;
    }
    let stdin = std::io::stdin();
    let raw = forward_stdin && stdin.is_terminal() && stdin.lock().set_raw_mode().is_ok();
    let outcome = vm.run(forward_stdin);
    if raw {
        let _ = stdin.lock().set_canon_mode();
    }
    if let Some(socket) = socket {
        let _ = std::fs::remove_file(socket);
    }
    Ok(outcome?)
}

/// The process exit status for a finished run.
pub fn exit_status(outcome: &RunOutcome) -> i32 {
    use crate::control::VmExit;
    if outcome.guest_panicked {
        return EXIT_GUEST_PANIC;
    }
    match outcome.exit {
        VmExit::Reset | VmExit::Shutdown | VmExit::TripleFault | VmExit::Halted => 0,
        VmExit::Error(_) => 1,
    }
}
