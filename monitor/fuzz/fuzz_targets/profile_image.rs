#![no_main]
// Whole-image path: setup header, payload, decompression, ELF, tables.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vigil_monitor::profile::KernelProfile::from_bzimage(data);
});
