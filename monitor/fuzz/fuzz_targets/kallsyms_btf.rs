#![no_main]
// The table scanners directly, so the fuzzer need not build a valid image.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vigil_monitor::profile::kallsyms::recover(data, true);
    if let Ok(btf) = vigil_monitor::profile::btf::Btf::parse(data) {
        let _ = btf.struct_layout("task_struct");
        let _ = btf.enum_values("lockdown_reason");
    }
    let _ = vigil_monitor::profile::certs::parse_cert_list(data);
});
