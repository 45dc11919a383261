//! The API server thread: accepts connections on the control socket and
//! acts on the running VM.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::http::{read_request, write_response, Request};
use super::API_PREFIX;
use crate::control::{RunState, VmExit};
use crate::vm::VmHandle;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("API socket {0} is in use by a running process")]
    InUse(PathBuf),
    #[error("cannot create API socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

/// Binds the control socket, owner-only. A stale socket file left by a
/// dead vigil is replaced; one that still answers is an error.
pub fn bind(path: &Path) -> Result<UnixListener, ApiError> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ApiError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(|source| ApiError::Bind {
            path: path.to_owned(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ApiError::Bind {
        path: path.to_owned(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        ApiError::Bind {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(listener)
}

/// Serves the API on `listener` until the VM stops.
pub fn spawn(listener: UnixListener, vm: Arc<VmHandle>) -> io::Result<()> {
    crate::threads::spawn("api", move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => serve(stream, &vm),
                Err(e) => tracing::warn!(error = %e, "API accept failed"),
            }
            if vm.control.state() == RunState::Stopping {
                break;
            }
        }
    })
    .map(drop)
}

fn serve(mut stream: UnixStream, vm: &VmHandle) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let (status, body) = match read_request(&mut stream) {
        Ok(req) => route(&req, vm),
        Err(e) => (400, Some(json!({ "error": e.to_string() }).to_string())),
    };
    if let Err(e) = write_response(&mut stream, status, body.as_deref()) {
        tracing::debug!(error = %e, "API client went away");
    }
}

fn error(status: u16, message: &str) -> (u16, Option<String>) {
    (status, Some(json!({ "error": message }).to_string()))
}

fn route(req: &Request, vm: &VmHandle) -> (u16, Option<String>) {
    let Some(action) = req.path.strip_prefix(API_PREFIX) else {
        return error(404, "unknown path");
    };
    tracing::info!(method = %req.method, action, "API request");
    match (req.method.as_str(), action) {
        ("GET", "vmm.ping") => (
            200,
            Some(json!({ "version": env!("CARGO_PKG_VERSION") }).to_string()),
        ),
        ("GET", "vm.info") => (200, Some(info(vm).to_string())),
        ("PUT", "vm.pause") => match vm.pause() {
            true => (204, None),
            false => error(409, "VM is not running"),
        },
        ("PUT", "vm.resume") => match vm.control.resume() {
            true => (204, None),
            false => error(409, "VM is stopping"),
        },
        ("PUT", "vm.shutdown") => {
            vm.control.request_exit(VmExit::Shutdown);
            (204, None)
        }
        ("GET", "vm.inspect") => inspect(vm),
        (_, "vmm.ping" | "vm.info" | "vm.pause" | "vm.resume" | "vm.shutdown" | "vm.inspect") => {
            error(405, "method not allowed")
        }
        _ => error(404, "unknown action"),
    }
}

fn info(vm: &VmHandle) -> serde_json::Value {
    json!({
        "state": vm.control.state(),
        "config": vm.config,
        "guest_ready": vm.console.ready_at().is_some(),
        "guest_panicked": vm.console.panicked(),
        // Where vigil placed the kernel (direct loader), else null.
        "kernel_layout": vm.introspect.layout(),
    })
}

/// Pauses the VM, runs the monitor's readers, resumes; the report as JSON.
fn inspect(vm: &VmHandle) -> (u16, Option<String>) {
    use crate::introspect::IntrospectError;
    match vm.introspect.inspect(vm) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(body) => (200, Some(body)),
            Err(e) => error(500, &format!("encoding the report: {e}")),
        },
        Err(e) => {
            tracing::warn!(error = %e, "inspection failed");
            let status = match e {
                IntrospectError::NotRunning => 409,
                IntrospectError::PauseTimeout => 503,
                IntrospectError::Profile { .. } | IntrospectError::Guest(_) => 500,
            };
            error(status, &e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::client::{call, ClientError};
    use crate::config::{Loader, VmConfig};
    use crate::console::{ConsoleEvents, ConsoleOutput};
    use crate::control::VmControl;
    use crate::introspect::Introspector;
    use crate::vm::VcpuThreads;

    fn handle() -> Arc<VmHandle> {
        Arc::new(VmHandle {
            control: Arc::new(VmControl::new().unwrap()),
            threads: Arc::new(VcpuThreads::default()),
            config: VmConfig {
                kernel: "/k".into(),
                loader: Loader::Direct,
                initrd: None,
                cmdline: String::new(),
                vcpus: 0,
                memory_mib: 16,
                hide_aes: false,
                console: ConsoleOutput::Off,
                api_socket: None,
            },
            console: Arc::new(ConsoleEvents::default()),
            introspect: Arc::new(Introspector::new(
                vm_memory::GuestMemoryMmap::from_ranges(&[(vm_memory::GuestAddress(0), 1 << 20)])
                    .unwrap(),
                "/k".into(),
                None,
            )),
        })
    }

    #[test]
    fn serves_the_control_api_over_its_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("api.sock");
        let vm = handle();
        spawn(bind(&sock).unwrap(), vm.clone()).unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the owner may connect");

        assert!(call(&sock, "GET", "vmm.ping", None)
            .unwrap()
            .contains("version"));
        call(&sock, "PUT", "vm.pause", None).unwrap();
        assert_eq!(vm.control.state(), RunState::Paused);
        let info: serde_json::Value =
            serde_json::from_str(&call(&sock, "GET", "vm.info", None).unwrap()).unwrap();
        assert_eq!(info["state"], "Paused");
        assert!(info["kernel_layout"].is_null(), "no direct-loaded kernel");
        // No kernel image at /k: a clear error, and the VM stays as it was.
        match call(&sock, "GET", "vm.inspect", None) {
            Err(ClientError::Status { status: 500, body }) => {
                assert!(body.contains("kernel profile of /k"), "{body}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(vm.control.state(), RunState::Paused);
        call(&sock, "PUT", "vm.resume", None).unwrap();
        assert_eq!(vm.control.state(), RunState::Running);
        assert!(matches!(
            call(&sock, "DELETE", "vm.pause", None),
            Err(ClientError::Status { status: 405, .. })
        ));
        assert!(matches!(
            call(&sock, "GET", "vm.nonsense", None),
            Err(ClientError::Status { status: 404, .. })
        ));
        call(&sock, "PUT", "vm.shutdown", None).unwrap();
        assert_eq!(vm.control.exit_reason(), Some(VmExit::Shutdown));
    }

    #[test]
    fn refuses_a_socket_in_use_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("api.sock");
        let live = bind(&sock).unwrap();
        assert!(matches!(bind(&sock), Err(ApiError::InUse(_))));
        drop(live);
        assert!(bind(&sock).is_ok(), "a stale socket file is replaced");
    }
}
