//! The nested test host boots, has a real KVM inside, and reports the
//! exit status of what it ran.

use vigil_images::testhost::{self, Job, Limits};

#[test]
fn runs_commands_with_a_real_kvm_and_reports_their_status() {
    let limits = Limits::default();
    let ok = Job::new(
        "/bin/sh",
        vec!["-c".into(), "test -c /dev/kvm && grep -q '^kvm_amd ' /proc/modules && test \"$VIGIL_IN_TESTHOST\" = 1".into()],
    );
    assert_eq!(testhost::run(&ok, limits).expect("test host runs"), 0);

    let fails = Job::new("/bin/sh", vec!["-c".into(), "exit 7".into()]);
    assert_eq!(testhost::run(&fails, limits).unwrap(), 7);
}
