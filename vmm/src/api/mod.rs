//! The control API: HTTP/1.1 with JSON bodies on a UNIX socket, with
//! Cloud Hypervisor's paths so tools written for it (Kata) feel at home.
//!
//! | method | path                  | effect                              |
//! |--------|-----------------------|-------------------------------------|
//! | GET    | /api/v1/vmm.ping      | `{"version": ...}`                  |
//! | GET    | /api/v1/vm.info       | state, config, console events       |
//! | PUT    | /api/v1/vm.pause      | parks every vCPU                    |
//! | PUT    | /api/v1/vm.resume     | lets them run again                 |
//! | PUT    | /api/v1/vm.shutdown   | stops the VM; vigil exits 0         |
//! | GET    | /api/v1/vm.inspect    | pause, run the monitor's readers,   |
//! |        |                       | resume: the report as JSON          |

pub mod client;
pub mod http;
pub mod server;

pub const API_PREFIX: &str = "/api/v1/";
