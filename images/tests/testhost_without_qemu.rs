//! Without QEMU on PATH the runner fails with a clear error, not a hang.
//! (Its own test binary: it changes PATH for the whole process.)

use vigil_images::testhost::{self, Job, Limits, TestHostError};

#[test]
fn missing_qemu_is_a_clear_error() {
    std::env::set_var("PATH", "/nonexistent");
    let err = testhost::run(&Job::new("/bin/true", vec![]), Limits::default())
        .expect_err("no QEMU on PATH");
    assert!(matches!(err, TestHostError::NoQemu), "{err}");
    assert!(err.to_string().contains("QEMU 10"), "{err}");
}
