//! `vigil-images`: build the guest and test-host images, or run a command
//! inside the nested test host, from the shell.
//!
//! - `vigil-images guest`: build (or reuse) the default guest; print its
//!   paths as JSON.
//! - `vigil-images testhost-image`: the same for the test host's image.
//! - `vigil-images detect`: say whether Linux guests run here directly.
//! - `vigil-images testhost <program> [args...]`: run a command in the test
//!   host (cwd and environment carried over); exit with its status.

use std::process::ExitCode;

use vigil_images::testhost::{self, GuestPath, Job, Limits};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil-images: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match args.first().map(String::as_str) {
        Some("guest") => {
            let g = vigil_images::default_guest()?;
            let json = serde_json::json!({
                "kernel": g.kernel,
                "initrd": g.initrd,
                "manifest": g.manifest,
                "kernel_release": g.kernel_release,
                "modules_dir": g.modules_dir,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Some("testhost-image") => {
            let t = testhost::build_image()?;
            let json = serde_json::json!({ "kernel": t.kernel, "initrd": t.initrd });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Some("detect") => println!("{}", GuestPath::detect().describe()),
        Some("testhost") if args.len() > 1 => {
            let job = Job::new(&args[1], args[2..].to_vec());
            let done = testhost::run(&job, Limits::default())?;
            return Ok(ExitCode::from(u8::try_from(done.status).unwrap_or(1)));
        }
        _ => {
            eprintln!(
                "usage: vigil-images guest | testhost-image | detect | testhost <program> [args...]"
            );
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}
