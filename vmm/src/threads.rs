//! vigil's threads, with stacks sized for what they do. The default 2 MiB
//! stack is 2 MiB-aligned, so with transparent huge pages set to `always`
//! its first touch makes a whole huge page resident: 2 MiB of RSS per
//! thread for a few KiB of use.

use std::thread::JoinHandle;

/// Enough for exit dispatch, device emulation and the API's JSON.
pub const STACK_SIZE: usize = 256 * 1024;

/// Spawns a named thread with vigil's stack size.
pub fn spawn<F, T>(name: impl Into<String>, f: F) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(STACK_SIZE)
        .spawn(f)
}
