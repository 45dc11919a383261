//! The `vigil` binary: parses the command line, runs the command, and turns
//! errors into one clear line and a non-zero exit status.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use vigil_vmm::cli::{BenchCommand, Cli, Command, ImageCommand, InspectArgs, InspectSource};
use vigil_vmm::config::HostLimits;
use vigil_vmm::{api, bench, demo, runner};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    match execute(cli.command) {
        Ok(status) => ExitCode::from(status as u8),
        Err(e) => {
            eprintln!("vigil: error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

fn execute(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Run(args) => {
            let kvm =
                kvm_ioctls::Kvm::new().map_err(|e| anyhow::anyhow!("cannot open /dev/kvm: {e}"))?;
            let config = args
                .merged()?
                .resolve(HostLimits::probe(kvm.get_max_vcpus()))?;
            drop(kvm);
            let outcome = runner::run(config)?;
            let status = runner::exit_status(&outcome);
            if outcome.guest_panicked {
                eprintln!("vigil: guest kernel panicked");
            } else {
                eprintln!("vigil: guest stopped: {:?}", outcome.exit);
            }
            Ok(status)
        }
        Command::Demo => demo::run(),
        Command::Doctor => {
            doctor();
            Ok(0)
        }
        Command::Image(ImageCommand::Build) => {
            let image = vigil_images::default_guest()?;
            println!("{}", std::fs::read_to_string(&image.manifest)?);
            Ok(0)
        }
        Command::Bench(BenchCommand::Boot(args)) => bench::boot::run_cli(&args),
        Command::Crypto(cmd) => vigil_crypto::cli::run_crypto(cmd).map(|()| 0),
        Command::Luks(cmd) => vigil_crypto::cli::run_luks(cmd).map(|()| 0),
        Command::Kernel(cmd) => vigil_monitor::cli::run_kernel(cmd).map(|()| 0),
        Command::Inspect(args) => inspect(&args).map(|()| 0),
        Command::Ctl(args) => {
            let (method, action) = args.action.request();
            let body = api::client::call(&args.api, method, action, None)?;
            if !body.is_empty() {
                println!("{body}");
            }
            Ok(0)
        }
    }
}

/// `vigil inspect`: over a running vigil's API, or on a dump file.
fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    match args.source().map_err(anyhow::Error::msg)? {
        InspectSource::Dump { dump, kernel } => {
            vigil_monitor::cli::run_inspect(vigil_monitor::cli::InspectArgs {
                dump,
                kernel,
                json: args.json,
            })
        }
        InspectSource::Api(socket) => {
            let body = api::client::call(&socket, "GET", "vm.inspect", None)?;
            if args.json {
                println!("{body}");
                return Ok(());
            }
            let live: vigil_vmm::introspect::LiveReport =
                serde_json::from_str(&body).context("decoding the inspection report")?;
            print!("{}", live.report.render());
            if let Some(b) = live.boot_layout {
                println!(
                    "vigil placed _text at phys {:#x} virt {:#x}: slide {}, physical {}",
                    b.phys_base,
                    b.virt_text,
                    if b.slide_agrees { "agrees" } else { "DIFFERS" },
                    if b.phys_agrees { "agrees" } else { "DIFFERS" },
                );
            }
            let t = live.timing;
            println!(
                "paused {} us (parking {} us, reading {} us)",
                t.paused_total_us, t.pause_us, t.read_us
            );
            Ok(())
        }
    }
}

fn doctor() {
    use vigil_images::testhost::{qemu_version, GuestPath};
    let kvm: Vec<String> = std::fs::read_dir("/sys/module")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|m| m.starts_with("kvm"))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "/dev/kvm: {}",
        if std::path::Path::new("/dev/kvm").exists() {
            "present"
        } else {
            "absent"
        }
    );
    println!("KVM modules: {}", kvm.join(" "));
    match qemu_version() {
        Ok(v) => println!("QEMU for the nested test host: {v}"),
        Err(e) => println!("QEMU for the nested test host: unavailable ({e})"),
    }
    println!("{}", GuestPath::detect().describe());
}

/// The error and its causes on one line. Many errors already quote their
/// source in their message; a cause whose text is already there is skipped.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}
