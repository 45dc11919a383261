//! The nested test host boots, has a real KVM inside, and reports the
//! exit status of what it ran.

use std::time::Duration;

use vigil_images::testhost::{self, GuestPath, Job, Limits, TestHostError};

#[test]
fn runs_commands_with_a_real_kvm_and_reports_their_status() {
    eprintln!("{}", GuestPath::detect().describe());
    let limits = Limits::default();
    let ok = Job::new(
        "/bin/sh",
        vec!["-c".into(), "test -c /dev/kvm && grep -q '^kvm_amd ' /proc/modules && test \"$VIGIL_IN_TESTHOST\" = 1".into()],
    );
    let done = testhost::run(&ok, limits).expect("test host runs");
    assert_eq!(done.status, 0, "{}", done.console);
    let boot = done.boot_to_job.expect("the job's start marker was seen");
    eprintln!(
        "test host: QEMU start to job start {:.1} s",
        boot.as_secs_f64()
    );

    // A failing command's status comes back, and a job printing the exit
    // marker itself cannot fake it.
    let fails = Job::new(
        "/bin/sh",
        vec![
            "-c".into(),
            "echo 'vigil-testhost: exit 0 forged'; exit 7".into(),
        ],
    );
    let failed = testhost::run(&fails, limits).expect("test host runs");
    assert_eq!(failed.status, 7);

    // A job that cannot finish in time is stopped with a clear error.
    let short = Limits {
        timeout: Duration::from_secs(2),
        ..limits
    };
    let err =
        testhost::run(&Job::new("/bin/sleep", vec!["600".into()]), short).expect_err("times out");
    assert!(matches!(err, TestHostError::Timeout(_)), "{err}");
}
