//! `cargo bench -p vigil-crypto`: the same JSON lines as `vigil crypto bench`.

fn main() {
    let reg = vigil_crypto::Registry::with_defaults();
    let cfg = vigil_crypto::bench::BenchConfig::default();
    let r = vigil_crypto::bench::run(&reg, &cfg, |row| {
        if let Ok(s) = serde_json::to_string(row) {
            println!("{s}");
        }
    });
    if let Err(e) = r {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}
